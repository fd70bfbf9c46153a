// The values behind the communicator conformance suite (tests/comm_conformance.h): elements of
// every dtype as 64-bit patterns, inputs generated from (seed, rank, index) so that each rank can
// regenerate every other rank's input, and the reduction a correct all-reduce must produce from
// them. The 16-bit float references here are written independently of comm/reduce.h.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace dpt::conformance {

// ---- Independent references for bfloat16 and float16 ------------------------------------------

struct Format16 {
  int mantissa_bits;
  int exponent_bits;
};
constexpr Format16 kBf16Format{7, 8};
constexpr Format16 kF16Format{10, 5};

// The value of a 16-bit pattern, exactly.
inline double decode16(uint16_t bits, Format16 f) {
  const int bias = (1 << (f.exponent_bits - 1)) - 1;
  const int exponent = (bits >> f.mantissa_bits) & ((1 << f.exponent_bits) - 1);
  const int mantissa = bits & ((1 << f.mantissa_bits) - 1);
  const double sign = (bits & 0x8000u) ? -1.0 : 1.0;
  if (exponent == (1 << f.exponent_bits) - 1) {
    return mantissa != 0 ? std::nan("") : sign * INFINITY;
  }
  if (exponent == 0) return sign * std::ldexp(mantissa, 1 - bias - f.mantissa_bits);
  return sign * std::ldexp((1 << f.mantissa_bits) + mantissa, exponent - bias - f.mantissa_bits);
}

// `x` rounded to the nearest 16-bit value, ties to even, overflow to infinity, NaN to the quiet
// NaN. Works in double: x / quantum is exact, and nearbyint rounds ties to even.
inline uint16_t round16(double x, Format16 f) {
  const int p = f.mantissa_bits, bias = (1 << (f.exponent_bits - 1)) - 1, emin = 1 - bias;
  const uint16_t sign = std::signbit(x) ? 0x8000u : 0u;
  const uint16_t inf = static_cast<uint16_t>(((1u << f.exponent_bits) - 1) << p);
  if (std::isnan(x)) return static_cast<uint16_t>(sign | inf | (1u << (p - 1)));
  const double a = std::fabs(x);
  if (std::isinf(a)) return sign | inf;
  const int e = a == 0 ? emin : std::max(std::ilogb(a), emin);
  const double r = std::nearbyint(a / std::ldexp(1.0, e - p)) * std::ldexp(1.0, e - p);
  if (r == 0) return sign;
  const int er = std::ilogb(r);
  if (er > bias) return sign | inf;
  if (er < emin)
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(r / std::ldexp(1.0, emin - p)));
  const auto mantissa = static_cast<uint16_t>(r / std::ldexp(1.0, er - p) - (1 << p));
  return static_cast<uint16_t>(sign | ((er + bias) << p) | mantissa);
}

// ---- Elements as 64-bit patterns ---------------------------------------------------------------

inline bool is_float(DType dtype) { return dtype != DType::kI32 && dtype != DType::kI64; }

inline uint64_t float_pattern(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}
inline uint64_t double_pattern(double v) {
  uint64_t b;
  std::memcpy(&b, &v, 8);
  return b;
}

// The pattern of `value` in `dtype` (floats round through float to the 16-bit formats).
inline uint64_t encode(DType dtype, double value) {
  switch (dtype) {
    case DType::kF32:
      return float_pattern(static_cast<float>(value));
    case DType::kF64:
      return double_pattern(value);
    case DType::kBF16:
      return round16(static_cast<float>(value), kBf16Format);
    case DType::kF16:
      return round16(static_cast<float>(value), kF16Format);
    case DType::kI32:
      return static_cast<uint32_t>(static_cast<int32_t>(value));
    case DType::kI64:
      return static_cast<uint64_t>(static_cast<int64_t>(value));
  }
  return 0;
}

// The value of a float pattern (integers: their signed value).
inline double decode(DType dtype, uint64_t bits) {
  switch (dtype) {
    case DType::kF32: {
      float v;
      const auto b = static_cast<uint32_t>(bits);
      std::memcpy(&v, &b, 4);
      return v;
    }
    case DType::kF64: {
      double v;
      std::memcpy(&v, &bits, 8);
      return v;
    }
    case DType::kBF16:
      return decode16(static_cast<uint16_t>(bits), kBf16Format);
    case DType::kF16:
      return decode16(static_cast<uint16_t>(bits), kF16Format);
    case DType::kI32:
      return static_cast<int32_t>(static_cast<uint32_t>(bits));
    case DType::kI64:
      return static_cast<double>(static_cast<int64_t>(bits));
  }
  return 0;
}

// Element i of a buffer as a 64-bit pattern and back (little-endian hosts, as all ours are).
inline uint64_t load(DType dtype, const void* data, std::size_t i) {
  uint64_t bits = 0;
  std::memcpy(&bits, static_cast<const char*>(data) + i * dtype_size(dtype), dtype_size(dtype));
  return bits;
}

inline void store(DType dtype, void* data, std::size_t i, uint64_t bits) {
  std::memcpy(static_cast<char*>(data) + i * dtype_size(dtype), &bits, dtype_size(dtype));
}

