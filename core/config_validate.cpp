// The value rules of core/config.proto, checked in field order so the first violation reported is
// deterministic. Each message names where the bad value came from: the file's line:column (from
// the parser's ParseInfoTree), the --set override that wrote it, or just the file name when the
// value was never set. Parse errors (syntax, unknown fields, ranges of integer types) are the
// text parser's job, in config.cpp.
#include <google/protobuf/descriptor.h>

#include <cmath>
#include <limits>
#include <map>

#include "core/config.h"
#include "core/config_internal.h"
#include "devices/error.h"

namespace dpt::config_internal {
namespace {

namespace pb = google::protobuf;
using Location = pb::TextFormat::ParseLocation;

// An interval rule, e.g. "in [0, 1)"; hi is +inf for one-sided rules.
struct Range {
  double lo;
  bool lo_open;
  double hi;
  bool hi_open;
  const char* text;
  bool contains(double v) const {
    return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  }
};
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr Range kPositive{0, true, kInf, false, "> 0"};
constexpr Range kAboveOne{1, true, kInf, false, "> 1"};
constexpr Range kNonNegative{0, false, kInf, false, ">= 0"};
constexpr Range kFraction{0, false, 1, false, "in [0, 1]"};
constexpr Range kDecay{0, false, 1, true, "in [0, 1)"};
constexpr Range kOpenFraction{0, true, 1, true, "in (0, 1)"};
constexpr Range kFactor{0, true, 1, false, "in (0, 1]"};
constexpr Range kAnyFinite{-kInf, true, kInf, true, "finite"};
constexpr Range kChunkBytes{4096, false, kInf, false, "0 (automatic) or >= 4096"};
constexpr Range kPositiveFraction{0, true, 1, false, "in (0, 1]"};
constexpr Range kAtLeastTen{10, false, kInf, false, ">= 10"};
constexpr Range kPercentile{50, false, 100, false, "in [50, 100]"};

// One message under validation: its path ("model.layer[2]"), its locations subtree (null when it
// was not written in the file) and where the message itself was written.
struct Node {
  const pb::Message* message;
  std::string path;
  const pb::TextFormat::ParseInfoTree* tree;
  Location location;
};

// Where value `index` of `field` was written. The parser records one location per occurrence of
// the field name, and a list "[1, 2]" is one occurrence, so indices only line up when every
// element was written on its own; otherwise fall back to the only occurrence, if there is one.
Location field_location(const Node& node, const pb::FieldDescriptor* field, int index) {
  if (node.tree == nullptr) return {};
  if (!field->is_repeated()) return node.tree->GetLocation(field, -1);
  int recorded = 0;
  while (node.tree->GetLocation(field, recorded).line >= 0) ++recorded;
  const int size = node.message->GetReflection()->FieldSize(*node.message, field);
  if (index >= 0 && recorded == size) return node.tree->GetLocation(field, index);
  return recorded == 1 ? node.tree->GetLocation(field, 0) : Location{};
}

// `a` is `b` or one of its parents or children, as paths ("x.y" and "x.y[2].z").
bool related(const std::string& a, const std::string& b) {
  const std::string& shorter = a.size() <= b.size() ? a : b;
  const std::string& longer = a.size() <= b.size() ? b : a;
  if (longer.compare(0, shorter.size(), shorter) != 0) return false;
  return longer.size() == shorter.size() || longer[shorter.size()] == '.' ||
         longer[shorter.size()] == '[';
}

// A string for a one-line message: quoted, with control characters escaped.
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      const char digits[] = "0123456789abcdef";
      out += std::string("\\x") + digits[byte >> 4] + digits[byte & 15];
    } else {
      out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    }
  }
  return out + "\"";
}

class Validator {
 public:
  explicit Validator(const Provenance& provenance) : provenance_(provenance) {}

  // A QuantizeConfig on its own, named `path` in messages (until Config holds one).
  void run_quantize(const proto::QuantizeConfig& quantize, const std::string& path) {
    check_quantize(Node{&quantize, path, nullptr, {}}, quantize);
  }

