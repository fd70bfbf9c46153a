// The mixed-precision kernels on the GPU (skipped without one): bf16 rounding bit-identical to
// core/bf16.h, fp16 rounding against an independent round-to-nearest-even reference (ties,
// subnormals, overflow, NaN), 16-bit GEMMs (every transpose, padded strides, bias and ReLU
// epilogues, caller-provided 16-bit copies) against a double loop over the same rounded inputs,
// and the loss scaler's unscale-and-check.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/bf16.h"
#include "core/gemm.h"
#include "devices/cuda/cuda_ops.h"
#include "devices/error.h"
#include "float_bits.h"
#include "tests/gpu/ops_harness.h"

namespace dpt {
namespace {

using testing::bits_float;

// IEEE binary16 round to nearest even, computed in double: quantum 2^(e - 10) for the leading-bit
// exponent e (at least -14: subnormals), overflow past 65504 (from 65520 on) to inf.
double fp16_reference(float x) {
  if (std::isnan(x) || std::isinf(x)) return x;
  const double magnitude = std::fabs(static_cast<double>(x));
  if (magnitude == 0) return x;
  int exponent;
  std::frexp(magnitude, &exponent);
  const double quantum = std::ldexp(1.0, std::max(exponent - 1, -14) - 10);
  const double rounded = std::nearbyint(magnitude / quantum) * quantum;
  const double value = rounded > 65504.0 ? std::numeric_limits<double>::infinity() : rounded;
  return std::copysign(value, static_cast<double>(x));
}

// Edge values for both formats plus normal values across many magnitudes.
std::vector<float> edge_values() {
  std::vector<float> values = {0.0f,
                               -0.0f,
                               1.0f,
                               -2.5f,
                               bits_float(0x3F808000u),  // bf16 tie, rounds down to even
                               bits_float(0x3F818000u),  // bf16 tie, rounds up to even
                               1.0f + std::ldexp(1.0f, -11),
                               1.0f + 3 * std::ldexp(1.0f, -11),
                               65504.0f,
                               65519.0f,
                               65520.0f,
                               -70000.0f,
                               std::ldexp(1.0f, -24),
                               std::ldexp(1.0f, -25),
                               3 * std::ldexp(1.0f, -26),
                               std::ldexp(1.0f, -130),   // float32 subnormal
                               bits_float(0x7F7FFFFFu),  // float max: bf16 overflow to inf
                               std::numeric_limits<float>::infinity(),
                               -std::numeric_limits<float>::infinity(),
                               std::numeric_limits<float>::quiet_NaN(),
                               bits_float(0xFF812345u)};
  for (int e = -30; e <= 20; e += 5) {
    for (float v : normal_values(20, 100 + e, std::ldexp(1.0, e))) values.push_back(v);
  }
  return values;
}

TEST_P(OpsOnDevice, Bf16RoundingIsBitIdenticalToTheCpus) {
  const std::vector<float> values = edge_values();
  // A [rows, cols] view with row stride cols + 3 over the values.
  const int64_t cols = 7, ld = 10, rows = static_cast<int64_t>(values.size()) / cols;
  std::vector<float> strided(static_cast<std::size_t>(rows * ld), 123.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < cols; ++j) strided[r * ld + j] = values[r * cols + j];
  }
  uint16_t* packed = put(std::vector<uint16_t>(rows * cols));
  cuda_round_to_16bit(cuda(), CudaGemmInput::kBf16, put(strided), rows, cols, ld, packed);
  float* widened = put(std::vector<float>(rows * cols));
  cuda_widen_16bit(cuda(), CudaGemmInput::kBf16, packed, widened, rows * cols);
  const std::vector<uint16_t> bits = get(packed, rows * cols);
  const std::vector<float> back = get(widened, rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) {
    EXPECT_EQ(bits[i], to_bf16(values[i])) << "value " << values[i] << " (index " << i << ")";
    const float expected = from_bf16(to_bf16(values[i]));
    EXPECT_TRUE(std::isnan(expected) ? std::isnan(back[i]) : back[i] == expected) << i;
  }
}

TEST_P(OpsOnDevice, Fp16RoundingMatchesNearestEvenReference) {
  const std::vector<float> values = edge_values();
  const int64_t n = static_cast<int64_t>(values.size());
  uint16_t* packed = put(std::vector<uint16_t>(n));
  cuda_round_to_16bit(cuda(), CudaGemmInput::kFp16, put(values), 1, n, n, packed);
  float* widened = put(std::vector<float>(n));
  cuda_widen_16bit(cuda(), CudaGemmInput::kFp16, packed, widened, n);
  const std::vector<float> back = get(widened, n);
  for (int64_t i = 0; i < n; ++i) {
    const double expected = fp16_reference(values[i]);
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(back[i])) << "index " << i;
    } else {
      EXPECT_EQ(static_cast<double>(back[i]), expected) << "value " << values[i];
      EXPECT_EQ(std::signbit(back[i]), std::signbit(expected)) << "value " << values[i];
    }
  }
}

