// The bf16 matmul path: float32 -> bf16 rounding on hand-picked bit patterns (ties to even,
// overflow, Inf, NaN, denormals), and oneDNN's bf16 GEMM for all four transpose combinations
// with beta 0 and 1, against float64 references: within a bound derived from bf16 rounding
// (relative 2^-8 per operand, errors adding up like a random walk, so the bound grows with
// sqrt(k)), and, much tighter, equal up to float32 accumulation to the float64 product of the
// bf16-rounded operands. GEMM tests skip on CPUs without avx512_bf16 / amx_bf16.
#include "core/gemm_bf16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/bf16.h"
#include "core/random.h"
#include "devices/cpu_device.h"
#include "devices/cpu_info.h"
#include "devices/error.h"
#include "float_bits.h"

namespace dpt {
namespace {

constexpr double kBf16Unit = 1.0 / 256;  // 2^-8: relative rounding error of bf16 (8-bit mantissa)
constexpr double kF32Unit = 1.0 / 16777216;  // 2^-24

using testing::bits_float;
using testing::float_bits;

TEST(Bf16Conversion, RoundsToNearestEvenOnHandPickedValues) {
  struct Case {
    uint32_t input;
    uint16_t output;
    const char* what;
  };
  const Case cases[] = {
      {0x3F800000u, 0x3F80, "1.0 is exact"},
      {0x3F807FFFu, 0x3F80, "just below the tie rounds down"},
      {0x3F808000u, 0x3F80, "tie with an even neighbour below stays"},
      {0x3F808001u, 0x3F81, "just above the tie rounds up"},
      {0x3F818000u, 0x3F82, "tie with an odd neighbour below rounds up to even"},
      {0xBF818000u, 0xBF82, "negative tie, odd below: away from zero to even"},
      {0x3FFF8000u, 0x4000, "carry out of the mantissa bumps the exponent"},
      {0x7F7F7FFFu, 0x7F7F, "largest value rounding down stays finite"},
      {0x7F7FFFFFu, 0x7F80, "FLT_MAX rounds to +Inf"},
      {0xFF7FFFFFu, 0xFF80, "-FLT_MAX rounds to -Inf"},
      {0x7F800000u, 0x7F80, "+Inf"},
      {0xFF800000u, 0xFF80, "-Inf"},
      {0x7FC00000u, 0x7FC0, "quiet NaN"},
      {0x7F800001u, 0x7FC0, "signalling NaN with a low payload stays NaN (quiet)"},
      {0xFF800001u, 0xFFC0, "negative NaN keeps its sign"},
      {0x00000000u, 0x0000, "+0"},
      {0x80000000u, 0x8000, "-0"},
      {0x00000001u, 0x0000, "smallest denormal rounds to +0"},
      {0x00008000u, 0x0000, "denormal tie, even below: +0"},
      {0x00018000u, 0x0002, "denormal tie, odd below: up to even"},
      {0x00010000u, 0x0001, "smallest bf16 denormal is exact"},
      {0x807FFFFFu, 0x8080, "largest negative denormal rounds to the smallest normal"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(to_bf16(bits_float(c.input)), c.output)
        << c.what << std::hex << ": input 0x" << c.input;
  }
}

TEST(Bf16Conversion, EveryBf16ValueRoundTripsExactly) {
  for (uint32_t value = 0; value <= 0xFFFF; ++value) {
    const float f = from_bf16(static_cast<uint16_t>(value));
    EXPECT_EQ(float_bits(f), value << 16);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(from_bf16(to_bf16(f))));
    } else {
      ASSERT_EQ(to_bf16(f), value) << std::hex << value;
    }
  }
}

TEST(Bf16Conversion, ArrayMatchesScalarIncludingTailsAndSpecials) {
  // Longer than one parallel block, not a multiple of any vector width.
  const int64_t n = (1 << 16) + 13;
  std::vector<float> values(static_cast<std::size_t>(n));
  RandomStream random(5, 0);
  for (float& v : values) v = bits_float(static_cast<uint32_t>(random.below(uint64_t{1} << 32)));
  values[0] = bits_float(0x3F818000u);
  values[1] = bits_float(0x7F800001u);
  values[n - 1] = bits_float(0x00018000u);
  std::vector<uint16_t> out(static_cast<std::size_t>(n));
  to_bf16(values.data(), out.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(values[i])) {
      ASSERT_TRUE(std::isnan(from_bf16(out[i]))) << i;
    } else {
      ASSERT_EQ(out[i], to_bf16(values[i])) << i;
    }
  }
}

