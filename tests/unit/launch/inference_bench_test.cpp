// inference_bench tests: nearest-rank percentiles on hand-made lists, and bench_inference calling
// the forward function with the batch sizes and counts its options say (nothing about time).
#include "launch/inference_bench.h"

#include <gtest/gtest.h>

#include "devices/error.h"

namespace dpt {
namespace {

TEST(Percentile, NearestRank) {
  const std::vector<double> values = {5, 1, 4, 2, 3};
  EXPECT_EQ(percentile(values, 0.0), 1);
  EXPECT_EQ(percentile(values, 0.5), 3);   // ceil(2.5) = 3rd smallest
  EXPECT_EQ(percentile(values, 0.99), 5);  // ceil(4.95) = 5th
  EXPECT_EQ(percentile(values, 0.2), 1);   // ceil(1.0) = 1st
  EXPECT_EQ(percentile(values, 1.0), 5);
  std::vector<double> hundred;
  for (int i = 100; i >= 1; --i) hundred.push_back(i);
  EXPECT_EQ(percentile(hundred, 0.99), 99);
  EXPECT_EQ(percentile(hundred, 0.5), 50);
  EXPECT_THROW(percentile({}, 0.5), Error);
  EXPECT_THROW(percentile(values, 1.5), Error);
}

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
