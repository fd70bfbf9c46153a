// inference_bench tests: bench_inference calls the forward function with the batch sizes and
// counts its options say (nothing about time).
#include "launch/inference_bench.h"

#include <gtest/gtest.h>

#include "devices/error.h"

namespace dpt {
namespace {

TEST(BenchInference, CallsForwardWithTheConfiguredBatchesAndCounts) {
  std::vector<int64_t> batches;
  InferenceBenchOptions options;
  options.warmup = 3;
  options.latency_repeats = 7;
  options.throughput_batch = 64;
  options.throughput_repeats = 4;
  const InferenceTiming timing =
      bench_inference([&](int64_t batch) { batches.push_back(batch); }, options);
  std::vector<int64_t> expected(10, 1);
  expected.insert(expected.end(), 7, 64);
  EXPECT_EQ(batches, expected);
  EXPECT_EQ(timing.throughput_batch, 64);
  EXPECT_GE(timing.p99_ms, timing.p50_ms);
  EXPECT_GE(timing.p50_ms, 0.0);
  EXPECT_GE(timing.samples_per_s, 0.0);
  options.latency_repeats = 0;
  EXPECT_THROW(bench_inference([](int64_t) {}, options), Error);
}

}  // namespace
}  // namespace dpt
