// cuda_gemm's plan cache (CudaDevice::gemm_plans): a shape is set up once and reused, each call
// still multiplies its own operands and uses its own bias / bias-gradient pointer (set per call
// on the cached descriptor), a fused bias gradient without an algorithm is asked once, and odd
// shapes past the capacity evict old plans without changing any result. Each result is checked
// against a double-precision loop. Skips without a GPU.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/gemm.h"
#include "devices/cuda/cuda_ops.h"
#include "tests/gpu/ops_harness.h"

namespace dpt {
namespace {

// Row-major C = A B (+ bias per column) for A [m, k], B [k, n] stored densely, in double.
std::vector<double> reference(const std::vector<float>& a, const std::vector<float>& b,
                              const std::vector<float>* bias, int64_t m, int64_t n, int64_t k) {
  std::vector<double> c(static_cast<std::size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = bias ? (*bias)[j] : 0.0;
      for (int64_t p = 0; p < k; ++p) sum += static_cast<double>(a[i * k + p]) * b[p * n + j];
      c[i * n + j] = sum;
    }
  }
  return c;
}

TEST_P(OpsOnDevice, GemmPlanIsReusedWithEachCallsOperandsAndBias) {
  const int64_t m = 24, n = 40, k = 32;
  GemmPlanCache& plans = cuda().gemm_plans();
  const std::size_t before = plans.size();
  for (int call = 0; call < 3; ++call) {
    const std::vector<float> a = normal_values(m * k, 10 + call);
    const std::vector<float> b = normal_values(k * n, 20 + call);
    const std::vector<float> bias = normal_values(n, 30 + call);
    float* c = put(std::vector<float>(m * n, 0.0f));
    CudaGemmOptions options;
    options.bias = put(bias);  // a new address each call, same (256-byte) alignment
    const int64_t hits = plans.hits();
    cuda_gemm(cuda(), dense_gemm_shape(false, false, m, n, k), 1.0f, put(a), put(b), 0.0f, c,
              options);
    expect_close(get(c, m * n), reference(a, b, &bias, m, n, k), 1e-4,
                 "call " + std::to_string(call));
    EXPECT_EQ(plans.size(), before + 1) << "call " << call;
    if (call > 0) {
      EXPECT_EQ(plans.hits(), hits + 1) << "call " << call;
    }
  }
}

TEST_P(OpsOnDevice, GemmPlanKeepsTheFusedBiasGradientPerCall) {
  // dW = dz^T x with the bias gradient (column sums of dz) fused, twice on one plan.
  const int64_t rows = 64, out = 32, in = 48;
  GemmPlanCache& plans = cuda().gemm_plans();
  for (CudaGemmInput input : {CudaGemmInput::kFp32, CudaGemmInput::kBf16}) {
    std::optional<bool> first_fused;
    for (int call = 0; call < 2; ++call) {
      // Values exact in bf16, so the reference needs no rounding.
      std::vector<float> dz = normal_values(rows * out, 40 + call),
                         x = normal_values(rows * in, 50);
      for (float& v : dz) v = static_cast<float>(static_cast<int>(v * 4)) / 4;
      for (float& v : x) v = static_cast<float>(static_cast<int>(v * 4)) / 4;
      std::vector<double> sums(out, 0.0), expected(out * in, 0.0);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < out; ++i) {
          sums[i] += dz[r * out + i];
          for (int64_t j = 0; j < in; ++j)
            expected[i * in + j] += double(dz[r * out + i]) * x[r * in + j];
        }
      }
      const float sentinel = -777.0f;
      float* row_sums = put(std::vector<float>(out, sentinel));
      float* c = put(std::vector<float>(out * in, 0.0f));
      CudaGemmOptions options;
      options.input = input;
      options.a_row_sums = row_sums;
      const int64_t misses = plans.misses();
      const bool fused = cuda_gemm(cuda(), dense_gemm_shape(true, false, out, in, rows), 1.0f,
                                   put(dz), put(x), 0.0f, c, options);
      const std::string what =
          "input " + std::to_string(static_cast<int>(input)) + " call " + std::to_string(call);
      expect_close(get(c, out * in), expected, 1e-4, what);
      if (fused) {
        expect_close(get(row_sums, out), sums, 1e-5, what + ": bias gradient");
      } else {
        EXPECT_EQ(get(row_sums, out), std::vector<float>(out, sentinel)) << what;
      }
      if (!first_fused) {
        first_fused = fused;
      } else {
        // The second call finds the first one's answer, fused or not, in the cache.
        EXPECT_EQ(fused, *first_fused) << what;
        EXPECT_EQ(plans.misses(), misses) << what << ": the plan (or its absence) was not reused";
      }
    }
  }
}

TEST_P(OpsOnDevice, GemmPlansPastTheCapacityAreEvicted) {
  GemmPlanCache& plans = cuda().gemm_plans();
  const int64_t n = 8, k = 8;
  const std::vector<float> b = normal_values(k * n, 60);
  const float* b_dev = put(b);
  const int64_t shapes = static_cast<int64_t>(CudaDevice::kGemmPlans) + 20;
  const std::vector<float> a = normal_values(shapes * k, 61);
  const float* a_dev = put(a);
  float* c = put(std::vector<float>(shapes * n, 0.0f));
  const int64_t evictions = plans.evictions();
  for (int64_t m = 1; m <= shapes; ++m) {
    cuda_gemm(cuda(), dense_gemm_shape(false, false, m, n, k), 1.0f, a_dev, b_dev, 0.0f, c);
  }
  EXPECT_LE(plans.size(), CudaDevice::kGemmPlans);
  EXPECT_GE(plans.evictions() - evictions, 20);
  // The first shapes were evicted; they are set up again and still right.
  cuda_gemm(cuda(), dense_gemm_shape(false, false, 3, n, k), 1.0f, a_dev, b_dev, 0.0f, c);
  const std::vector<float> a3(a.begin(), a.begin() + 3 * k);
  expect_close(get(c, 3 * n), reference(a3, b, nullptr, 3, n, k), 1e-4, "m=3 after eviction");
}

INSTANTIATE_TEST_SUITE_P(Cuda, OpsOnDevice, ::testing::Values(DeviceKind::kCuda), device_kind_name);

}  // namespace
}  // namespace dpt
