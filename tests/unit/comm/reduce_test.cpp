// The reduction kernels (comm/reduce.h) against hand-computed values: every dtype x op, NaN in max
// and min, integer wrap-around, the average's division (truncating toward zero for integers),
// and the bf16 / f16 conversions on hand-picked bit patterns (ties to even, overflow, f16
// subnormals, NaN), then swept against an independent double-precision reference.
#include "comm/reduce.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "comm_conformance.h"
#include "devices/error.h"
#include "float_bits.h"

namespace dpt {
namespace {

using conformance::decode;
using conformance::encode;
using conformance::load;
using conformance::store;
using testing::bits_float;
using testing::float_bits;

constexpr DType kDTypes[] = {DType::kF32, DType::kF64, DType::kBF16,
                             DType::kF16, DType::kI32, DType::kI64};

// A buffer of `values` in `dtype` (every value is exactly representable in every dtype).
std::vector<char> buffer(DType dtype, const std::vector<double>& values) {
  std::vector<char> data(values.size() * dtype_size(dtype));
  for (std::size_t i = 0; i < values.size(); ++i)
    store(dtype, data.data(), i, encode(dtype, values[i]));
  return data;
}

std::vector<double> values_of(DType dtype, const std::vector<char>& data) {
  std::vector<double> values(data.size() / dtype_size(dtype));
  for (std::size_t i = 0; i < values.size(); ++i)
    values[i] = decode(dtype, load(dtype, data.data(), i));
  return values;
}

// dst = {1, -2, 3, 0, 7, -7, 5}, src = {4, 5, -6, 0, 0, 0, -5}.
const std::vector<double> kDst = {1, -2, 3, 0, 7, -7, 5};
const std::vector<double> kSrc = {4, 5, -6, 0, 0, 0, -5};

std::vector<double> reduced(DType dtype, ReduceOp op) {
  std::vector<char> dst = buffer(dtype, kDst);
  const std::vector<char> src = buffer(dtype, kSrc);
  reduce_into(dst.data(), src.data(), kDst.size(), dtype, op);
  EXPECT_EQ(src, buffer(dtype, kSrc)) << "src changed";
  return values_of(dtype, dst);
}

TEST(CommReduceInto, SumMaxMinForEveryDType) {
  for (DType dtype : kDTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    EXPECT_EQ(reduced(dtype, ReduceOp::kSum), (std::vector<double>{5, 3, -3, 0, 7, -7, 0}));
    EXPECT_EQ(reduced(dtype, ReduceOp::kMax), (std::vector<double>{4, 5, 3, 0, 7, 0, 5}));
    EXPECT_EQ(reduced(dtype, ReduceOp::kMin), (std::vector<double>{1, -2, -6, 0, 0, -7, -5}));
  }
}

TEST(CommReduceInto, AverageIsSumThenFinishAverage) {
  for (DType dtype : kDTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    std::vector<char> dst = buffer(dtype, kDst);
    const std::vector<char> src = buffer(dtype, kSrc);
    reduce_into(dst.data(), src.data(), kDst.size(), dtype, ReduceOp::kAvg);
    EXPECT_EQ(values_of(dtype, dst), (std::vector<double>{5, 3, -3, 0, 7, -7, 0}));
    finish_average(dst.data(), kDst.size(), dtype, 2);
    if (dtype == DType::kI32 || dtype == DType::kI64) {
      // Truncation toward zero: -3 / 2 == -1, 7 / 2 == 3, -7 / 2 == -3.
      EXPECT_EQ(values_of(dtype, dst), (std::vector<double>{2, 1, -1, 0, 3, -3, 0}));
    } else {
      EXPECT_EQ(values_of(dtype, dst), (std::vector<double>{2.5, 1.5, -1.5, 0, 3.5, -3.5, 0}));
    }
  }
}

TEST(CommReduceInto, CountZeroTouchesNothing) {
  for (DType dtype : kDTypes) {
    std::vector<char> dst = buffer(dtype, kDst);
    const std::vector<char> src = buffer(dtype, kSrc);
    reduce_into(dst.data(), src.data(), 0, dtype, ReduceOp::kSum);
    finish_average(dst.data(), 0, dtype, 3);
    EXPECT_EQ(dst, buffer(dtype, kDst)) << dtype_name(dtype);
  }
}

// A long buffer runs the vectorised loop and its tail: compare with an element-wise reference.
TEST(CommReduceInto, LongBuffersMatchElementWiseReference) {
  const std::size_t count = 1027;
  for (DType dtype : kDTypes) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kMin}) {
      const auto pattern = conformance::Pattern::kSmallInt;
      std::vector<char> dst = conformance::make_input(dtype, pattern, 5, 0, count);
      const std::vector<char> src = conformance::make_input(dtype, pattern, 5, 1, count);
      reduce_into(dst.data(), src.data(), count, dtype, op);
      for (std::size_t i = 0; i < count; ++i) {
        const conformance::Expected expected =
            conformance::expected_reduction(dtype, op, pattern,
                                            {conformance::input(dtype, pattern, 5, 0, i),
                                             conformance::input(dtype, pattern, 5, 1, i)});
        ASSERT_EQ(load(dtype, dst.data(), i), expected.bits)
            << dtype_name(dtype) << " " << reduce_op_name(op) << " element " << i;
      }
    }
  }
}