inline std::string show(DType dtype, uint64_t bits) {
  std::ostringstream text;
  if (dtype == DType::kI64) {
    text << static_cast<int64_t>(bits);
  } else {
    text << decode(dtype, bits) << " (0x" << std::hex << bits << ")";
  }
  return text.str();
}

// ---- Inputs ------------------------------------------------------------------------------------

inline uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// kSmallInt: integers in [-8, 8], so float sums over a few ranks are exact in every dtype.
// kRandom: floats uniform in [-1, 1) (sums round, and depend on order); integers use every bit,
// so sums wrap around.
enum class Pattern { kSmallInt, kRandom };

inline uint64_t input(DType dtype, Pattern pattern, uint64_t seed, int rank, std::size_t i) {
  const uint64_t h = mix(mix(seed ^ (static_cast<uint64_t>(rank) << 40)) + i);
  if (pattern == Pattern::kSmallInt) return encode(dtype, static_cast<double>(h % 17) - 8.0);
  if (dtype == DType::kI32) return h & 0xFFFFFFFFull;
  if (dtype == DType::kI64) return h;
  return encode(dtype, static_cast<double>(h >> 11) * 0x1p-52 - 1.0);
}

// count elements of `rank`'s input, starting at element `offset`.
inline std::vector<char> make_input(DType dtype, Pattern pattern, uint64_t seed, int rank,
                                    std::size_t count, std::size_t offset = 0) {
  std::vector<char> data(count * dtype_size(dtype));
  for (std::size_t i = 0; i < count; ++i) {
    store(dtype, data.data(), i, input(dtype, pattern, seed, rank, offset + i));
  }
  return data;
}

// FNV-1a over the bytes.
inline uint64_t fingerprint(const void* data, std::size_t bytes) {
  uint64_t h = 0xCBF29CE484222325ull;
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  return h;
}

// ---- Expected reductions -----------------------------------------------------------------------

// Unit roundoff of each float dtype.
inline double roundoff(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 0x1p-24;
    case DType::kF64:
      return 0x1p-53;
    case DType::kBF16:
      return 0x1p-8;
    case DType::kF16:
      return 0x1p-11;
    default:
      return 0;
  }
}

// What one result element must be: exact bits (`exact`), or for rounded float sums a value
// within `tolerance` of `value`.
struct Expected {
  bool exact = true;
  uint64_t bits = 0;
  double value = 0;
  double tolerance = 0;
};

// The reduction over `values` (one pattern per rank) that a correct all_reduce produces.
inline Expected expected_reduction(DType dtype, ReduceOp op, Pattern pattern,
                                   const std::vector<uint64_t>& values) {
  const int n = static_cast<int>(values.size());
  Expected result;
  if (!is_float(dtype)) {
    const bool wide = dtype == DType::kI64;
    auto as_signed = [wide](uint64_t b) {
      return wide ? static_cast<int64_t>(b) : static_cast<int64_t>(static_cast<int32_t>(b));
    };
    uint64_t sum = 0;
    int64_t best = as_signed(values[0]);
    for (uint64_t v : values) {
      sum += v;
      if (op == ReduceOp::kMax) best = std::max(best, as_signed(v));
      if (op == ReduceOp::kMin) best = std::min(best, as_signed(v));
    }
    if (!wide) sum &= 0xFFFFFFFFull;
    int64_t out = best;
    if (op == ReduceOp::kSum) out = as_signed(sum);
    if (op == ReduceOp::kAvg) out = as_signed(sum) / n;  // truncates toward zero
    result.bits = wide ? static_cast<uint64_t>(out) : static_cast<uint32_t>(out);
    return result;
  }
  double sum = 0, sum_abs = 0, best = decode(dtype, values[0]);
  bool nan = false;
  for (uint64_t v : values) {
    const double x = decode(dtype, v);
    nan = nan || std::isnan(x);
    sum += x;
    sum_abs += std::fabs(x);
    if (op == ReduceOp::kMax) best = std::max(best, x);
    if (op == ReduceOp::kMin) best = std::min(best, x);
  }
  if (nan) {
    result.value = std::nan("");
    return result;
  }
  if (op == ReduceOp::kMax || op == ReduceOp::kMin) {
    result.bits = encode(dtype, best);
    return result;
  }
  if (pattern == Pattern::kSmallInt) {  // the sum is exact; the average divides it once
    if (op == ReduceOp::kSum) {
      result.bits = encode(dtype, sum);
    } else if (dtype == DType::kF64) {
      result.bits = encode(dtype, sum / n);
    } else {
      result.bits = encode(dtype, static_cast<float>(sum) / static_cast<float>(n));
    }
    return result;
  }
  result.exact = false;
  result.value = op == ReduceOp::kAvg ? sum / n : sum;
  result.tolerance = 2.0 * n * roundoff(dtype) * sum_abs;
  return result;
}

inline bool matches(DType dtype, const Expected& expected, uint64_t got) {
  const double value = decode(dtype, got);
  if (!is_float(dtype)) return got == expected.bits;
  if (std::isnan(expected.value)) return std::isnan(value);
  if (expected.exact) return value == decode(dtype, expected.bits) && !std::isnan(value);
  return std::fabs(value - expected.value) <= expected.tolerance;
}

}  // namespace dpt::conformance
