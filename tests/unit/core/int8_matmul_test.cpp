// Tests for core/int8_matmul (oneDNN int8 GEMM): for u8 inputs with a zero point and s8 symmetric
// inputs, odd sizes and batch sizes 1, 7 and 64, with and without ReLU: the f32 output equals the
// exact integer product of the codes (float64) to float rounding; it is within the bound derived
// from the scales of the fp32 product x W^T + b; u8/s8 outputs are the reference codes (+-1 at
// rounding ties); primitives cached per batch size give the same results on reuse.
#include "core/int8_matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/quantize.h"
#include "core/random.h"
#include "devices/cpu_device.h"
#include "devices/error.h"

namespace dpt {
namespace {

constexpr int64_t kK = 50, kN = 19;

struct Problem {
  std::vector<float> x, w, b;  // fp32 originals: x [rows, K], w [N, K], b [N]
  QuantParams params;          // of x
  std::vector<uint8_t> codes;  // x's codes (u8 or s8 bytes)
  QuantizedWeights q;
};

Problem make_problem(int64_t rows, proto::SignedInputs mode) {
  Problem p;
  RandomStream random(static_cast<uint64_t>(rows) * 3 + mode, 1);
  p.x.resize(rows * kK);
  for (float& v : p.x) v = static_cast<float>(3.5 * random.uniform() - 1.5);  // [-1.5, 2)
  p.w.resize(kN * kK);
  for (int64_t j = 0; j < kN; ++j) {
    const double magnitude = 0.05 * (1 + j % 4);
    for (int64_t k = 0; k < kK; ++k) {
      p.w[j * kK + k] = static_cast<float>((2 * random.uniform() - 1) * magnitude);
    }
  }
  p.b.resize(kN);
  for (float& v : p.b) v = static_cast<float>(random.uniform() - 0.5);
  p.params = choose_quant_params(-1.5f, 2.0f, mode);
  p.codes.resize(p.x.size());
  quantize_values(p.x.data(), static_cast<int64_t>(p.x.size()), p.params, p.codes.data());
  p.q = quantize_weights(p.w.data(), kN, kK, "w");
  return p;
}

double code(const Problem& p, int64_t i) {
  return p.params.is_signed ? static_cast<int8_t>(p.codes[i]) : p.codes[i];
}

// scales s_x s_w and the bias folded into accumulator units, zero point included.
Int8MatmulSpec spec_for(const Problem& p, Int8Type dst, bool relu, double out_scale,
                        int32_t out_zero_point) {
  Int8MatmulSpec spec;
  spec.input_size = kK;
  spec.output_size = kN;
  spec.src = p.params.is_signed ? Int8Type::kS8 : Int8Type::kU8;
  spec.dst = dst;
  spec.weight = p.q.values;
  spec.relu = relu;
  for (int64_t j = 0; j < kN; ++j) {
    const double s = static_cast<double>(p.params.scale) * p.q.scales[j];
    int64_t row_sum = 0;
    for (int64_t k = 0; k < kK; ++k) row_sum += p.q.values[j * kK + k];
    spec.scales.push_back(static_cast<float>(s / out_scale));
    spec.bias.push_back(static_cast<float>(p.b[j] / s - p.params.zero_point * row_sum +
                                           out_zero_point * out_scale / s));
  }
  return spec;
}

// The dequantized product in float64: s_x s_w sum_k (q_x - z_x) q_w + b.
double exact(const Problem& p, int64_t i, int64_t j) {
  double acc = 0;
  for (int64_t k = 0; k < kK; ++k) {
    acc += (code(p, i * kK + k) - p.params.zero_point) * p.q.values[j * kK + k];
  }
  return static_cast<double>(p.params.scale) * p.q.scales[j] * acc + p.b[j];
}

struct Variant {
  proto::SignedInputs mode;
  bool relu;
};

class Int8MatmulTest : public ::testing::TestWithParam<Variant> {};

TEST_P(Int8MatmulTest, F32OutputMatchesExactAndFp32References) {
  CpuDevice device;  // sets the thread count oneDNN uses
  for (int64_t rows : {1, 7, 64}) {
    const Problem p = make_problem(rows, GetParam().mode);
    Int8Matmul matmul(spec_for(p, Int8Type::kF32, GetParam().relu, 1.0, 0));
    std::vector<float> y(rows * kN);
    for (int repeat = 0; repeat < 2; ++repeat) {  // the second run reuses the cached primitive
      matmul.run(p.codes.data(), rows, y.data());
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t j = 0; j < kN; ++j) {
          double want = exact(p, i, j);
          if (GetParam().relu) want = std::max(want, 0.0);
          ASSERT_NEAR(y[i * kN + j], want, 1e-5 * (std::fabs(want) + 1)) << i << "," << j;
          // Against the fp32 product: |x' w' - x w| <= sum (s_x/2)(|w| + s_w/2) + |x| s_w/2.
          double fp32 = p.b[j], bound = 0;
          for (int64_t k = 0; k < kK; ++k) {
            const double xk = p.x[i * kK + k], wk = p.w[j * kK + k];
            fp32 += xk * wk;
            bound += p.params.scale / 2 * (std::fabs(wk) + p.q.scales[j] / 2) +
                     std::fabs(xk) * p.q.scales[j] / 2;
          }
          if (GetParam().relu) fp32 = std::max(fp32, 0.0);
          ASSERT_LE(std::fabs(y[i * kN + j] - fp32), bound * (1 + 1e-5) + 1e-6) << i << "," << j;
        }
      }
    }
  }
}