// ---- NaN, wrap-around, division ----------------------------------------------------------------

TEST(CommReduceInto, MaxAndMinPropagateNaNFromEitherSide) {
  for (DType dtype : {DType::kF32, DType::kF64, DType::kBF16, DType::kF16}) {
    for (ReduceOp op : {ReduceOp::kMax, ReduceOp::kMin}) {
      const double nan = std::nan("");
      std::vector<char> dst = buffer(dtype, {nan, 1, nan, -INFINITY, INFINITY});
      const std::vector<char> src = buffer(dtype, {1, nan, nan, nan, nan});
      reduce_into(dst.data(), src.data(), 5, dtype, op);
      for (double value : values_of(dtype, dst)) {
        EXPECT_TRUE(std::isnan(value)) << dtype_name(dtype) << " " << reduce_op_name(op);
      }
    }
  }
}

TEST(CommReduceInto, SumPropagatesNaNAndInfinity) {
  for (DType dtype : {DType::kF32, DType::kF64, DType::kBF16, DType::kF16}) {
    std::vector<char> dst = buffer(dtype, {std::nan(""), INFINITY, INFINITY, 1});
    const std::vector<char> src = buffer(dtype, {1, 1, -INFINITY, -INFINITY});
    reduce_into(dst.data(), src.data(), 4, dtype, ReduceOp::kSum);
    const std::vector<double> got = values_of(dtype, dst);
    EXPECT_TRUE(std::isnan(got[0]));
    EXPECT_EQ(got[1], INFINITY);
    EXPECT_TRUE(std::isnan(got[2]));
    EXPECT_EQ(got[3], -INFINITY);
  }
}

TEST(CommReduceInto, IntegerSumsWrapAround) {
  int32_t small[3] = {INT32_MAX, INT32_MIN, -5};
  const int32_t small_src[3] = {1, -1, INT32_MIN};
  reduce_into(small, small_src, 3, DType::kI32, ReduceOp::kSum);
  EXPECT_EQ(small[0], INT32_MIN);
  EXPECT_EQ(small[1], INT32_MAX);
  EXPECT_EQ(small[2], INT32_MAX - 4);  // -5 + -2^31 wraps to 2^31 - 5
  int64_t wide[2] = {INT64_MAX, INT64_MIN};
  const int64_t wide_src[2] = {INT64_MAX, INT64_MIN};
  reduce_into(wide, wide_src, 2, DType::kI64, ReduceOp::kSum);
  EXPECT_EQ(wide[0], -2);  // 2 * (2^63 - 1) mod 2^64
  EXPECT_EQ(wide[1], 0);
  int64_t extremes[2] = {INT64_MIN, INT64_MAX};
  const int64_t extremes_src[2] = {INT64_MAX, INT64_MIN};
  reduce_into(extremes, extremes_src, 2, DType::kI64, ReduceOp::kMax);
  EXPECT_EQ(extremes[0], INT64_MAX);
  EXPECT_EQ(extremes[1], INT64_MAX);
}

