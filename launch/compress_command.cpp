// dpt compress (see compress_command.h). Every rank prunes and fine-tunes (training is
// collective); rank 0 then writes the files, measures each model and prints the table, so the
// measurements are not disturbed by the other ranks' work.
#include "launch/compress_command.h"

#include <fmt/core.h>
#include <unistd.h>

#include <filesystem>
#include <optional>

#include "comm/communicator.h"
#include "core/atomic_file.h"
#include "core/config.h"
#include "core/dataset.h"
#include "core/int8_file.h"
#include "core/int8_model.h"
#include "core/model.h"
#include "devices/error.h"
#include "launch/compress_table.h"
#include "launch/console.h"
#include "launch/device_select.h"
#include "launch/int8_eval.h"
#include "launch/prune_finetune.h"
#include "launch/trainer.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;

// The first `n` samples of `dataset` (all of them when n is 0 or larger than the set).
Dataset first_samples(const Dataset& dataset, int64_t n) {
  if (n <= 0 || n >= dataset.size) return dataset;
  Dataset head = dataset;
  head.size = n;
  head.labels.resize(static_cast<std::size_t>(n));
  const auto values = static_cast<std::size_t>(n * dataset.feature_size);
  if (!head.inputs_u8.empty()) head.inputs_u8.resize(values);
  if (!head.inputs_f32.empty()) head.inputs_f32.resize(values);
  return head;
}

std::string structure_name(const proto::PruneConfig& prune) {
  return prune.structure() == proto::STRUCTURED ? "structured" : "unstructured";
}

// "80.0% of weights" / "50.0% of neurons (2048 -> 1024)".
std::string pruned_text(const PruneState& state) {
  if (state.config.compress().prune().structure() == proto::STRUCTURED) {
    return fmt::format("{:.1f}% of neurons", 100.0 * state.sparsity());
  }
  return fmt::format("{:.1f}% of weights", 100.0 * state.sparsity());
}

// Hidden layer widths, "1024-1024".
std::string hidden_widths(const proto::Config& config) {
  std::string text;
  const auto& layers = config.model().layer();
  int last = -1;
  for (int i = 0; i < layers.size(); ++i) {
    if (layers[i].has_dense()) last = i;
  }
  for (int i = 0; i < last; ++i) {
    if (!layers[i].has_dense()) continue;
    text += (text.empty() ? "" : "-") + std::to_string(layers[i].dense().units());
  }
  return text;
}

// Writes `state` as a weights file at `path` and, when its shapes changed, its config next to it.
// Returns the config path written, or "".
std::string save_state(const PruneState& state, Device& device, const std::string& path,
                       const std::string& from, const std::string& method) {
  const std::unique_ptr<Model> model = build_model(device, state.config, state.params);
  const std::string config_text = config_to_text(state.config);
  model->save_weights(path, {{"config", config_text},
                             {"name", state.config.name()},
                             {"compressed_from", from},
                             {"compression", method}});
  if (state.hidden == state.hidden_original) return "";
  const std::string config_path = config_path_for(path);
  write_file_atomically(config_path, config_text.data(), config_text.size());
  return config_path;
}

// What measure_rows needs to measure a float32 dpt Model; `model` and `inputs` must outlive it.
ModelUnderTest float_model(const std::string& method, Model& model, const std::string& file,
                           const std::string& pruned, const Dataset& test,
                           const proto::Config& config, const Tensor& inputs) {
  ModelUnderTest m;
  m.method = method;
  m.file = file;
  m.pruned = pruned;
  m.params = model.num_params();
  m.nonzero = count_nonzero(model);
  m.accuracy = [&model, &test, config] {
    return evaluate(model, test, normalization_from(config.data()), config.model().loss(),
                    config.train().eval_batch_size())
        .accuracy;
  };
  m.forward = [&model, inputs](int64_t batch) { model.forward(inputs.rows(batch), Pass{}); };
  return m;
}

// The int8 counterpart of float_model; `model`, `device` and `inputs` must outlive it.
ModelUnderTest int8_model(const std::string& method, Int8Model& model, Device& device,
                          const Model& source, const std::string& file, const std::string& pruned,
                          const Dataset& test, const proto::Config& config, const Tensor& inputs) {
  ModelUnderTest m;
  m.method = method;
  m.file = file;
  m.pruned = pruned;
  m.params = source.num_params();
  m.nonzero = count_nonzero(source);
  m.accuracy = [&model, &device, &test, config] {
    return evaluate_int8(model, device, test, normalization_from(config.data()),
                         config.model().loss(), config.train().eval_batch_size())
        .accuracy;
  };
  m.forward = [&model, inputs](int64_t batch) { model.forward(inputs.rows(batch)); };
  return m;
}

