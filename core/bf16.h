// bf16 (bfloat16: float32's sign and 8-bit exponent, 7 stored mantissa bits) for the bf16 matmul
// path (core/gemm_bf16.h): float32 -> bf16 rounding to nearest, ties to even, and back. Values
// are plain uint16_t bit patterns. The reduced-precision collectives (comm/reduce.cpp) round with
// these too.
#pragma once

#include <cstdint>
#include <cstring>

namespace dpt {

// Round to nearest, ties to even; overflow rounds to +-Inf, Inf stays Inf, float32 denormals
// round to bf16 denormals (no flushing), NaN stays NaN (made quiet, sign kept).
inline uint16_t to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  // Adding 0x7FFF plus the lowest kept bit rounds to nearest with ties to even; a carry out of
  // the mantissa correctly bumps the exponent (up to infinity).
  const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (bits >> 16) | 0x0040u;
  return static_cast<uint16_t>((bits & 0x7FFFFFFFu) > 0x7F800000u ? quiet_nan : rounded);
}

// Exact: every bf16 value is a float32.
inline float from_bf16(uint16_t value) {
  const uint32_t bits = static_cast<uint32_t>(value) << 16;
  float result;
  std::memcpy(&result, &bits, sizeof(result));
  return result;
}

// dst[i] = to_bf16(src[i]) for i < n; OpenMP-parallel for large n, vectorised (AVX-512 where the
// CPU has it, chosen at load time).
void to_bf16(const float* src, uint16_t* dst, int64_t n);

}  // namespace dpt
