// The `dpt` command line: parses arguments with CLI11, runs one subcommand, and is the one place
// that turns errors into a printed line and an exit code (README "Exit codes"): dpt::Error exits
// with its kind's code, usage errors with 2, anything unexpected with 1. Never a core dump.
#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <exception>

#include "devices/error.h"
#include "launch/bench_comm.h"
#include "launch/bench_report.h"
#include "launch/commands.h"
#include "launch/compress_command.h"
#include "launch/devices_command.h"
#include "launch/report.h"
#include "launch/world.h"

namespace {

constexpr int kUsageExit = 2;

void add_train(CLI::App& app, dpt::TrainArgs& args) {
  auto* cmd = app.add_subcommand("train", "Train a model from a config");
  cmd->add_option("config", args.config, "Config file (.prototxt)")->required();
  cmd->add_option("--run-dir", args.run_dir,
                  "Run directory: config.prototxt, metrics.jsonl, model.h5")
      ->required();
  cmd->add_option("--set", args.overrides, "Override a config field: a.b=value (repeatable)");
  cmd->add_option("--resume", args.resume,
                  "Continue a run: 'auto' (the newest checkpoint that verifies) or a checkpoint");
}

// dpt checkpoint inspect FILE / verify FILE|DIR
void add_checkpoint(CLI::App& app, dpt::CheckpointArgs& args) {
  auto* checkpoint = app.add_subcommand("checkpoint", "Checkpoint tools");
  checkpoint->require_subcommand(1);
  checkpoint->add_subcommand("inspect", "Show what a checkpoint holds and whether it verifies")
      ->add_option("file", args.path, "Checkpoint file")
      ->required();
  checkpoint->add_subcommand("verify", "Check every checkpoint's checksums (exit 4 on damage)")
      ->add_option("path", args.path, "Checkpoint file or directory")
      ->required();
}

// dpt trace merge RUN_DIR [--out FILE]
void add_trace(CLI::App& app, dpt::TraceMergeArgs& args) {
  auto* trace = app.add_subcommand("trace", "Timeline tools");
  trace->require_subcommand(1);
  auto* merge = trace->add_subcommand("merge", "Merge every rank's timeline into one Chrome trace");
  merge->add_option("run_dir", args.run_dir, "Run directory (with trace/rank_<r>.json)")
      ->required();
  merge->add_option("--out", args.out, "Output file (default RUN_DIR/trace/merged.json)");
}

// dpt report RUN_DIR [--out FILE]
void add_report(CLI::App& app, dpt::ReportArgs& args) {
  auto* cmd = app.add_subcommand("report", "Write a self-contained HTML report of a run");
  cmd->add_option("run_dir", args.run_dir, "Run directory of dpt train")->required();
  cmd->add_option("--out", args.out, "Output file (default RUN_DIR/report.html)");
}

// dpt devices [--json]
void add_devices(CLI::App& app, dpt::DevicesArgs& args) {
  auto* cmd = app.add_subcommand("devices", "Show CPUs, memory, GPUs, backends and a worker plan");
  cmd->add_flag("--json", args.json, "Print JSON instead of a table");
}

void add_eval(CLI::App& app, dpt::EvalArgs& args) {
  auto* cmd = app.add_subcommand("eval", "Evaluate saved weights on the config's test set");
  cmd->add_option("config", args.config, "Config file (.prototxt)")->required();
  cmd->add_option("--weights", args.weights, "Weights file (a run's model.h5)")->required();
  cmd->add_option("--set", args.overrides, "Override a config field: a.b=value (repeatable)");
}

// dpt compress CONFIG --weights W --out OUT [--run-dir DIR] [--set k=v]... [--json FILE]
void add_compress(CLI::App& app, dpt::CompressArgs& args) {
  auto* cmd = app.add_subcommand(
      "compress", "Prune trained weights (config compress.prune) and compare before vs after");
  cmd->add_option("config", args.config, "Config file (.prototxt)")->required();
  cmd->add_option("--weights", args.weights, "Weights file (a run's model.h5)")->required();
  cmd->add_option("--out", args.out, "Compressed weights file to write")->required();
  cmd->add_option("--run-dir", args.run_dir,
                  "Fine-tuning runs and the one-shot model (default: OUT's stem + _finetune)");
  cmd->add_option("--set", args.overrides, "Override a config field: a.b=value (repeatable)");
  cmd->add_option("--json", args.json, "Also write the table as JSON to this file");
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

void add_bench(CLI::App& app, dpt::BenchStepArgs& args, dpt::BenchCommArgs& comm,
               dpt::BenchInferenceArgs& inference) {
  auto* bench = app.add_subcommand("bench", "Benchmarks (print tables, optionally JSON)");
  bench->require_subcommand(1);
  auto* cmd = bench->add_subcommand("step", "Training step time vs plain sgemm of its shapes");
  cmd->add_option("config", args.config, "Config file (.prototxt)")->required();
  cmd->add_option("--set", args.overrides, "Override a config field: a.b=value (repeatable)");
  cmd->add_option("--warmup", args.warmup, "Untimed steps first")->capture_default_str();
  cmd->add_option("--steps", args.steps, "Timed steps")->capture_default_str();
  cmd->add_option("--json", args.json, "Also write the results as JSON to this file");

  auto* all_reduce = bench->add_subcommand(
      "comm", "All-reduce time and bandwidth per size: dpt's algorithms vs MPI_Allreduce (mpirun)");
  all_reduce->add_option("--min-bytes", comm.min_bytes, "Smallest message (4K, 1M, ...)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  all_reduce->add_option("--max-bytes", comm.max_bytes, "Largest message; sizes double")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  all_reduce->add_option("--iters", comm.iters, "Timed calls per size (0: scaled by size)")
      ->capture_default_str();
  all_reduce->add_option("--warmup", comm.warmup, "Untimed calls before each of 3 passes")
      ->capture_default_str();
  all_reduce
      ->add_option("--chunk-bytes", comm.chunk_bytes,
                   "comm.chunk_bytes for dpt's ring (0: automatic)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  all_reduce
      ->add_option("--threshold-bytes", comm.threshold_bytes,
                   "comm.ring_threshold_bytes for dpt auto")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  all_reduce
      ->add_option("--shm-threshold-bytes", comm.shm_threshold_bytes,
                   "comm.shm_threshold_bytes for dpt auto (ranks on one node)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  all_reduce
      ->add_option("--algorithms", comm.algorithms,
                   "Subset of: ring mpi native auto-plain auto (default all)")
      ->check(CLI::IsMember({"ring", "mpi", "native", "auto-plain", "auto"}));
  all_reduce->add_option("--backend", comm.backend,
                         "Also time this comm.backend (mpi, plugin, ...); alone: next to MPI only");
  all_reduce->add_option("--plugin-path", comm.plugin_path,
                         "comm.plugin_path for --backend plugin (the plug-in's .so)");
  all_reduce->add_option("--json", comm.json, "Also write the results as JSON to this file");

  auto* infer = bench->add_subcommand(
      "inference", "fp32 vs int8 inference latency and throughput, and plain GEMM rates");
  infer->add_option("config", inference.config, "Config file (.prototxt)")->required();
  infer->add_option("--weights", inference.weights,
                    "fp32 weights (calibrated on the training set); default: random weights "
                    "calibrated on synthetic data");
  infer->add_option("--batch", inference.batch, "Large batch for throughput")
      ->capture_default_str();
  infer->add_option("--seconds", inference.seconds, "Minimum timed seconds at each batch size")
      ->capture_default_str();
  infer->add_option("--set", inference.overrides, "Override a config field: a.b=value");
  infer->add_option("--json", inference.json, "Also write the results as JSON to this file");
}

// dpt bench report CONFIG [--out DIR] ...: added under the `bench` subcommand made by add_bench.
void add_bench_report(CLI::App& app, dpt::BenchReportArgs& args) {
  auto* cmd = app.get_subcommand("bench")->add_subcommand(
      "report",
      "One evaluation of this hardware for this model: compute, training, "
      "communication, power, inference (table, CSV, JSON)");
  cmd->add_option("config", args.config, "Config file (.prototxt)")->required();
  cmd->add_option("--set", args.overrides, "Override a config field: a.b=value (repeatable)");
  cmd->add_option("--out", args.out, "Directory for report.txt, report.csv, report.json")
      ->capture_default_str();
  cmd->add_option("--warmup", args.warmup, "Untimed training steps per precision")
      ->capture_default_str();
  cmd->add_option("--steps", args.steps, "Timed training steps per precision")
      ->capture_default_str();
  cmd->add_option("--inference-seconds", args.inference_seconds,
                  "Minimum timed seconds per inference batch size")
      ->capture_default_str();
  cmd->add_option("--accuracy-epochs", args.accuracy_epochs,
                  "Train float32 and bf16 this many epochs and compare test accuracy (0: skip)")
      ->capture_default_str();
}

// dpt tune CONFIG [--out FILE] [--json FILE] [--set ...]
void add_tune(CLI::App& app, dpt::TuneArgs& args) {
  auto* cmd = app.add_subcommand(
      "tune", "Measure the largest and fastest batch, scale the lr, write a tuned config");
  cmd->add_option("config", args.config, "Config file (.prototxt)")->required();
  cmd->add_option("--set", args.overrides, "Override a config field: a.b=value (repeatable)");
  cmd->add_option("--out", args.out, "Tuned config (default: CONFIG_tuned.prototxt beside CONFIG)");
  cmd->add_option("--json", args.json, "Also write the measurements and choices as JSON");
}

// Every subcommand's arguments, filled by CLI11.
struct Args {
  dpt::TrainArgs train;
  dpt::EvalArgs eval;
  dpt::CompressArgs compress;
  dpt::ImportIdxArgs import;
  dpt::CheckpointArgs checkpoint;
  dpt::TraceMergeArgs trace_merge;
  dpt::ReportArgs report;
  dpt::DevicesArgs devices;
  dpt::BenchStepArgs bench_step;
  dpt::BenchCommArgs bench_comm;
  dpt::TuneArgs tune;
  dpt::BenchInferenceArgs bench_inference;
  dpt::BenchReportArgs bench_report;
};

int dispatch(CLI::App& app, const dpt::WorldInfo& world, const Args& args) {
  if (app.got_subcommand("train")) return dpt::run_train(args.train, world);
  if (app.got_subcommand("eval")) return dpt::run_eval(args.eval);
  if (app.got_subcommand("compress")) return dpt::run_compress(args.compress, world);
  if (app.got_subcommand("data")) return dpt::run_import_idx(args.import);
  if (CLI::App* cmd = app.get_subcommand("checkpoint"); cmd->parsed()) {
    return cmd->got_subcommand("inspect") ? dpt::run_checkpoint_inspect(args.checkpoint)
                                          : dpt::run_checkpoint_verify(args.checkpoint);
  }
  if (app.got_subcommand("trace")) return dpt::run_trace_merge(args.trace_merge);
  if (app.got_subcommand("report")) return dpt::run_report(args.report);
  if (app.got_subcommand("devices")) return dpt::run_devices(args.devices);
  if (app.got_subcommand("tune")) return dpt::run_tune(args.tune, world);
  if (app.got_subcommand("bench")) {
    if (app.get_subcommand("bench")->got_subcommand("comm")) {
      return dpt::run_bench_comm(args.bench_comm, world);
    }
    if (app.get_subcommand("bench")->got_subcommand("report")) {
      return dpt::run_bench_report(args.bench_report, world);
    }
    if (app.get_subcommand("bench")->got_subcommand("inference")) {
      return dpt::run_bench_inference(args.bench_inference);
    }
    return dpt::run_bench_step(args.bench_step, world);
  }
  if (app.got_subcommand("version")) {
    fmt::print("dpt {}\n", DPT_VERSION);
    return 0;
  }
  return kUsageExit;
}

int fatal(dpt::MpiSession* session, const dpt::WorldInfo& world, const std::string& line,
          int exit_code) {
  if (session == nullptr) {
    fmt::print(stderr, "{}\n", line);
    return exit_code;
  }
  return dpt::report_fatal(*session, world, line, exit_code);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dpt: data-parallel training of Dense networks"};
  app.require_subcommand(1);
  Args args;
  add_train(app, args.train);
  add_eval(app, args.eval);
  add_compress(app, args.compress);
  add_data(app, args.import);
  add_checkpoint(app, args.checkpoint);
  add_trace(app, args.trace_merge);
  add_report(app, args.report);
  add_devices(app, args.devices);
  add_bench(app, args.bench_step, args.bench_comm, args.bench_inference);
  add_bench_report(app, args.bench_report);
  add_tune(app, args.tune);
  app.add_subcommand("version", "Print the version");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kUsageExit;
  }
  const std::string command = app.get_subcommands().front()->get_name();
  // Under mpirun every process joins MPI first; an error on any rank then ends the whole job
  // (report_fatal aborts it) so its peers cannot wait for it in a collective.
  std::unique_ptr<dpt::MpiSession> session;
  dpt::WorldInfo world;
  try {
    session = std::make_unique<dpt::MpiSession>(dpt::launched_by_mpirun());
    world = dpt::discover_world(*session);
    return dispatch(app, world, args);
  } catch (const dpt::Error& e) {
    return fatal(session.get(), world,
                 fmt::format("dpt {}: {}: {}", command, dpt::error_kind_name(e.kind()), e.what()),
                 e.exit_code());
  } catch (const std::exception& e) {
    return fatal(session.get(), world, fmt::format("dpt {}: internal error: {}", command, e.what()),
                 1);
  }
}
