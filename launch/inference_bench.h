// Inference timing, for any model format: the caller passes a function that runs one forward pass
// of a batch of a given size (on inputs it prepared), and this times it at batch 1 (latency p50 and
// p99) and at a large batch (throughput, from the median time). Warm-up calls are not timed.
// Used by `dpt compress` for every row of its table. Prints nothing; asserts nothing about time.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "launch/stats.h"

namespace dpt {

struct InferenceBenchOptions {
  int64_t warmup = 20;            // untimed calls before each measurement
  int64_t latency_repeats = 200;  // timed calls at batch 1
  int64_t throughput_batch = 1000;
  int64_t throughput_repeats = 20;  // timed calls at throughput_batch
};

struct InferenceTiming {
  double p50_ms = 0.0;  // batch 1, median
  double p99_ms = 0.0;  // batch 1
  int64_t throughput_batch = 0;
  double samples_per_s = 0.0;  // throughput_batch / median time of one call
};

// Runs one forward pass of `batch` samples (1 <= batch <= options.throughput_batch).
using ForwardFn = std::function<void(int64_t batch)>;

// Times `forward` as `options` say; calls it warmup + latency_repeats times with batch 1, then
// warmup + throughput_repeats times with throughput_batch.
InferenceTiming bench_inference(const ForwardFn& forward, const InferenceBenchOptions& options);

}  // namespace dpt
