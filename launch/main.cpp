// The `dpt` command line: parses arguments with CLI11, runs one subcommand, and is the one place
// that turns errors into a printed line and an exit code (README "Exit codes"): dpt::Error exits
// with its kind's code, usage errors with 2, anything unexpected with 1. Never a core dump.
#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <exception>

#include "devices/error.h"
#include "launch/commands.h"

namespace {

constexpr int kUsageExit = 2;

void add_train(CLI::App& app, dpt::TrainArgs& args) {
  auto* cmd = app.add_subcommand("train", "Train a model from a config");
  cmd->add_option("config", args.config, "Config file (.prototxt)")->required();
  cmd->add_option("--run-dir", args.run_dir,
                  "Run directory: config.prototxt, metrics.jsonl, model.h5")
      ->required();
  cmd->add_option("--set", args.overrides, "Override a config field: a.b=value (repeatable)");
}

void add_eval(CLI::App& app, dpt::EvalArgs& args) {
  auto* cmd = app.add_subcommand("eval", "Evaluate saved weights on the config's test set");
  cmd->add_option("config", args.config, "Config file (.prototxt)")->required();
  cmd->add_option("--weights", args.weights, "Weights file (a run's model.h5)")->required();
  cmd->add_option("--set", args.overrides, "Override a config field: a.b=value (repeatable)");
}

void add_data(CLI::App& app, dpt::ImportIdxArgs& args) {
  auto* data = app.add_subcommand("data", "Dataset tools");
  data->require_subcommand(1);
  auto* cmd = data->add_subcommand("import-idx", "Convert IDX image/label files to dpt HDF5");
  cmd->add_option("--images", args.images, "IDX images file (gzip or plain)")->required();
  cmd->add_option("--labels", args.labels, "IDX labels file (gzip or plain)")->required();
  cmd->add_option("--out", args.out, "Output HDF5 dataset")->required();
  cmd->add_option("--num-classes", args.num_classes, "Classes (default: max label + 1)");
}

void add_bench(CLI::App& app, dpt::BenchStepArgs& args) {
  auto* bench = app.add_subcommand("bench", "Benchmarks (print tables, optionally JSON)");
  bench->require_subcommand(1);
  auto* cmd = bench->add_subcommand("step", "Training step time vs plain sgemm of its shapes");
  cmd->add_option("config", args.config, "Config file (.prototxt)")->required();
  cmd->add_option("--set", args.overrides, "Override a config field: a.b=value (repeatable)");
  cmd->add_option("--warmup", args.warmup, "Untimed steps first")->capture_default_str();
  cmd->add_option("--steps", args.steps, "Timed steps")->capture_default_str();
  cmd->add_option("--json", args.json, "Also write the results as JSON to this file");
}

int dispatch(CLI::App& app, const dpt::TrainArgs& train, const dpt::EvalArgs& eval,
             const dpt::ImportIdxArgs& import, const dpt::BenchStepArgs& bench) {
  if (app.got_subcommand("train")) return dpt::run_train(train);
  if (app.got_subcommand("eval")) return dpt::run_eval(eval);
  if (app.got_subcommand("data")) return dpt::run_import_idx(import);
  if (app.got_subcommand("bench")) return dpt::run_bench_step(bench);
  if (app.got_subcommand("version")) {
    fmt::print("dpt {}\n", DPT_VERSION);
    return 0;
  }
  return kUsageExit;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dpt: data-parallel training of Dense networks"};
  app.require_subcommand(1);
  dpt::TrainArgs train;
  dpt::EvalArgs eval;
  dpt::ImportIdxArgs import;
  dpt::BenchStepArgs bench;
  add_train(app, train);
  add_eval(app, eval);
  add_data(app, import);
  add_bench(app, bench);
  app.add_subcommand("version", "Print the version");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kUsageExit;
  }
  const std::string command = app.get_subcommands().front()->get_name();
  try {
    return dispatch(app, train, eval, import, bench);
  } catch (const dpt::Error& e) {
    fmt::print(stderr, "dpt {}: {}: {}\n", command, dpt::error_kind_name(e.kind()), e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    fmt::print(stderr, "dpt {}: internal error: {}\n", command, e.what());
    return 1;
  }
}