TEST_P(Int8MatmulTest, CodeOutputIsTheRequantizedProduct) {
  CpuDevice device;
  const int64_t rows = 7;
  const Problem p = make_problem(rows, GetParam().mode);
  for (const proto::SignedInputs out_mode : {proto::U8_ZERO_POINT, proto::S8_SYMMETRIC}) {
    // Output range narrower than the products, so saturation is exercised too.
    const QuantParams out = choose_quant_params(GetParam().relu ? 0.0f : -0.6f, 0.8f, out_mode);
    if (GetParam().relu && out.zero_point != 0) continue;
    Int8Matmul matmul(spec_for(p, out.is_signed ? Int8Type::kS8 : Int8Type::kU8, GetParam().relu,
                               out.scale, out.zero_point));
    std::vector<uint8_t> codes(rows * kN);
    matmul.run(p.codes.data(), rows, codes.data());
    int64_t equal = 0;
    for (int64_t i = 0; i < rows * kN; ++i) {
      double y = exact(p, i / kN, i % kN);
      if (GetParam().relu) y = std::max(y, 0.0);
      const double lo = out.is_signed ? -128 : 0, hi = out.is_signed ? 127 : 255;
      const double want = std::clamp(std::nearbyint(y / out.scale) + out.zero_point, lo, hi);
      const double got = out.is_signed ? static_cast<int8_t>(codes[i]) : codes[i];
      ASSERT_LE(std::fabs(got - want), 1) << "element " << i;
      equal += got == want;
    }
    EXPECT_GE(equal, rows * kN - 2) << "codes off by one beyond rounding ties";
  }
}

INSTANTIATE_TEST_SUITE_P(Inputs, Int8MatmulTest,
                         ::testing::Values(Variant{proto::U8_ZERO_POINT, false},
                                           Variant{proto::U8_ZERO_POINT, true},
                                           Variant{proto::S8_SYMMETRIC, false},
                                           Variant{proto::S8_SYMMETRIC, true}));

TEST(Int8Matmul, InconsistentSpecIsRefused) {
  Int8MatmulSpec spec;
  spec.input_size = 3;
  spec.output_size = 2;
  spec.weight.resize(5);
  spec.scales.resize(2, 1.0f);
  EXPECT_THROW(Int8Matmul{spec}, Error);
}

}  // namespace
}  // namespace dpt