// Skips the calling test on CPUs whose bf16 matmuls oneDNN would emulate (or refuse).
#define SKIP_WITHOUT_BF16()                                                                    \
  if (bf16_features(detect_cpu()).empty()) {                                                   \
    GTEST_SKIP() << "the CPU lists neither avx512_bf16 nor amx_bf16: no bf16 matmul hardware"; \
  }

struct Matrices {
  std::vector<float> a, b, c;  // as stored (with the shape's strides)
  std::vector<uint16_t> a_bf16, b_bf16;
};

Matrices random_matrices(const GemmShape& s, uint64_t seed) {
  Matrices mats;
  RandomStream random(seed, 0);
  auto fill = [&](std::vector<float>& v, std::size_t n) {
    v.resize(n);
    for (float& x : v) x = static_cast<float>(2 * random.uniform() - 1);
  };
  fill(mats.a, static_cast<std::size_t>((s.trans_a ? s.k : s.m) * s.lda));
  fill(mats.b, static_cast<std::size_t>((s.trans_b ? s.n : s.k) * s.ldb));
  fill(mats.c, static_cast<std::size_t>(s.m * s.ldc));
  mats.a_bf16.resize(mats.a.size());
  mats.b_bf16.resize(mats.b.size());
  to_bf16(mats.a.data(), mats.a_bf16.data(), static_cast<int64_t>(mats.a.size()));
  to_bf16(mats.b.data(), mats.b_bf16.data(), static_cast<int64_t>(mats.b.size()));
  return mats;
}

double element(const std::vector<float>& v, bool trans, int64_t ld, int64_t row, int64_t col) {
  return trans ? v[static_cast<std::size_t>(col * ld + row)]
               : v[static_cast<std::size_t>(row * ld + col)];
}

// Checks C (computed with `beta` from c0) elementwise against float64 references.
void check_gemm(const GemmShape& s, const Matrices& mats, float beta, const std::vector<float>& c) {
  double worst_ratio = 0, worst_rounded_ratio = 0, largest_error = 0;
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      double exact = 0, rounded = 0, squares = 0, magnitudes = 0;
      for (int64_t l = 0; l < s.k; ++l) {
        const double a = element(mats.a, s.trans_a, s.lda, i, l);
        const double b = element(mats.b, s.trans_b, s.ldb, l, j);
        exact += a * b;
        squares += a * b * a * b;
        const double ar = from_bf16(to_bf16(static_cast<float>(a)));
        const double br = from_bf16(to_bf16(static_cast<float>(b)));
        rounded += ar * br;
        magnitudes += std::fabs(ar * br);
      }
      const double c0 = beta * mats.c[static_cast<std::size_t>(i * s.ldc + j)];
      const double got = c[static_cast<std::size_t>(i * s.ldc + j)];
      // Each product carries two rounding errors of at most 2^-8 relative; as independent
      // bounded errors their sum stays within 5 of its (Hoeffding) scale, sqrt(k) in size.
      const double bound = 5 * 2 * kBf16Unit * std::sqrt(squares) +
                           (s.k + 2) * kF32Unit * (magnitudes + std::fabs(c0)) + 1e-6;
      // Against the bf16-rounded operands only float32 accumulation error remains.
      const double tight = (s.k + 2) * kF32Unit * (magnitudes + std::fabs(c0)) + 1e-7;
      worst_ratio = std::max(worst_ratio, std::fabs(got - (exact + c0)) / bound);
      worst_rounded_ratio = std::max(worst_rounded_ratio, std::fabs(got - (rounded + c0)) / tight);
      largest_error = std::max(largest_error, std::fabs(got - (exact + c0)));
    }
  }
  EXPECT_LE(worst_ratio, 1.0) << "error vs the float64 product of the float32 operands";
  EXPECT_LE(worst_rounded_ratio, 1.0) << "error vs the float64 product of the bf16 operands";
  // The operands really were rounded: a float32 GEMM would be ~100x closer.
  EXPECT_GT(largest_error, 1e-3);
}

