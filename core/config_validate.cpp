// The value rules of core/config.proto, checked in field order so the first violation reported is
// deterministic. Each message names where the bad value came from: the file's line:column (from
// the parser's ParseInfoTree), the --set override that wrote it, or just the file name when the
// value was never set. Parse errors (syntax, unknown fields, ranges of integer types) are the
// text parser's job, in config.cpp. This file: the entry points, the order of the sections
// (Validator::run) and the rules of model, data, train, device, comm and checkpoint; the
// Validator's machinery is in config_validator.cpp, the other sections' rules beside it.
#include <map>
#include <string>

#include "core/config.h"
#include "core/config_internal.h"
#include "core/config_validator.h"
#include "devices/error.h"

namespace dpt::config_internal {

void Validator::run_quantize(const proto::QuantizeConfig& quantize, const std::string& path) {
  check_quantize(Node{&quantize, path, nullptr, {}}, quantize);
}

void Validator::run(const proto::Config& config) {
  config_ = &config;
  const Node root{&config, "", provenance_.tree, {}};
  check_model(child(root, "model"), config.model());
  check_data(child(root, "data"), config.data());
  check_optimizer(child(root, "optimizer"), config.optimizer());
  check_train(child(root, "train"), config.train());
  check_device(child(root, "device"), config.device());
  check_comm(child(root, "comm"), config.comm());
  check_int(child(root, "fault_injection"), "step", config.fault_injection().step(), kNonNegative);
  check_checkpoint(child(root, "checkpoint"), config.checkpoint());
  check_int(child(root, "fault_injection"), "slow_ms", config.fault_injection().slow_ms(),
            kNonNegative);
  check_int(child(root, "fault_injection"), "slow_us_per_sample",
            config.fault_injection().slow_us_per_sample(), kNonNegative);
  const Node monitor = child(root, "monitor");
  check_int(monitor, "straggler_every_steps", config.monitor().straggler_every_steps(),
            kNonNegative);
  check_float(monitor, "straggler_threshold",
              static_cast<float>(config.monitor().straggler_threshold()), kAboveOne);
  check_int(child(root, "trace"), "max_steps", config.trace().max_steps(), kNonNegative);
  check_compress(child(root, "compress"), config.compress());
  check_tune(child(root, "tune"), config.tune());
}

void Validator::check_model(const Node& node, const proto::ModelConfig& model) const {
  require(node, "input_size");
  check_int(node, "input_size", model.input_size(), kPositive);
  if (model.layer_size() == 0) fail(node, "layer", "at least one layer is required");
  std::map<std::string, int> names;
  for (int i = 0; i < model.layer_size(); ++i) {
    const proto::LayerConfig& layer = model.layer(i);
    const Node layer_node = child(node, "layer", i);
    if (!layer.name().empty() &&
        layer.name().find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789_-") != std::string::npos) {
      fail(layer_node, "name",
           "must contain only letters, digits, '_' and '-' (got " + quoted(layer.name()) + ")");
    }
    const std::string name = layer_name(*config_, i);
    const auto [seen, inserted] = names.emplace(name, i);
    if (!inserted && layer.name().empty()) {
      fail_node(layer_node, "default name " + quoted(name) + " is taken by model.layer[" +
                                std::to_string(seen->second) + "]; name this layer");
    }
    if (!inserted) {
      fail(layer_node, "name",
           "duplicate layer name " + quoted(name) + " (also model.layer[" +
               std::to_string(seen->second) + "])");
    }
    switch (layer.kind_case()) {
      case proto::LayerConfig::kDense:
        check_dense(child(layer_node, "dense"), layer.dense());
        break;
      case proto::LayerConfig::kActivation:
        check_float(child(layer_node, "activation"), "negative_slope",
                    layer.activation().negative_slope(), kNonNegative);
        break;
      case proto::LayerConfig::kDropout:
        check_float(child(layer_node, "dropout"), "rate", layer.dropout().rate(), kDecay);
        break;
      case proto::LayerConfig::KIND_NOT_SET:
        fail_node(layer_node, "no kind set (expected dense, activation or dropout)");
    }
  }
  const int last = model.layer_size() - 1;
  if (!model.layer(last).has_dense()) {
    fail_node(child(node, "layer", last),
              "the last layer must be dense (the loss reads its outputs)");
  }
}

void Validator::check_dense(const Node& node, const proto::DenseConfig& dense) const {
  require(node, "units");
  check_int(node, "units", dense.units(), kPositive);
  check_float(node, "init_std", dense.init_std(), kPositive);
}

void Validator::check_data(const Node& node, const proto::DataConfig& data) const {
  require(node, "train_path");
  if (data.train_path().empty()) fail(node, "train_path", "must not be empty");
  check_float(node, "input_scale", data.input_scale(), kPositive);
  check_float(node, "mean", data.mean(), kAnyFinite);
  check_float(node, "std", data.std(), kPositive);
}

void Validator::check_train(const Node& node, const proto::TrainConfig& train) const {
  check_int(node, "batch_size", train.batch_size(), kPositive);
  const int64_t micro = train.micro_batch_size();
  const std::string batch = std::to_string(train.batch_size());
  if (micro < 0 || micro > train.batch_size()) {
    fail(node, "micro_batch_size",
         "must be in [0, train.batch_size = " + batch + "] (got " + std::to_string(micro) + ")");
  }
  if (micro > 0 && train.batch_size() % micro != 0) {
    fail(node, "micro_batch_size",
         "must divide train.batch_size = " + batch + " (got " + std::to_string(micro) + ")");
  }
  check_int(node, "epochs", train.epochs(), kPositive);
  check_int(node, "max_steps", train.max_steps(), kNonNegative);
  check_int(node, "log_every_steps", train.log_every_steps(), kPositive);
  check_int(node, "eval_every_epochs", train.eval_every_epochs(), kNonNegative);
  check_int(node, "eval_batch_size", train.eval_batch_size(), kPositive);
  check_int(node, "max_consecutive_skips", train.max_consecutive_skips(), kPositive);
}

void Validator::check_device(const Node& node, const proto::DeviceConfig& device) const {
  check_int(node, "threads", device.threads(), kNonNegative);
  // TF32 on the CPU runs float32 (and says so); fp16 has no CPU path.
  if (device.precision() == proto::FP16 && device.kind() != proto::CUDA) {
    fail(node, "precision",
         "fp16 needs a CUDA device: set device.kind: CUDA (got " +
             proto::DeviceChoice_Name(device.kind()) + ")");
  }
  const Node scale = child(node, "loss_scale");
  const proto::LossScaleConfig& ls = device.loss_scale();
  check_float(scale, "init_scale", ls.init_scale(), kPositive);
  check_float(scale, "growth_factor", ls.growth_factor(), kAboveOne);
  check_float(scale, "backoff_factor", ls.backoff_factor(), kOpenFraction);
  check_int(scale, "growth_interval", ls.growth_interval(), kPositive);
  check_float(scale, "min_scale", ls.min_scale(), kPositive);
  if (ls.init_scale() < ls.min_scale()) {
    fail(scale, "init_scale",
         "must be >= min_scale " + float_text(ls.min_scale()) + " (got " +
             float_text(ls.init_scale()) + ")");
  }
}

void Validator::check_comm(const Node& node, const proto::CommConfig& comm) const {
  const std::string& backend = comm.backend();
  if (backend != "auto" && backend != "local" && backend != "mpi" && backend != "plugin" &&
      backend != "nccl") {
    fail(node, "backend",
         "must be \"auto\", \"local\", \"mpi\", \"plugin\" or \"nccl\" (got " + quoted(backend) +
             ")");
  }
  if (backend == "plugin" && comm.plugin_path().empty()) {
    fail(node, "backend", "\"plugin\" needs comm.plugin_path (the plug-in's .so)");
  }
  check_float(node, "timeout_s", static_cast<float>(comm.timeout_s()), kPositive);
  check_float(node, "bucket_mb", static_cast<float>(comm.bucket_mb()), kPositive);
  check_int(node, "ring_threshold_bytes", comm.ring_threshold_bytes(), kNonNegative);
  check_int(node, "shm_threshold_bytes", comm.shm_threshold_bytes(), kNonNegative);
  if (comm.chunk_bytes() != 0) check_int(node, "chunk_bytes", comm.chunk_bytes(), kChunkBytes);
  check_int(node, "balance_warmup_steps", comm.balance_warmup_steps(), kNonNegative);
  check_int(node, "balance_steps", comm.balance_steps(), kPositive);
  check_int(node, "rebalance_every_steps", comm.rebalance_every_steps(), kNonNegative);
}

void Validator::check_checkpoint(const Node& node,
                                 const proto::CheckpointConfig& checkpoint) const {
  check_int(node, "every_steps", checkpoint.every_steps(), kNonNegative);
  check_int(node, "every_epochs", checkpoint.every_epochs(), kNonNegative);
  check_int(node, "keep_last", checkpoint.keep_last(), kPositive);
  check_int(node, "keep_every_steps", checkpoint.keep_every_steps(), kNonNegative);
}

void validate_with_provenance(const proto::Config& config, const Provenance& provenance) {
  Validator(provenance).run(config);
}

}  // namespace dpt::config_internal

namespace dpt {

void validate_quantize_config(const proto::QuantizeConfig& quantize, const std::string& source_name,
                              const std::string& path) {
  const config_internal::Provenance provenance{source_name};
  config_internal::Validator(provenance).run_quantize(quantize, path);
}

}  // namespace dpt