double round_as(CudaGemmInput input, float x) {
  return input == CudaGemmInput::kBf16 ? from_bf16(to_bf16(x)) : fp16_reference(x);
}

double at(const std::vector<float>& x, bool trans, int64_t ld, int64_t i, int64_t j) {
  return trans ? x[static_cast<std::size_t>(j * ld + i)] : x[static_cast<std::size_t>(i * ld + j)];
}

struct GemmCase {
  bool trans_a, trans_b;
  int64_t pad;
  bool epilogue, given_copies;
};

TEST_P(OpsOnDevice, SixteenBitGemmMatchesDoubleLoopOnRoundedInputs) {
  const int64_t m = 37, n = 32, k = 56;
  for (CudaGemmInput input : {CudaGemmInput::kBf16, CudaGemmInput::kFp16}) {
    for (const GemmCase& g :
         {GemmCase{false, false, 0, false, false}, GemmCase{false, true, 0, true, false},
          GemmCase{true, false, 0, false, false}, GemmCase{true, true, 3, false, false},
          GemmCase{false, true, 0, false, true}}) {
      GemmShape s;
      s.trans_a = g.trans_a, s.trans_b = g.trans_b, s.m = m, s.n = n, s.k = k;
      const int64_t a_cols = g.trans_a ? m : k, b_cols = g.trans_b ? k : n;
      s.lda = a_cols + g.pad, s.ldb = b_cols + g.pad, s.ldc = n + g.pad;
      const std::vector<float> a = normal_values((g.trans_a ? k : m) * s.lda, 1);
      const std::vector<float> b = normal_values((g.trans_b ? n : k) * s.ldb, 2);
      const std::vector<float> c0 = normal_values(m * s.ldc, 3);
      const std::vector<float> bias = normal_values(n, 4);
      const float alpha = 0.75f, beta = g.epilogue ? 0.0f : -0.5f;
      std::vector<double> expected = as_double(c0), unrounded = as_double(c0);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double sum = 0, exact = 0;
          for (int64_t p = 0; p < k; ++p) {
            const double x = at(a, g.trans_a, s.lda, i, p), y = at(b, g.trans_b, s.ldb, p, j);
            sum += round_as(input, x) * round_as(input, y);
            exact += x * y;
          }
          auto finish = [&](double v) {
            v = alpha * v + beta * c0[i * s.ldc + j];
            if (g.epilogue) v = std::max(v + bias[j], 0.0);
            return v;
          };
          expected[i * s.ldc + j] = finish(sum);
          unrounded[i * s.ldc + j] = finish(exact);
        }
      }
      CudaGemmOptions options;
      options.input = input;
      if (g.epilogue) options.bias = put(bias), options.relu = true;
      const float* a_dev = put(a);
      const float* b_dev = put(b);
      if (g.given_copies) {
        uint16_t* a16 = put(std::vector<uint16_t>((g.trans_a ? k : m) * a_cols));
        uint16_t* b16 = put(std::vector<uint16_t>((g.trans_b ? n : k) * b_cols));
        cuda_round_to_16bit(cuda(), input, a_dev, g.trans_a ? k : m, a_cols, s.lda, a16);
        cuda_round_to_16bit(cuda(), input, b_dev, g.trans_b ? n : k, b_cols, s.ldb, b16);
        options.a16 = a16, options.b16 = b16;
        a_dev = b_dev = nullptr;  // must not be read
      }
      float* c = put(c0);
      cuda_gemm(cuda(), s, alpha, a_dev, b_dev, beta, c, options);
      const std::vector<float> actual = get(c, c0.size());
      const std::string what = std::string(input == CudaGemmInput::kBf16 ? "bf16" : "fp16") +
                               " trans_a=" + std::to_string(g.trans_a) +
                               " trans_b=" + std::to_string(g.trans_b) +
                               (g.given_copies ? " given copies" : "");
      // Inputs rounded exactly as the reference: only float32 accumulation differs (k = 56).
      expect_close(actual, expected, 1e-4, what);
      // And the rounding did happen: the float32-input result is measurably different.
      double largest = 0;
      for (std::size_t i = 0; i < actual.size(); ++i) {
        largest = std::max(largest, std::fabs(actual[i] - unrounded[i]));
      }
      EXPECT_GT(largest, 1e-3) << what << ": indistinguishable from float32 inputs";
    }
  }
}

