// The `dpt` subcommands. Each run_* function does the work and returns the process exit code;
// errors propagate as dpt::Error to main(), which prints them and exits with their code.
#pragma once

#include <string>
#include <vector>

namespace dpt {

struct TrainArgs {
  std::string config;
  std::string run_dir;
  std::vector<std::string> overrides;  // --set a.b=value
};
int run_train(const TrainArgs& args);

struct EvalArgs {
  std::string config;
  std::string weights;
  std::vector<std::string> overrides;
};
int run_eval(const EvalArgs& args);

struct ImportIdxArgs {
  std::string images;
  std::string labels;
  std::string out;
  int64_t num_classes = 0;  // 0: max label + 1
};
int run_import_idx(const ImportIdxArgs& args);

struct BenchStepArgs {
  std::string config;
  std::vector<std::string> overrides;
  int64_t warmup = 5;
  int64_t steps = 30;
  std::string json;  // write results here too when not empty
};
int run_bench_step(const BenchStepArgs& args);

}  // namespace dpt
