// bench_inference (see inference_bench.h): per-call wall times with steady_clock, warm-up first.
#include "launch/inference_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "devices/error.h"

namespace dpt {
namespace {

using Clock = std::chrono::steady_clock;

// Seconds of each of `repeats` timed calls of forward(batch), after `warmup` untimed ones.
std::vector<double> time_calls(const ForwardFn& forward, int64_t batch, int64_t warmup,
                               int64_t repeats) {
  for (int64_t i = 0; i < warmup; ++i) forward(batch);
  std::vector<double> seconds;
  seconds.reserve(static_cast<std::size_t>(repeats));
  for (int64_t i = 0; i < repeats; ++i) {
    const auto start = Clock::now();
    forward(batch);
    seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  return seconds;
}

}  // namespace

InferenceTiming bench_inference(const ForwardFn& forward, const InferenceBenchOptions& options) {
  DPT_CHECK(options.warmup >= 0 && options.latency_repeats > 0 && options.throughput_batch > 0 &&
            options.throughput_repeats > 0)
      << "bench_inference: bad options";
  InferenceTiming timing;
  const std::vector<double> latency =
      time_calls(forward, 1, options.warmup, options.latency_repeats);
  timing.p50_ms = percentile(latency, 0.5) * 1e3;
  timing.p99_ms = percentile(latency, 0.99) * 1e3;
  const std::vector<double> large =
      time_calls(forward, options.throughput_batch, options.warmup, options.throughput_repeats);
  timing.throughput_batch = options.throughput_batch;
  const double median = percentile(large, 0.5);
  timing.samples_per_s = median > 0 ? static_cast<double>(options.throughput_batch) / median : 0.0;
  return timing;
}

}  // namespace dpt
