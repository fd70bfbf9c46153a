// The CPU ceiling probes compute what they claim (timing is reported, never asserted).
#include "devices/cpu_peak.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace dpt {
namespace {

TEST(CpuPeak, FmaKernelMatchesScalarFusedMultiplyAdd) {
  std::vector<float> acc(kFmaLanes);
  for (int j = 0; j < kFmaLanes; ++j) acc[j] = 0.5f + 0.01f * static_cast<float>(j);
  std::vector<float> expected = acc;
  for (float& e : expected) {
    for (int i = 0; i < 1000; ++i) e = std::fma(e, 0.999f, 0.001f);
  }
  fma_kernel(acc.data(), 0.999f, 0.001f, 1000);
  for (int j = 0; j < kFmaLanes; ++j) EXPECT_EQ(acc[j], expected[j]) << "lane " << j;
}

TEST(CpuPeak, TriadKernelComputesBPlusSTimesC) {
  std::vector<float> a(1000), b(1000), c(1000);
  for (int i = 0; i < 1000; ++i) {
    b[i] = static_cast<float>(i);
    c[i] = 0.5f * static_cast<float>(i);
  }
  triad_kernel(a.data(), b.data(), c.data(), 4.0f, 1000);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(a[i], 3.0f * static_cast<float>(i));
}

TEST(CpuPeak, MeasurementsArePositiveAndNameTheKernel) {
  const FmaPeak peak = measure_fma_peak(1, 0.05);
  EXPECT_GT(peak.gflops, 0.0);
  EXPECT_EQ(peak.threads, 1);
  const std::string isa = peak.isa;
  EXPECT_TRUE(isa == "avx512f" || isa == "avx2+fma" || isa == "baseline") << isa;
  const TriadBandwidth triad = measure_triad(1, 1 << 20, 2);
  EXPECT_GT(triad.gbytes_per_s, 0.0);
  EXPECT_EQ(triad.array_bytes, 1 << 20);
}

}  // namespace
}  // namespace dpt