TEST(CommFinishAverage, IntegersTruncateTowardZero) {
  int32_t small[6] = {-7, 7, -1, -5, -6, INT32_MIN};
  finish_average(small, 6, DType::kI32, 3);
  EXPECT_EQ(std::vector<int32_t>(small, small + 6),
            (std::vector<int32_t>{-2, 2, 0, -1, -2, INT32_MIN / 3}));
  int64_t wide[3] = {-7, INT64_MIN, 9};
  finish_average(wide, 3, DType::kI64, 2);
  EXPECT_EQ(wide[0], -3);
  EXPECT_EQ(wide[1], INT64_MIN / 2);
  EXPECT_EQ(wide[2], 4);
}

TEST(CommFinishAverage, FloatsDivideInTheirOwnPrecision) {
  float f = 1.0f;
  finish_average(&f, 1, DType::kF32, 3);
  EXPECT_EQ(float_bits(f), float_bits(1.0f / 3.0f));
  double d = 1.0;
  finish_average(&d, 1, DType::kF64, 3);
  EXPECT_EQ(d, 1.0 / 3.0);
  uint16_t bf = 0x3F80;  // 1.0
  finish_average(&bf, 1, DType::kBF16, 3);
  EXPECT_EQ(bf, 0x3EAB);   // 1/3 = 0x3EAAAAAB in float rounds up to 0x3EAB
  uint16_t half = 0x3C00;  // 1.0
  finish_average(&half, 1, DType::kF16, 3);
  EXPECT_EQ(half, 0x3555);
}

TEST(CommFinishAverage, WorldOfOneIsIdentityAndZeroIsRefused) {
  float f[2] = {3.0f, -1.5f};
  finish_average(f, 2, DType::kF32, 1);
  EXPECT_EQ(f[0], 3.0f);
  EXPECT_EQ(f[1], -1.5f);
  try {
    finish_average(f, 2, DType::kF32, 0);
    FAIL() << "world size 0 accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kInternal);
  }
}

// Reduction of 16-bit floats rounds the float result once, to nearest even.
TEST(CommReduceInto, SixteenBitSumsRoundOnceToNearestEven) {
  uint16_t bf[3] = {0x3F80, 0x3F81, 0x7F7F};            // 1, 1 + 2^-7, max finite
  const uint16_t bf_src[3] = {0x3B80, 0x3B80, 0x7F7F};  // 2^-8, 2^-8, max finite
  reduce_into(bf, bf_src, 3, DType::kBF16, ReduceOp::kSum);
  EXPECT_EQ(bf[0], 0x3F80);                             // 1 + 2^-8: a tie, to even 1.0
  EXPECT_EQ(bf[1], 0x3F82);                             // 1 + 3 * 2^-8: a tie, to even 1 + 2^-6
  EXPECT_EQ(bf[2], 0x7F80);                             // overflow to +inf
  uint16_t half[4] = {0x3C00, 0x7BFF, 0x0001, 0x0400};  // 1, 65504, 2^-24, 2^-14
  const uint16_t half_src[4] = {0x1000, 0x7BFF, 0x0001, 0x8001};  // 2^-11, 65504, 2^-24, -2^-24
  reduce_into(half, half_src, 4, DType::kF16, ReduceOp::kSum);
  EXPECT_EQ(half[0], 0x3C00);  // 1 + 2^-11: a tie, to even 1.0
  EXPECT_EQ(half[1], 0x7C00);  // overflow to +inf
  EXPECT_EQ(half[2], 0x0002);  // subnormal sum
  EXPECT_EQ(half[3], 0x03FF);  // normal minus a subnormal: the largest subnormal
}

// ---- Conversions on hand-picked bit patterns ---------------------------------------------------

