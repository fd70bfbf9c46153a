// dpt compress (see compress_command.h). Every rank prunes and fine-tunes (training is
// collective); rank 0 then writes the files, measures each model and prints the table, so the
// measurements are not disturbed by the other ranks' work. run_compress goes through the phases
// below in order; the files written are compress_files.cpp's, the models measured
// compress_models.cpp's.
#include "launch/compress_command.h"

#include <fmt/core.h>
#include <unistd.h>

#include <filesystem>
#include <optional>

#include "comm/communicator.h"
#include "core/atomic_file.h"
#include "core/config.h"
#include "core/dataset.h"
#include "core/int8_model.h"
#include "core/model.h"
#include "devices/error.h"
#include "launch/compress_files.h"
#include "launch/compress_models.h"
#include "launch/compress_table.h"
#include "launch/console.h"
#include "launch/device_select.h"
#include "launch/prune_finetune.h"
#include "launch/trainer.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;

std::string structure_name(const proto::PruneConfig& prune) {
  return prune.structure() == proto::STRUCTURED ? "structured" : "unstructured";
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

// CONFIG with the overrides applied, refused before any work when dpt compress cannot use it.
proto::Config load_compress_config(const CompressArgs& args) {
  proto::Config config = load_config(args.config, args.overrides);
  // The table compares number formats, so "fp32" must be float32: PRECISION_AUTO (which picks
  // bf16 matmuls for training on CPUs that have them) runs float32 here.
  if (config.device().precision() == proto::PRECISION_AUTO) {
    config.mutable_device()->set_precision(proto::FP32);
  }
  const proto::CompressConfig& compress = config.compress();
  const bool pruning = compress.prune().sparsity() > 0, quantizing = compress.quantize().enabled();
  DPT_CHECK_AS(ErrorKind::kConfig, !config.data().test_path().empty())
      << args.config << ": data.test_path: required by dpt compress (accuracy is measured on it)";
  DPT_CHECK_AS(ErrorKind::kConfig, pruning || quantizing)
      << args.config
      << ": compress: nothing to do: set compress.prune.sparsity (e.g. --set "
         "compress.prune.sparsity=0.8) and/or compress.quantize.enabled (--set "
         "compress.quantize.enabled=true)";
  return config;
}

// What a run does and the names it gives, decided from the arguments and the config.
struct Plan {
  bool pruning = false, quantizing = false, finetune = false;
  std::string fp32_out;      // the pruned float32 model
  std::string run_dir;       // fine-tuning runs and the one-shot model
  std::string target;        // "unstructured 80%": the label of the one-shot model
  std::string final_method;  // the label of the pruned model
};

Plan make_plan(const CompressArgs& args, const proto::CompressConfig& compress) {
  const proto::PruneConfig& prune = compress.prune();
  Plan plan;
  plan.pruning = prune.sparsity() > 0;
  plan.quantizing = compress.quantize().enabled();
  plan.finetune = prune.finetune_steps() > 0;
  // With both, OUT is the int8 model and the pruned float32 model goes next to it.
  plan.fp32_out = plan.pruning && plan.quantizing ? fp32_sibling(args.out) : args.out;
  plan.run_dir = args.run_dir.empty() ? default_finetune_dir(args.out) : args.run_dir;
  plan.target = fmt::format("{} {:g}%", structure_name(prune), 100 * prune.sparsity());
  plan.final_method = plan.finetune
                          ? fmt::format("{} + fine-tune ({} x {} steps)", plan.target,
                                        prune.iterations(), prune.finetune_steps())
                          : (prune.iterations() > 1 ? fmt::format("{} ({} rounds, no fine-tune)",
                                                                  plan.target, prune.iterations())
                                                    : plan.target);
  return plan;
}

// Prunes (and fine-tunes) `state` in the rounds of `prune`; the writer (rank 0) shows the training
// and one line per round on stderr.
void prune_rounds(PruneState& state, Device& device, Communicator& comm, const std::string& run_dir,
                  const proto::PruneConfig& prune, bool writer) {
  ConsoleListener console(isatty(STDERR_FILENO) == 1);
  TrainListener quiet;
  TrainListener& listener = writer ? static_cast<TrainListener&>(console) : quiet;
  prune_and_finetune(state, device, comm, run_dir, listener, [&](const PruneRound& round) {
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
}

// Writes the one-shot model into the run directory; returns its path, or "" without one.
std::string write_oneshot(const std::optional<PruneState>& oneshot, Device& device,
                          const CompressArgs& args, const Plan& plan) {
  if (!oneshot) return "";
  std::error_code error;
  fs::create_directories(plan.run_dir, error);
  DPT_CHECK_AS(ErrorKind::kIo, !error) << plan.run_dir << ": cannot create it: " << error.message();
  const std::string oneshot_file = plan.run_dir + "/oneshot.h5";
  save_state(*oneshot, device, oneshot_file, args.weights, plan.target + " one shot");
  return oneshot_file;
}

// The table's rows: every model is timed on the same inputs. Quantizing writes OUT's int8 model
// first. A new method adds its ModelUnderTest here.
std::vector<CompressRow> measure_models(const CompressArgs& args, const Plan& plan, Device& device,
                                        const proto::Config& config, Model& original,
                                        const Dataset& test,
                                        const std::optional<PruneState>& oneshot,
                                        const std::string& oneshot_file, const PruneState& state) {
  const Tensor inputs = bench_inputs(device, config, test);
  std::vector<ModelUnderTest> models;
  models.push_back(float_model("fp32 original", original, args.weights, "", test, config, inputs));
  std::unique_ptr<Model> oneshot_model;
  if (oneshot) {
    oneshot_model = build_model(device, oneshot->config, oneshot->params);
    models.push_back(float_model(plan.target + " one shot", *oneshot_model, oneshot_file,
                                 pruned_text(*oneshot), test, oneshot->config, inputs));
  }
  std::unique_ptr<Model> pruned;
  if (plan.pruning) {
    pruned = build_model(device, state.config, state.params);
    models.push_back(float_model(plan.final_method, *pruned, plan.fp32_out, pruned_text(state),
                                 test, state.config, inputs));
  }
  std::unique_ptr<Int8Model> int8;
  if (plan.quantizing) {
    Model& source = plan.pruning ? *pruned : original;
    const proto::Config& source_config = plan.pruning ? state.config : config;
    const std::string method = plan.pruning ? plan.final_method + " + int8" : "int8";
    const bool shapes_changed = state.hidden != state.hidden_original;
    int8 = std::make_unique<Int8Model>(
        device, quantize_to_file(source, source_config, args.out, args.weights, method,
                                 plan.pruning && shapes_changed));
    models.push_back(int8_model(method, *int8, device, source, args.out,
                                plan.pruning ? pruned_text(state) : "", test, source_config,
                                inputs));
  }
  return measure_rows(models, bench_options(config.compress()));
}

// After the table: what was written and how to evaluate it. `out_config` is the pruned model's
// config file, or "" when its shapes did not change.
void print_written(const CompressArgs& args, const Plan& plan, const proto::Config& config,
                   const PruneState& state, const std::string& out_config) {
  const bool pruning = plan.pruning, shapes_changed = state.hidden != state.hidden_original;
  const std::string& fp32_out = plan.fp32_out;
  if (plan.quantizing) {
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
  if (pruning && plan.finetune) {
    fmt::print("fine-tuning runs and the one-shot model: {}\n", plan.run_dir);
  }
}

// The table as JSON at --json, with the run's arguments.
void write_json(const CompressArgs& args, const std::vector<CompressRow>& rows,
                int64_t eval_samples) {
  nlohmann::json json = rows_json(rows, eval_samples);
  json["config"] = args.config;
  json["weights"] = args.weights;
  json["out"] = args.out;
  const std::string text = json.dump(2) + "\n";
  write_file_atomically(args.json, text.data(), text.size());
}

}  // namespace

int run_compress(const CompressArgs& args, const WorldInfo& world) {
  const proto::Config config = load_compress_config(args);
  const proto::PruneConfig& prune = config.compress().prune();
  const Plan plan = make_plan(args, config.compress());
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
  const Dataset test = first_samples(full_test, config.compress().eval_samples());
  DPT_CHECK_AS(ErrorKind::kData, test.size > 0) << test.path << ": no samples to measure on";

  // One shot to the target, no fine-tuning: the baseline that fine-tuning is compared with.
  std::optional<PruneState> oneshot;
  if (plan.pruning && plan.finetune && writer) {
    oneshot = start_pruning(config, original);
    prune_to(*oneshot, device, prune.sparsity());
  }
  PruneState state = start_pruning(config, original);
  DPT_CHECK_AS(ErrorKind::kConfig,
               !plan.pruning || prune.structure() != proto::STRUCTURED || state.hidden_original > 0)
      << args.config
      << ": compress.prune.structure: STRUCTURED removes hidden neurons, and this model has no "
         "hidden Dense layer";
  if (plan.pruning) prune_rounds(state, device, *comm, plan.run_dir, prune, writer);
  if (!writer) return 0;

  const std::string oneshot_file = write_oneshot(oneshot, device, args, plan);
  const std::string out_config =
      plan.pruning ? save_state(state, device, plan.fp32_out, args.weights, plan.final_method) : "";
  const std::vector<CompressRow> rows =
      measure_models(args, plan, device, config, original, test, oneshot, oneshot_file, state);
  fmt::print("{}", format_table(rows, test.size));
  print_written(args, plan, config, state, out_config);
  if (!args.json.empty()) write_json(args, rows, test.size);
  return 0;
}

}  // namespace dpt