TEST_P(OpsOnDevice, SixteenBitCopiesForAFloat32GemmAreRejected) {
  CudaGemmOptions options;
  options.a16 = put(std::vector<uint16_t>(16));
  float* x = put(std::vector<float>(16, 1.0f));
  EXPECT_THROW(
      cuda_gemm(cuda(), dense_gemm_shape(false, false, 4, 4, 4), 1.0f, x, x, 0.0f, x, options),
      Error);
  EXPECT_THROW(cuda_round_to_16bit(cuda(), CudaGemmInput::kTf32, x, 4, 4, 4, nullptr), Error);
}

TEST_P(OpsOnDevice, UnscaleAndCheckFindsInfAndNanAnywhere) {
  const int64_t n = 100003;  // not a multiple of the block (past one grid: cuda_sizes_test)
  const std::vector<float> values = normal_values(n, 9, 1000.0);
  float* x = put(values);
  EXPECT_FALSE(cuda_unscale_and_check(cuda(), x, n));
  EXPECT_EQ(get(x, n), values);  // inv_scale 1: untouched
  EXPECT_FALSE(cuda_unscale_and_check(cuda(), x, n, 0.25f));
  const std::vector<float> scaled = get(x, n);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(scaled[i], values[i] * 0.25f) << i;
  for (int64_t where : {int64_t{0}, n / 2, n - 1}) {
    for (float bad :
         {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
          std::numeric_limits<float>::quiet_NaN()}) {
      std::vector<float> with_bad = values;
      with_bad[where] = bad;
      EXPECT_TRUE(cuda_unscale_and_check(cuda(), put(with_bad), n, 0.5f)) << bad << " at " << where;
    }
  }
  // A finite value that the scaling overflows counts too.
  EXPECT_TRUE(cuda_unscale_and_check(cuda(), put(std::vector<float>{1e30f, 1.0f}), 2, 1e10f));
  EXPECT_FALSE(cuda_unscale_and_check(cuda(), x, 0));
}

// The Dense layer's three GEMMs in bf16 against the same layer in float32 on the GPU (itself
// checked against the CPU in cuda_dense_test): close at bf16 accuracy, yet not identical.
// Identity, not ReLU: a pre-activation within bf16's error of 0 would flip ReLU's mask between
// the two runs (one such value, 0.002 from the kink, is in this data) and fail for that reason.
TEST_P(OpsOnDevice, DenseForwardBackwardInBf16IsCloseToFloat32) {
  const int64_t rows = 33, in = 40, out = 24;
  const std::vector<float> x = normal_values(rows * in, 30), w = normal_values(out * in, 31, 0.2);
  const std::vector<float> bias = normal_values(out, 32), dy = normal_values(rows * out, 33);
  const CudaActivationSpec identity{CudaActivation::kIdentity};
  std::vector<std::vector<float>> results[2];
  for (int half = 0; half < 2; ++half) {
    const CudaGemmInput input = half ? CudaGemmInput::kBf16 : CudaGemmInput::kFp32;
    float* z = put(std::vector<float>(rows * out));
    float* y = put(std::vector<float>(rows * out));
    float* dz = put(std::vector<float>(rows * out));
    float* gw = put(std::vector<float>(out * in, 0.0f));
    float* gb = put(std::vector<float>(out, 0.0f));
    float* dx = put(std::vector<float>(rows * in));
    const float* x_dev = put(x);
    const float* w_dev = put(w);
    cuda_dense_forward(cuda(), identity, x_dev, w_dev, put(bias), z, y, rows, in, out, input);
    cuda_dense_backward(cuda(), identity, x_dev, w_dev, z, y, put(dy), dz, gw, gb, dx, rows, in,
                        out, input);
    results[half] = {get(y, rows * out), get(gw, out * in), get(dx, rows * in)};
  }
  const char* names[] = {"y", "grad_weight", "dx"};
  for (int i = 0; i < 3; ++i) {
    // bf16 keeps 8 significant bits: ~4e-3 relative per input, k <= 40 products per output.
    expect_close(results[1][i], as_double(results[0][i]), 5e-2, names[i]);
    EXPECT_NE(results[1][i], results[0][i]) << names[i] << ": bf16 gave exactly float32's result";
  }
}

INSTANTIATE_TEST_SUITE_P(Cuda, OpsOnDevice, ::testing::Values(DeviceKind::kCuda), device_kind_name);

}  // namespace
}  // namespace dpt