struct Case {
  uint32_t input;
  uint16_t output;
};

// `convert` gives each case's output bits from its input bits.
void expect_conversions(uint16_t (*convert)(float), const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    EXPECT_EQ(convert(bits_float(c.input)), c.output) << std::hex << "input 0x" << c.input;
  }
}

// `convert` keeps every NaN in `nans` a NaN (the `exponent` bits all set, some of the `mantissa`
// bits set) and keeps its sign.
void expect_nans_stay_nan(uint16_t (*convert)(float), uint32_t exponent, uint32_t mantissa,
                          const std::vector<uint32_t>& nans) {
  for (uint32_t nan : nans) {
    const uint16_t out = convert(bits_float(nan));
    EXPECT_EQ(out & exponent, exponent) << std::hex << nan;
    EXPECT_NE(out & mantissa, 0u) << std::hex << "0x" << nan << " became infinity";
    EXPECT_EQ(out & 0x8000u, (nan >> 16) & 0x8000u) << "sign kept";
  }
}

TEST(CommBf16, RoundsToNearestEven) {
  const std::vector<Case> cases = {
      {0x3F800000, 0x3F80},  // 1.0
      {0x3F808000, 0x3F80},  // tie between 0x3F80 and 0x3F81: to even
      {0x3F818000, 0x3F82},  // tie between 0x3F81 and 0x3F82: to even
      {0x3F808001, 0x3F81},  // just above the tie
      {0x3F807FFF, 0x3F80},  // just below the tie
      {0xBF818000, 0xBF82},  // negative tie
      {0x3FFF8000, 0x4000},  // tie whose rounding carries into the exponent
      {0x7F7F7FFF, 0x7F7F},  // just below the overflow tie: max finite
      {0x7F7F8000, 0x7F80},  // the overflow tie rounds to even: +inf
      {0x7F7FFFFF, 0x7F80},  // FLT_MAX overflows to +inf
      {0xFF7FFFFF, 0xFF80},  // -FLT_MAX to -inf
      {0x7F800000, 0x7F80},  // +inf
      {0xFF800000, 0xFF80},  // -inf
      {0x00000000, 0x0000},  // +0
      {0x80000000, 0x8000},  // -0
      {0x00010000, 0x0001},  // float subnormal, exact
      {0x00008000, 0x0000},  // subnormal tie to even 0
      {0x00018000, 0x0002},  // subnormal tie to even 2
  };
  expect_conversions(float_to_bf16, cases);
}

TEST(CommBf16, NaNStaysNaN) {
  expect_nans_stay_nan(
      float_to_bf16, 0x7F80u, 0x007Fu,
      {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0x7FFFFFFFu, 0xFF800001u, 0x7F80FFFFu});
}

