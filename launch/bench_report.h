// dpt bench report CONFIG [--out DIR]: one run that says how well this hardware trains this model.
// It measures, in order: the CPU's ceilings (FMA throughput, triad bandwidth; devices/cpu_peak.h),
// the training step in float32 and bf16 (launch/bench.h bench_step), the gradient all-reduce per
// message size on the job's communicator (launch/comm_probe.h, under mpirun), power and energy of
// the training steps (RAPL / NVML, or "n/a" and why), fp32 vs int8 inference (bench_inference)
// and, with --accuracy-epochs N, the fp32 vs bf16 test accuracy after N epochs of real training.
// Prints the detailed tables as it goes, then one summary table; writes DIR/report.txt, .csv and
// .json (rank 0). Every rank must run it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "launch/world.h"

namespace dpt {

struct BenchReportArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string out = "bench_report";  // directory for report.txt, report.csv, report.json
  int64_t warmup = 5;                // training steps before timing, per precision
  int64_t steps = 30;                // timed training steps, per precision
  double inference_seconds = 1.0;    // minimum timed seconds per inference batch size
  int64_t accuracy_epochs = 0;       // > 0: train fp32 and bf16 this many epochs and compare
};

int run_bench_report(const BenchReportArgs& args, const WorldInfo& world);

}  // namespace dpt