  void run(const proto::Config& config) {
    config_ = &config;
    const Node root{&config, "", provenance_.tree, {}};
    check_model(child(root, "model"), config.model());
    check_data(child(root, "data"), config.data());
    check_optimizer(child(root, "optimizer"), config.optimizer());
    check_train(child(root, "train"), config.train());
    check_device(child(root, "device"), config.device());
    check_comm(child(root, "comm"), config.comm());
    check_int(child(root, "fault_injection"), "step", config.fault_injection().step(),
              kNonNegative);
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

 private:
  const pb::FieldDescriptor* field_of(const Node& node, const char* name) const {
    const pb::FieldDescriptor* field = node.message->GetDescriptor()->FindFieldByName(name);
    DPT_CHECK(field != nullptr) << "config validation: no field " << name << " in "
                                << node.message->GetDescriptor()->full_name();
    return field;
  }
  static std::string join(const std::string& path, const std::string& name, int index) {
    return (path.empty() ? name : path + "." + name) +
           (index >= 0 ? "[" + std::to_string(index) + "]" : "");
  }

  Node child(const Node& node, const char* name, int index = -1) const {
    const pb::FieldDescriptor* field = field_of(node, name);
    const pb::Reflection* reflection = node.message->GetReflection();
    const pb::Message& message = index < 0
                                     ? reflection->GetMessage(*node.message, field)
                                     : reflection->GetRepeatedMessage(*node.message, field, index);
    return Node{&message, join(node.path, name, index),
                node.tree ? node.tree->GetTreeForNested(field, index) : nullptr,
                field_location(node, field, index)};
  }

  // "--set a=b: " when an override wrote at or around `path` (the last such wins, since it was
  // applied last), else "file:line:col: " (one-based) when the file set it, else "file: ".
  std::string prefix(const std::string& path, Location location) const {
    if (provenance_.overrides != nullptr) {
      for (auto it = provenance_.overrides->rbegin(); it != provenance_.overrides->rend(); ++it) {
        for (const std::string& written : it->paths) {
          if (related(written, path)) return "--set " + it->assignment + ": ";
        }
      }
    }
    if (location.line >= 0) {
      return provenance_.source_name + ":" + std::to_string(location.line + 1) + ":" +
             std::to_string(location.column + 1) + ": ";
    }
    return provenance_.source_name + ": ";
  }

  [[noreturn]] void fail_node(const Node& node, const std::string& what) const {
    DPT_THROW(ErrorKind::kConfig) << prefix(node.path, node.location) << node.path << ": " << what;
  }
  [[noreturn]] void fail(const Node& node, const char* name, const std::string& what,
                         int index = -1) const {
    const std::string path = join(node.path, name, index);
    DPT_THROW(ErrorKind::kConfig) << prefix(path, field_location(node, field_of(node, name), index))
                                  << path << ": " << what;
  }
  // Required values that were never set have no location and no override to blame.
  void require(const Node& node, const char* name) const {
    if (!node.message->GetReflection()->HasField(*node.message, field_of(node, name))) {
      DPT_THROW(ErrorKind::kConfig)
          << provenance_.source_name << ": " << join(node.path, name, -1) << ": required";
    }
  }

  void check_float(const Node& node, const char* name, float value, const Range& range) const {
    if (!std::isfinite(value)) fail(node, name, "must be finite (got " + float_text(value) + ")");
    if (!range.contains(value)) {
      fail(node, name, std::string("must be ") + range.text + " (got " + float_text(value) + ")");
    }
  }
  void check_int(const Node& node, const char* name, int64_t value, const Range& range) const {
    if (!range.contains(static_cast<double>(value))) {
      fail(node, name,
           std::string("must be ") + range.text + " (got " + std::to_string(value) + ")");
    }
  }

  void check_model(const Node& node, const proto::ModelConfig& model) const {
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

  void check_comm(const Node& node, const proto::CommConfig& comm) const {
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

  void check_checkpoint(const Node& node, const proto::CheckpointConfig& checkpoint) const {
    check_int(node, "every_steps", checkpoint.every_steps(), kNonNegative);
    check_int(node, "every_epochs", checkpoint.every_epochs(), kNonNegative);
    check_int(node, "keep_last", checkpoint.keep_last(), kPositive);
    check_int(node, "keep_every_steps", checkpoint.keep_every_steps(), kNonNegative);
  }

  void check_compress(const Node& node, const proto::CompressConfig& compress) const {
    const Node prune = child(node, "prune");
    check_float(prune, "sparsity", compress.prune().sparsity(), kDecay);
    check_int(prune, "iterations", compress.prune().iterations(), kPositive);
    check_int(prune, "finetune_steps", compress.prune().finetune_steps(), kNonNegative);
    check_int(node, "eval_samples", compress.eval_samples(), kNonNegative);
    check_quantize(child(node, "quantize"), compress.quantize());
    check_int(node, "latency_repeats", compress.latency_repeats(), kPositive);
    check_int(node, "latency_warmup", compress.latency_warmup(), kNonNegative);
    check_int(node, "throughput_batch", compress.throughput_batch(), kPositive);
    check_int(node, "throughput_repeats", compress.throughput_repeats(), kPositive);
  }

  void check_dense(const Node& node, const proto::DenseConfig& dense) const {
    require(node, "units");
    check_int(node, "units", dense.units(), kPositive);
    check_float(node, "init_std", dense.init_std(), kPositive);
  }

  void check_data(const Node& node, const proto::DataConfig& data) const {
    require(node, "train_path");
    if (data.train_path().empty()) fail(node, "train_path", "must not be empty");
    check_float(node, "input_scale", data.input_scale(), kPositive);
    check_float(node, "mean", data.mean(), kAnyFinite);
    check_float(node, "std", data.std(), kPositive);
  }

  void check_optimizer(const Node& node, const proto::OptimizerConfig& optimizer) const {
    check_float(node, "lr", optimizer.lr(), kPositive);
    if (optimizer.has_sgd()) {
      const Node sgd = child(node, "sgd");
      check_float(sgd, "momentum", optimizer.sgd().momentum(), kDecay);
      if (optimizer.sgd().nesterov() && !(optimizer.sgd().momentum() > 0)) {
        fail(sgd, "nesterov",
             "requires momentum > 0 (got momentum " + float_text(optimizer.sgd().momentum()) + ")");
      }
      check_float(sgd, "weight_decay", optimizer.sgd().weight_decay(), kNonNegative);
    }
    if (optimizer.has_adam()) check_adam(child(node, "adam"), optimizer.adam());
    if (optimizer.has_adamw()) check_adam(child(node, "adamw"), optimizer.adamw());
    check_schedule(child(node, "schedule"), optimizer.schedule());
    check_float(node, "clip_grad_norm", optimizer.clip_grad_norm(), kNonNegative);
  }

  void check_device(const Node& node, const proto::DeviceConfig& device) const {
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

  void check_adam(const Node& node, const proto::AdamConfig& adam) const {
    check_float(node, "beta1", adam.beta1(), kDecay);
    check_float(node, "beta2", adam.beta2(), kDecay);
    check_float(node, "eps", adam.eps(), kPositive);
    check_float(node, "weight_decay", adam.weight_decay(), kNonNegative);
  }

  void check_schedule(const Node& node, const proto::LrScheduleConfig& schedule) const {
    check_int(node, "warmup_steps", schedule.warmup_steps(), kNonNegative);
    check_float(node, "warmup_start_factor", schedule.warmup_start_factor(), kFraction);
    check_int(node, "total_steps", schedule.total_steps(), kNonNegative);
    if (schedule.has_step()) {
      const Node step = child(node, "step");
      require(step, "step_size");
      check_int(step, "step_size", schedule.step().step_size(), kPositive);
      check_float(step, "gamma", schedule.step().gamma(), kFactor);
    } else if (schedule.has_multistep()) {
      const Node multistep = child(node, "multistep");
      const auto& milestones = schedule.multistep().milestones();
      for (int i = 0; i < milestones.size(); ++i) {
        if (i == 0 && milestones[0] <= 0) {
          fail(multistep, "milestones", "must be > 0 (got " + std::to_string(milestones[0]) + ")",
               0);
        }
        if (i > 0 && milestones[i] <= milestones[i - 1]) {
          fail(multistep, "milestones",
               "must be strictly increasing (got " + std::to_string(milestones[i]) + " after " +
                   std::to_string(milestones[i - 1]) + ")",
               i);
        }
      }
      check_float(multistep, "gamma", schedule.multistep().gamma(), kFactor);
    } else if (schedule.has_exponential()) {
      const Node exponential = child(node, "exponential");
      require(exponential, "gamma");
      check_float(exponential, "gamma", schedule.exponential().gamma(), kFactor);
    } else if (schedule.has_cosine()) {
      check_float(child(node, "cosine"), "final_lr_fraction", schedule.cosine().final_lr_fraction(),
                  kFraction);
    } else if (schedule.has_polynomial()) {
      const Node polynomial = child(node, "polynomial");
      check_float(polynomial, "power", schedule.polynomial().power(), kPositive);
      check_float(polynomial, "final_lr_fraction", schedule.polynomial().final_lr_fraction(),
                  kFraction);
    } else if (schedule.has_wsd()) {
      const Node wsd = child(node, "wsd");
      check_float(wsd, "decay_fraction", schedule.wsd().decay_fraction(), kFactor);
      check_float(wsd, "final_lr_fraction", schedule.wsd().final_lr_fraction(), kFraction);
    }
  }

  void check_quantize(const Node& node, const proto::QuantizeConfig& quantize) const {
    check_int(node, "calibration_samples", quantize.calibration_samples(), kPositive);
    check_float(node, "calibration_percentile",
                static_cast<float>(quantize.calibration_percentile()), kPercentile);
  }

  void check_train(const Node& node, const proto::TrainConfig& train) const {
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

  void check_tune(const Node& node, const proto::TuneConfig& tune) const {
    check_float(node, "memory_budget_mb", static_cast<float>(tune.memory_budget_mb()),
                kNonNegative);
    check_float(node, "memory_fraction", static_cast<float>(tune.memory_fraction()),
                kPositiveFraction);
    check_int(node, "min_batch", tune.min_batch(), kPositive);
    if (tune.max_batch() < tune.min_batch()) {
      fail(node, "max_batch",
           "must be >= tune.min_batch = " + std::to_string(tune.min_batch()) + " (got " +
               std::to_string(tune.max_batch()) + ")");
    }
    check_int(node, "global_batch", tune.global_batch(), kNonNegative);
    check_float(node, "throughput_tolerance", static_cast<float>(tune.throughput_tolerance()),
                kDecay);
    check_int(node, "timing_steps", tune.timing_steps(), kPositive);
    check_int(node, "reference_batch", tune.reference_batch(), kNonNegative);
    check_float(node, "warmup_epochs", static_cast<float>(tune.warmup_epochs()), kNonNegative);
    check_float(node, "lr_min", tune.lr_min(), kPositive);
    check_float(node, "lr_max", tune.lr_max(), kPositive);
    if (!(tune.lr_max() > tune.lr_min())) {
      fail(node, "lr_max",
           "must be > tune.lr_min = " + float_text(tune.lr_min()) + " (got " +
               float_text(tune.lr_max()) + ")");
    }
    check_int(node, "lr_range_steps", tune.lr_range_steps(), kAtLeastTen);
  }

  const Provenance& provenance_;
  const proto::Config* config_ = nullptr;
};

}  // namespace

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