TEST(Bf16Gemm, AllTransposesAndBetaMatchFloat64References) {
  SKIP_WITHOUT_BF16();
  Bf16Gemm gemm;
  const int64_t m = 37, n = 29, k = 300;
  for (bool trans_a : {false, true}) {
    for (bool trans_b : {false, true}) {
      for (float beta : {0.0f, 1.0f}) {
        SCOPED_TRACE(::testing::Message()
                     << "trans_a " << trans_a << " trans_b " << trans_b << " beta " << beta);
        const GemmShape s = dense_gemm_shape(trans_a, trans_b, m, n, k);
        const Matrices mats = random_matrices(s, 17 + 2 * trans_a + trans_b);
        std::vector<float> c = mats.c;
        gemm.run(s, mats.a_bf16.data(), mats.b_bf16.data(), beta, c.data());
        check_gemm(s, mats, beta, c);
      }
    }
  }
  EXPECT_EQ(gemm.cached(), 8u);
}

TEST(Bf16Gemm, PaddedStridesAreHonoured) {
  SKIP_WITHOUT_BF16();
  Bf16Gemm gemm;
  GemmShape s = dense_gemm_shape(true, false, 12, 20, 50);
  s.lda += 3;  // A stored [k, m + 3]
  s.ldb += 5;  // B stored [k, n + 5]
  s.ldc += 2;
  const Matrices mats = random_matrices(s, 23);
  std::vector<float> c = mats.c;
  gemm.run(s, mats.a_bf16.data(), mats.b_bf16.data(), 1.0f, c.data());
  check_gemm(s, mats, 1.0f, c);
  for (int64_t i = 0; i < s.m; ++i) {  // padding columns untouched
    for (int64_t j = s.n; j < s.ldc; ++j) {
      EXPECT_EQ(c[static_cast<std::size_t>(i * s.ldc + j)],
                mats.c[static_cast<std::size_t>(i * s.ldc + j)]);
    }
  }
}

TEST(Bf16Gemm, CachesOnePrimitivePerShapeAndHandlesASmallerLastBatch) {
  SKIP_WITHOUT_BF16();
  Bf16Gemm gemm;
  for (int64_t rows : {64, 20, 64, 20}) {
    const GemmShape s = dense_gemm_shape(false, true, rows, 48, 96);
    const Matrices mats = random_matrices(s, static_cast<uint64_t>(rows));
    std::vector<float> c(mats.c.size());
    gemm.run(s, mats.a_bf16.data(), mats.b_bf16.data(), 0.0f, c.data());
    check_gemm(s, mats, 0.0f, c);
  }
  EXPECT_EQ(gemm.cached(), 2u);
}

TEST(Bf16Gemm, EmptyInnerDimensionGivesBetaTimesC) {
  Bf16Gemm gemm;  // k = 0 never reaches oneDNN, so this runs on any CPU
  const GemmShape s = dense_gemm_shape(false, false, 2, 3, 0);
  std::vector<float> c = {1, 2, 3, 4, 5, 6};
  gemm.run(s, nullptr, nullptr, 1.0f, c.data());
  EXPECT_EQ(c, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  gemm.run(s, nullptr, nullptr, 0.0f, c.data());
  EXPECT_EQ(c, std::vector<float>(6, 0.0f));
}

TEST(Bf16Gemm, DenseLayerShapesUseANativeKernel) {
  SKIP_WITHOUT_BF16();
  Bf16Gemm gemm;
  // Forward, grad-weight (accumulating) and grad-input of a 784 -> 1024 layer, batch 128.
  const std::string forward = gemm.implementation(dense_gemm_shape(false, true, 128, 1024, 784));
  const std::string grad_weight =
      gemm.implementation(dense_gemm_shape(true, false, 1024, 784, 128), 1.0f);
  const std::string grad_input =
      gemm.implementation(dense_gemm_shape(false, false, 128, 784, 1024));
  for (const std::string& impl : {forward, grad_weight, grad_input}) {
    EXPECT_EQ(impl.find("ref"), std::string::npos) << impl << " is oneDNN's emulation";
  }
}

TEST(Bf16Gemm, RejectsOtherBetas) {
  Bf16Gemm gemm;
  std::vector<float> c(4);
  EXPECT_THROW(gemm.run(dense_gemm_shape(false, false, 2, 2, 0), nullptr, nullptr, 0.5f, c.data()),
               Error);
}

}  // namespace
}  // namespace dpt