// Quantizes `source` (of `source_config`), calibrated on the training set, and writes it to
// `path` (with the config next to it when `shapes_changed`).
QuantizedModel quantize_to_file(Model& source, const proto::Config& source_config,
                                const std::string& path, const std::string& from,
                                const std::string& method, bool shapes_changed) {
  const Dataset train = load_dataset(source_config.data().train_path());
  QuantizedModel quantized =
      quantize_model(source, train, normalization_from(source_config.data()),
                     quantize_options_from(source_config.compress().quantize()));
  const std::string config_text = config_to_text(source_config);
  save_quantized_model(
      path, quantized,
      {{"config", config_text}, {"compressed_from", from}, {"compression", method}});
  if (shapes_changed) {
    write_file_atomically(config_path_for(path), config_text.data(), config_text.size());
  }
  return quantized;
}

// "small.h5" -> "small_fp32.h5": where the pruned float32 model goes when OUT is its int8 version.
std::string fp32_sibling(const std::string& out) {
  const fs::path path(out);
  return (path.parent_path() / (path.stem().string() + "_fp32" + path.extension().string()))
      .string();
}

// compress.throughput_batch normalised test samples (repeated when the test set is smaller).
Tensor bench_inputs(Device& device, const proto::Config& config, const Dataset& test) {
  const int64_t batch = config.compress().throughput_batch();
  Tensor inputs(device, {batch, config.model().input_size()}, DType::kF32);
  std::vector<int64_t> indices(static_cast<std::size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) indices[static_cast<std::size_t>(i)] = i % test.size;
  std::vector<int32_t> labels(indices.size());
  gather_batch(test, indices.data(), batch, normalization_from(config.data()), inputs,
               labels.data());
  return inputs;
}

InferenceBenchOptions bench_options(const proto::CompressConfig& compress) {
  InferenceBenchOptions options;
  options.warmup = compress.latency_warmup();
  options.latency_repeats = compress.latency_repeats();
  options.throughput_batch = compress.throughput_batch();
  options.throughput_repeats = compress.throughput_repeats();
  return options;
}

// Creates OUT's directory when needed and refuses, before any work, one that cannot be written.
void prepare_out_dir(const std::string& out) {
  const fs::path parent = fs::path(out).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  std::error_code error;
  fs::create_directories(dir, error);
  DPT_CHECK_AS(ErrorKind::kIo, !error && ::access(dir.c_str(), W_OK) == 0)
      << out << ": cannot write it: " << dir << " is not a writable directory";
}

}  // namespace

std::string default_finetune_dir(const std::string& out) {
  const fs::path path(out);
  return (path.parent_path() / (path.stem().string() + "_finetune")).string();
}

std::string config_path_for(const std::string& out) {
  return fs::path(out).replace_extension(".prototxt").string();
}

