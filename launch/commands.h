// The `dpt` subcommands. Each run_* function does the work and returns the process exit code;
// errors propagate as dpt::Error to main(), which prints them and exits with their code.
#pragma once

#include <string>
#include <vector>

#include "launch/world.h"

namespace dpt {

struct TrainArgs {
  std::string config;
  std::string run_dir;
  std::vector<std::string> overrides;  // --set a.b=value
  std::string resume;                  // --resume auto|PATH
};
// `world`: where this process sits (launch/world.h).
int run_train(const TrainArgs& args, const WorldInfo& world);

struct EvalArgs {
  std::string config;
  std::string weights;  // fp32 weights (a run's model.h5) or an int8 model file
  std::vector<std::string> overrides;
};
// Prints "test_loss L test_accuracy A (N samples)", with ", int8" inside the parentheses when
// `weights` is an int8 model file (detected by its format attribute).
int run_eval(const EvalArgs& args);

struct ImportIdxArgs {
  std::string images;
  std::string labels;
  std::string out;
  int64_t num_classes = 0;  // 0: max label + 1
};
int run_import_idx(const ImportIdxArgs& args);

struct CheckpointArgs {
  std::string path;  // a checkpoint file (inspect, verify) or a directory of them (verify)
};
// dpt checkpoint inspect FILE: what is inside, and whether it verifies (exit 4 when not).
int run_checkpoint_inspect(const CheckpointArgs& args);
// dpt checkpoint verify FILE|DIR: checks every checkpoint's checksums; exit 4 when any fails.
int run_checkpoint_verify(const CheckpointArgs& args);

struct TraceMergeArgs {
  std::string run_dir;
  std::string out;  // default RUN_DIR/trace/merged.json
};
// dpt trace merge RUN_DIR: one Chrome trace of every rank's timeline.
int run_trace_merge(const TraceMergeArgs& args);

struct BenchStepArgs {
  std::string config;
  std::vector<std::string> overrides;
  int64_t warmup = 5;
  int64_t steps = 30;
  std::string json;  // write results here too when not empty
};
int run_bench_step(const BenchStepArgs& args, const WorldInfo& world);

struct TuneArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string out;   // default: CONFIG's directory, <stem>_tuned.prototxt; never CONFIG itself
  std::string json;  // write the measurements and choices here too when not empty
};
// dpt tune CONFIG: measures memory, throughput and (optionally) loss vs lr, writes a tuned config
// that explains each choice (README "Tuning"). Every rank measures; rank 0 writes.
int run_tune(const TuneArgs& args, const WorldInfo& world);
struct BenchInferenceArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string weights;   // fp32 weights; empty: the config's random initialisation
  int64_t batch = 1024;  // the large batch (throughput); latency is measured at batch 1
  double seconds = 3.0;  // minimum timed seconds at each batch size
  std::string json;      // write results here too when not empty
};
// dpt bench inference: fp32 vs int8 forward latency (batch 1, p50/p99) and throughput (large
// batch), and plain fp32 / int8 GEMM rates at the model's shapes, all in one run.
int run_bench_inference(const BenchInferenceArgs& args);

}  // namespace dpt