TEST(CommBf16, ToFloatIsExact) {
  EXPECT_EQ(bf16_to_float(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_float(0xC040), -3.0f);
  EXPECT_EQ(bf16_to_float(0x7F80), INFINITY);
  EXPECT_EQ(bf16_to_float(0xFF80), -INFINITY);
  EXPECT_EQ(float_bits(bf16_to_float(0x0001)), 0x00010000u);
  EXPECT_EQ(float_bits(bf16_to_float(0x8000)), 0x80000000u);
  EXPECT_TRUE(std::isnan(bf16_to_float(0x7FC1)));
}

TEST(CommF16, RoundsToNearestEven) {
  const std::vector<Case> cases = {
      {float_bits(1.0f), 0x3C00},
      {0x3F801000, 0x3C00},  // 1 + 2^-11: tie, to even
      {0x3F803000, 0x3C02},  // 1 + 3 * 2^-11: tie, to even
      {0x3F801001, 0x3C01},  // just above the tie
      {0xBF803000, 0xBC02},  // negative tie
      {float_bits(0.1f), 0x2E66},
      {float_bits(1.0f / 3.0f), 0x3555},
      {float_bits(65504.0f), 0x7BFF},   // max finite
      {float_bits(65519.99f), 0x7BFF},  // below the overflow tie
      {float_bits(65520.0f), 0x7C00},   // the overflow tie rounds to even: +inf
      {float_bits(-65520.0f), 0xFC00},
      {float_bits(1e10f), 0x7C00},
      {0x7F800000, 0x7C00},              // +inf
      {0xFF800000, 0xFC00},              // -inf
      {0x80000000, 0x8000},              // -0
      {float_bits(0x1p-14f), 0x0400},    // smallest normal
      {float_bits(0x1p-24f), 0x0001},    // smallest subnormal
      {float_bits(0x3FFp-24f), 0x03FF},  // largest subnormal
      {float_bits(0x7FFp-25f), 0x0400},  // tie between 0x03FF and 0x0400: to even, a normal
      {float_bits(0x1p-25f), 0x0000},    // tie between 0 and the smallest subnormal: to even 0
      {float_bits(0x3p-25f), 0x0002},    // tie between 1 and 2 subnormal quanta: to even 2
      {float_bits(0x5p-25f), 0x0002},    // tie between 2 and 3: to even 2
      {0x33000001, 0x0001},              // just above 2^-25
      {float_bits(0x1p-26f), 0x0000},    // underflow to 0
      {float_bits(-0x1p-24f), 0x8001},
      {float_bits(-0x1p-26f), 0x8000},  // underflow keeps the sign
      {0x00000001, 0x0000},             // float subnormal
  };
  expect_conversions(float_to_f16, cases);
}

TEST(CommF16, NaNStaysNaN) {
  expect_nans_stay_nan(float_to_f16, 0x7C00u, 0x03FFu,
                       {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0x7FFFFFFFu, 0xFF800001u});
}

TEST(CommF16, ToFloatIsExact) {
  EXPECT_EQ(f16_to_float(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_float(0xC000), -2.0f);
  EXPECT_EQ(f16_to_float(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_to_float(0x0001), 0x1p-24f);
  EXPECT_EQ(f16_to_float(0x03FF), 0x3FFp-24f);
  EXPECT_EQ(f16_to_float(0x8001), -0x1p-24f);
  EXPECT_EQ(f16_to_float(0x0400), 0x1p-14f);
  EXPECT_EQ(f16_to_float(0x7C00), INFINITY);
  EXPECT_EQ(f16_to_float(0xFC00), -INFINITY);
  EXPECT_EQ(float_bits(f16_to_float(0x8000)), 0x80000000u);
  EXPECT_TRUE(std::isnan(f16_to_float(0x7E00)));
  EXPECT_TRUE(std::isnan(f16_to_float(0x7C01)));
}

// `to_float` gives the 16-bit `bits` the value `format` decodes them to, and `from_float` turns
// that float back into `bits` (a NaN into a NaN).
void expect_round_trip(uint32_t bits, float (*to_float)(uint16_t), uint16_t (*from_float)(float),
                       conformance::Format16 format) {
  const auto value = static_cast<uint16_t>(bits);
  const float x = to_float(value);
  const double expected = conformance::decode16(value, format);
  if (std::isnan(expected)) {
    EXPECT_TRUE(std::isnan(x)) << std::hex << bits;
    EXPECT_TRUE(std::isnan(to_float(from_float(x)))) << std::hex << bits;
  } else {
    EXPECT_EQ(x, expected) << std::hex << bits;
    EXPECT_EQ(from_float(x), value) << std::hex << bits;
  }
}

// Every 16-bit pattern survives the round trip through float (NaN as NaN).
TEST(CommSixteenBit, RoundTripOfEveryPattern) {
  for (uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    expect_round_trip(bits, bf16_to_float, float_to_bf16, conformance::kBf16Format);
    expect_round_trip(bits, f16_to_float, float_to_f16, conformance::kF16Format);
  }
}

// Many floats, including every midpoint and its neighbours, against the double reference.
TEST(CommSixteenBit, MatchesIndependentReference) {
  std::vector<uint32_t> inputs;
  for (uint32_t i = 0; i < 200000; ++i)
    inputs.push_back(static_cast<uint32_t>(conformance::mix(i)));
  for (uint32_t bits = 0; bits < 0x7C00; bits += 7) {  // f16 midpoints and neighbours
    const double mid =
        (conformance::decode16(static_cast<uint16_t>(bits), conformance::kF16Format) +
         conformance::decode16(static_cast<uint16_t>(bits + 1), conformance::kF16Format)) /
        2;
    const uint32_t m = float_bits(static_cast<float>(mid));
    for (uint32_t v : {m - 1, m, m + 1}) inputs.push_back(v), inputs.push_back(v | 0x80000000u);
  }
  for (uint32_t hi = 0; hi < 0x7F80; hi += 3) {  // bf16 midpoints and neighbours
    const uint32_t m = (hi << 16) | 0x8000u;
    for (uint32_t v : {m - 1, m, m + 1}) inputs.push_back(v), inputs.push_back(v | 0x80000000u);
  }
  int wrong_bf16 = 0, wrong_f16 = 0;
  for (uint32_t bits : inputs) {
    const float x = bits_float(bits);
    if (std::isnan(x)) continue;
    if (float_to_bf16(x) != conformance::round16(x, conformance::kBf16Format) && ++wrong_bf16 < 5) {
      ADD_FAILURE() << std::hex << "bf16 of 0x" << bits << ": 0x" << float_to_bf16(x)
                    << ", expected 0x" << conformance::round16(x, conformance::kBf16Format);
    }
    if (float_to_f16(x) != conformance::round16(x, conformance::kF16Format) && ++wrong_f16 < 5) {
      ADD_FAILURE() << std::hex << "f16 of 0x" << bits << ": 0x" << float_to_f16(x)
                    << ", expected 0x" << conformance::round16(x, conformance::kF16Format);
    }
  }
  EXPECT_EQ(wrong_bf16, 0);
  EXPECT_EQ(wrong_f16, 0);
}

// The whole-buffer conversions of comm.reduce_dtype agree element by element with the independent
// rounding reference (conformance::round16 / decode16) over a sweep of magnitudes, signs,
// subnormals, infinities and NaN; other dtypes are refused.
TEST(CommReduceInto, WholeBufferRoundingAndWideningMatchTheReference) {
  std::vector<float> values;
  for (int e = -30; e <= 30; e += 3) {
    for (float m : {1.0f, 1.00390625f, 1.33333333f, 1.9999f}) {
      values.push_back(std::ldexp(m, e));
      values.push_back(-std::ldexp(m, e));
    }
  }
  values.push_back(std::numeric_limits<float>::infinity());
  values.push_back(0.0f);
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    const conformance::Format16 format =
        dtype == DType::kBF16 ? conformance::kBf16Format : conformance::kF16Format;
    std::vector<uint16_t> rounded(values.size());
    std::vector<float> widened(values.size());
    round_floats(values.data(), rounded.data(), values.size(), dtype);
    widen_floats(rounded.data(), widened.data(), values.size(), dtype);
    for (std::size_t i = 0; i < values.size(); ++i) {
      EXPECT_EQ(rounded[i], conformance::round16(values[i], format))
          << dtype_name(dtype) << " " << values[i];
      EXPECT_EQ(widened[i], static_cast<float>(conformance::decode16(rounded[i], format)))
          << dtype_name(dtype) << " " << values[i];
    }
    const float nan = std::numeric_limits<float>::quiet_NaN();
    uint16_t nan16 = 0;
    float back = 0;
    round_floats(&nan, &nan16, 1, dtype);
    widen_floats(&nan16, &back, 1, dtype);
    EXPECT_TRUE(std::isnan(back)) << dtype_name(dtype);
  }
  uint16_t out = 0;
  float in = 1.0f;
  EXPECT_THROW(round_floats(&in, &out, 1, DType::kF32), Error);
  EXPECT_THROW(widen_floats(&out, &in, 1, DType::kI32), Error);
}

}  // namespace
}  // namespace dpt