int run_compress(const CompressArgs& args, const WorldInfo& world) {
  proto::Config config = load_config(args.config, args.overrides);
  // The table compares number formats, so "fp32" must be float32: PRECISION_AUTO (which picks
  // bf16 matmuls for training on CPUs that have them) runs float32 here.
  if (config.device().precision() == proto::PRECISION_AUTO) {
    config.mutable_device()->set_precision(proto::FP32);
  }
  const proto::CompressConfig& compress = config.compress();
  const proto::PruneConfig& prune = compress.prune();
  const bool pruning = prune.sparsity() > 0, quantizing = compress.quantize().enabled();
  DPT_CHECK_AS(ErrorKind::kConfig, !config.data().test_path().empty())
      << args.config << ": data.test_path: required by dpt compress (accuracy is measured on it)";
  DPT_CHECK_AS(ErrorKind::kConfig, pruning || quantizing)
      << args.config
      << ": compress: nothing to do: set compress.prune.sparsity (e.g. --set "
         "compress.prune.sparsity=0.8) and/or compress.quantize.enabled (--set "
         "compress.quantize.enabled=true)";
  // With both, OUT is the int8 model and the pruned float32 model goes next to it.
  const std::string fp32_out = pruning && quantizing ? fp32_sibling(args.out) : args.out;
  // The device first: the nccl backend (and auto's choice of it) needs the worker's GPU set.
  // Pruning and int8 quantization are CPU code.
  DeviceChoice choice = select_device(cpu_only(config.device(), "dpt compress"), world);
  std::unique_ptr<Communicator> comm = make_communicator(config.comm(), choice.device.get());
  DPT_CHECK_AS(ErrorKind::kConfig, comm->size() == world.size)
      << "comm.backend: \"" << config.comm().backend() << "\" gives a world of " << comm->size()
      << " but the launcher started " << world.size << " processes";
  Device& device = *choice.device;
  const bool writer = comm->rank() == 0;
  if (writer) prepare_out_dir(args.out);

  Model original(device, config);
  original.load_weights(args.weights);
  const Dataset full_test = load_dataset(config.data().test_path());
  check_dataset_fits(config, original, full_test);
  const Dataset test = first_samples(full_test, compress.eval_samples());
  DPT_CHECK_AS(ErrorKind::kData, test.size > 0) << test.path << ": no samples to measure on";

  const bool finetune = prune.finetune_steps() > 0;
  const std::string run_dir = args.run_dir.empty() ? default_finetune_dir(args.out) : args.run_dir;
  const std::string target = fmt::format("{} {:g}%", structure_name(prune), 100 * prune.sparsity());
  const std::string final_method =
      finetune ? fmt::format("{} + fine-tune ({} x {} steps)", target, prune.iterations(),
                             prune.finetune_steps())
               : (prune.iterations() > 1
                      ? fmt::format("{} ({} rounds, no fine-tune)", target, prune.iterations())
                      : target);
  // One shot to the target, no fine-tuning: the baseline that fine-tuning is compared with.
  std::optional<PruneState> oneshot;
  if (pruning && finetune && writer) {
    oneshot = start_pruning(config, original);
    prune_to(*oneshot, device, prune.sparsity());
  }
  PruneState state = start_pruning(config, original);
  DPT_CHECK_AS(ErrorKind::kConfig,
               !pruning || prune.structure() != proto::STRUCTURED || state.hidden_original > 0)
      << args.config
      << ": compress.prune.structure: STRUCTURED removes hidden neurons, and this model has no "
         "hidden Dense layer";
  ConsoleListener console(isatty(STDERR_FILENO) == 1);
  TrainListener quiet;
  TrainListener& listener = writer ? static_cast<TrainListener&>(console) : quiet;
  if (pruning)
    prune_and_finetune(state, device, *comm, run_dir, listener, [&](const PruneRound& round) {
      if (!writer) return;
      fmt::print(stderr, "round {}/{}: pruned {}", round.round, prune.iterations(),
                 pruned_text(state));
      if (round.steps > 0) {
        fmt::print(stderr, ", fine-tuned {} steps in {}", round.steps,
                   format_duration(round.seconds));
      }
      if (round.eval) fmt::print(stderr, ", test_accuracy {:.4f}", round.eval->accuracy);
      fmt::print(stderr, "\n");
    });
  if (!writer) return 0;

  std::string oneshot_file;
  if (oneshot) {
    std::error_code error;
    fs::create_directories(run_dir, error);
    DPT_CHECK_AS(ErrorKind::kIo, !error) << run_dir << ": cannot create it: " << error.message();
    oneshot_file = run_dir + "/oneshot.h5";
    save_state(*oneshot, device, oneshot_file, args.weights, target + " one shot");
  }
  const bool shapes_changed = state.hidden != state.hidden_original;
  const std::string out_config =
      pruning ? save_state(state, device, fp32_out, args.weights, final_method) : "";

  // Every model is timed on the same inputs. A new method adds its ModelUnderTest here.
  const Tensor inputs = bench_inputs(device, config, test);
  std::vector<ModelUnderTest> models;
  models.push_back(float_model("fp32 original", original, args.weights, "", test, config, inputs));
  std::unique_ptr<Model> oneshot_model;
  if (oneshot) {
    oneshot_model = build_model(device, oneshot->config, oneshot->params);
    models.push_back(float_model(target + " one shot", *oneshot_model, oneshot_file,
                                 pruned_text(*oneshot), test, oneshot->config, inputs));
  }
  std::unique_ptr<Model> pruned;
  if (pruning) {
    pruned = build_model(device, state.config, state.params);
    models.push_back(float_model(final_method, *pruned, fp32_out, pruned_text(state), test,
                                 state.config, inputs));
  }
  std::unique_ptr<Int8Model> int8;
  if (quantizing) {
    Model& source = pruning ? *pruned : original;
    const proto::Config& source_config = pruning ? state.config : config;
    const std::string method = pruning ? final_method + " + int8" : "int8";
    int8 = std::make_unique<Int8Model>(
        device, quantize_to_file(source, source_config, args.out, args.weights, method,
                                 pruning && shapes_changed));
    models.push_back(int8_model(method, *int8, device, source, args.out,
                                pruning ? pruned_text(state) : "", test, source_config, inputs));
  }
  const std::vector<CompressRow> rows = measure_rows(models, bench_options(compress));

  fmt::print("{}", format_table(rows, test.size));
  if (quantizing) {
    fmt::print("wrote {} (int8){}; evaluate with: dpt eval {} --weights {}\n", args.out,
               pruning ? fmt::format(", the pruned float32 model {}", fp32_out) : "",
               pruning && shapes_changed ? config_path_for(args.out) : args.config, args.out);
  }
  if (pruning && !out_config.empty()) {
    fmt::print(
        "wrote {} and {} (hidden layers {} -> {}); evaluate with: dpt eval {} --weights {}\n",
        fp32_out, out_config, hidden_widths(config), hidden_widths(state.config), out_config,
        fp32_out);
  } else if (pruning) {
    fmt::print("wrote {}", fp32_out);
    fmt::print(
        " (same shapes as the original: unstructured zeros make the file no smaller unless it is "
        "compressed, see gzip'd, and inference no faster, since it runs dense GEMMs)\n");
  }
  if (pruning && finetune) fmt::print("fine-tuning runs and the one-shot model: {}\n", run_dir);
  if (!args.json.empty()) {
    nlohmann::json json = rows_json(rows, test.size);
    json["config"] = args.config;
    json["weights"] = args.weights;
    json["out"] = args.out;
    const std::string text = json.dump(2) + "\n";
    write_file_atomically(args.json, text.data(), text.size());
  }
  return 0;
}

}  // namespace dpt
