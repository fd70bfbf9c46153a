// cuda_gemm's plan cache (CudaDevice::gemm_plans): a shape is set up once and reused, each call
// still multiplies its own operands and uses its own bias / bias-gradient pointer (set per call
// on the cached descriptor), a fused bias gradient without an algorithm is asked once, and odd
// shapes past the capacity evict old plans without changing any result. Each result is checked
// against a double-precision loop. A key cached without a plan (as when cuBLASLt finds no
// algorithm for an epilogue, which cannot be provoked at will) is planted to force the fallbacks:
// the plain GEMM with the bias and ReLU in an element-wise pass, the Dense layer's bias gradient
// summed by cuda_bias_grad. Skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/gemm.h"
#include "devices/cuda/cublaslt_plan.h"
#include "devices/cuda/cuda_ops.h"
#include "devices/error.h"
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
  std::size_t after_first = 0;
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
    // One key (bias + GEMM fused), or two where cuBLASLt has no bias epilogue for this shape (the
    // fused key remembered without a plan, and the plain GEMM's); later calls add none.
    if (call == 0) {
      after_first = plans.size();
      EXPECT_TRUE(after_first == before + 1 || after_first == before + 2) << after_first;
    } else {
      EXPECT_EQ(plans.size(), after_first) << "call " << call;
      EXPECT_EQ(plans.hits(), hits + (after_first - before)) << "call " << call;
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

// The key cuda_gemm looks up for a float32 call (devices/cuda/cuda_gemm.cpp run_matmul); the
// tests below check that their planted key was the one found (a hit), so a drift between this
// and cuda_gemm fails them rather than passing untested.
GemmPlanKey float32_key(const CudaDevice& device, const GemmShape& s, const void* a, const void* b,
                        const void* c, cublasLtEpilogue_t epilogue, const void* vector) {
  GemmPlanKey key;
  key.m = s.m, key.n = s.n, key.k = s.k, key.trans_a = s.trans_a, key.trans_b = s.trans_b;
  key.lda = s.lda, key.ldb = s.ldb, key.ldc = s.ldc;
  key.input_type = CUDA_R_32F;
  key.compute_type = CUBLAS_COMPUTE_32F;
  key.epilogue = epilogue;
  key.epilogue_align = vector ? cublaslt_alignment_of(vector) : 0;
  key.align[0] = cublaslt_alignment_of(b);
  key.align[1] = cublaslt_alignment_of(a);
  key.align[2] = key.align[3] = cublaslt_alignment_of(c);
  key.workspace_bytes = device.gemm_workspace_bytes();
  return key;
}

TEST_P(OpsOnDevice, GemmWithoutABiasEpilogueAlgorithmAddsTheBiasElementWise) {
  const int64_t m = 20, n = 12, k = 16;
  const std::vector<float> a = normal_values(m * k, 70), b = normal_values(k * n, 71);
  const std::vector<float> bias = normal_values(n, 72), c0 = normal_values(m * n, 73);
  const float alpha = 0.5f, beta = -1.0f;
  GemmPlanCache& plans = cuda().gemm_plans();
  for (const bool relu : {false, true}) {
    const float *a_dev = put(a), *b_dev = put(b), *bias_dev = put(bias);
    float* c = put(c0);
    const GemmShape shape = dense_gemm_shape(false, false, m, n, k);
    plans.clear();  // so the planted key is the call's only hit
    plans.insert(float32_key(cuda(), shape, a_dev, b_dev, c,
                             relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS, bias_dev),
                 nullptr);
    CudaGemmOptions options;
    options.bias = bias_dev;
    options.relu = relu;
    const int64_t hits = plans.hits();
    EXPECT_FALSE(cuda_gemm(cuda(), shape, alpha, a_dev, b_dev, beta, c, options));
    EXPECT_EQ(plans.hits(), hits + 1) << "the planted key was not looked up";
    std::vector<double> expected = reference(a, b, nullptr, m, n, k);
    for (int64_t i = 0; i < m * n; ++i) {
      expected[i] = alpha * expected[i] + beta * c0[i] + bias[i % n];
      if (relu) expected[i] = std::max(expected[i], 0.0);
    }
    expect_close(get(c, m * n), expected, 1e-4, relu ? "relu + bias" : "bias");
  }
  // The element-wise pass runs over a packed C only: a padded one is refused, not half done.
  const GemmShape padded = [] {
    GemmShape s = dense_gemm_shape(false, false, 4, 4, 4);
    s.ldc = 5;
    return s;
  }();
  const float* x = put(std::vector<float>(32, 1.0f));
  float* c = put(std::vector<float>(20, 0.0f));
  plans.clear();
  plans.insert(float32_key(cuda(), padded, x, x, c, CUBLASLT_EPILOGUE_BIAS, x), nullptr);
  CudaGemmOptions options;
  options.bias = x;
  EXPECT_THROW(cuda_gemm(cuda(), padded, 1.0f, x, x, 0.0f, c, options), Error);
  EXPECT_EQ(get(c, 20), std::vector<float>(20, 0.0f));
}

TEST_P(OpsOnDevice, DenseWithoutFusedEpiloguesMatchesTheFusedOne) {
  // The Dense layer's forward (RELU_BIAS) and weight gradient (BGRADB) with their fused keys
  // planted without a plan, against the same layer with whatever cuBLASLt fuses.
  const int64_t rows = 24, in = 20, out = 16;
  const std::vector<float> x = normal_values(rows * in, 80), w = normal_values(out * in, 81, 0.3);
  const std::vector<float> bias = normal_values(out, 82), dy = normal_values(rows * out, 83);
  const CudaActivationSpec relu{CudaActivation::kRelu};
  GemmPlanCache& plans = cuda().gemm_plans();
  std::vector<std::vector<float>> results[2];
  for (int forced = 0; forced < 2; ++forced) {
    const float *x_dev = put(x), *w_dev = put(w), *bias_dev = put(bias);
    float* y = put(std::vector<float>(rows * out, 0.0f));
    float* grad_weight = put(std::vector<float>(out * in, 0.5f));
    float* grad_bias = put(std::vector<float>(out, 0.5f));
    float* dz = put(std::vector<float>(rows * out, 0.0f));
    float* dx = put(std::vector<float>(rows * in, 0.0f));
    const int64_t hits = plans.hits();
    if (forced) {
      plans.clear();  // so the planted keys are the step's only hits
      // Forward: z = y = relu(x W^T + b). Weight gradient: dz^T x into grad_weight, its bias
      // gradient into an out-float pool block (256-byte aligned, as the planted vector here).
      plans.insert(float32_key(cuda(), dense_gemm_shape(false, true, rows, out, in), x_dev, w_dev,
                               y, CUBLASLT_EPILOGUE_RELU_BIAS, bias_dev),
                   nullptr);
      plans.insert(float32_key(cuda(), dense_gemm_shape(true, false, out, in, rows), dz, x_dev,
                               grad_weight, CUBLASLT_EPILOGUE_BGRADB, bias_dev),
                   nullptr);
    }
    cuda_dense_forward(cuda(), relu, x_dev, w_dev, bias_dev, y, y, rows, in, out);
    cuda_dense_backward(cuda(), relu, x_dev, w_dev, y, y, put(dy), dz, grad_weight, grad_bias, dx,
                        rows, in, out);
    if (forced) {
      EXPECT_EQ(plans.hits(), hits + 2) << "the planted keys were not looked up";
    }
    results[forced] = {get(y, rows * out), get(grad_weight, out * in), get(grad_bias, out),
                       get(dx, rows * in)};
  }
  const char* names[] = {"y", "grad_weight", "grad_bias", "dx"};
  for (int i = 0; i < 4; ++i) {
    expect_close(results[1][i], as_double(results[0][i]), 1e-5, names[i]);
  }
}

INSTANTIATE_TEST_SUITE_P(Cuda, OpsOnDevice, ::testing::Values(DeviceKind::kCuda), device_kind_name);

}  // namespace
}  // namespace dpt
