// Element-wise reduction functions for Gloo's all-reduce, one per (dtype, op) of the plug-in ABI
// (comm/plugin_abi.h). Gloo's own gloo::max/min drop NaN and its sums overflow signed integers,
// so the plug-in brings its own: float max/min propagate NaN, integer sums wrap modulo 2^bits,
// bf16 and f16 reduce through float and round back to nearest even. Header-only; used by
// gloo_plugin.cpp only.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

#include "comm/plugin_abi.h"

namespace dpt_gloo {

// Gloo's reduction signature: c[i] = op(a[i], b[i]) for i < n; c may alias a or b.
using ReduceFn = std::function<void(void*, const void*, const void*, std::size_t)>;

inline float bits_to_float(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}
inline uint32_t float_to_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return bits;
}

inline float bf16_to_float(uint16_t h) { return bits_to_float(static_cast<uint32_t>(h) << 16); }
inline uint16_t float_to_bf16(float f) {
  const uint32_t x = float_to_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // NaN
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);  // nearest, ties to even
}

inline float f16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));
  return bits_to_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}
inline uint16_t float_to_f16(float f) {
  const uint32_t x = float_to_bits(f);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return sign | 0x7e00u;   // NaN
  if (ax >= 0x477ff000u) return sign | 0x7c00u;  // from 65520 up: infinity
  if (ax < 0x38800000u) {  // below 2^-14: a subnormal (or 0x400, the smallest normal) of 2^-24
    const float scaled = bits_to_float(ax) * 16777216.0f;  // exact: a power-of-two scaling
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(scaled)));
  }
  const uint32_t rounded = ax + 0xfffu + ((ax >> 13) & 1u) - (112u << 23);
  return static_cast<uint16_t>(sign | (rounded >> 13));
}

template <typename T>
T pick_max(T a, T b) {
  if (a != a) return a;  // NaN wins (floats)
  if (b != b) return b;
  return a > b ? a : b;
}
template <typename T>
T pick_min(T a, T b) {
  if (a != a) return a;
  if (b != b) return b;
  return a < b ? a : b;
}

// Storage type S, computed as C (integers: unsigned C for wrapping sums), op F.
template <typename S, typename F>
ReduceFn elementwise(F f) {
  return [f](void* c, const void* a, const void* b, std::size_t n) {
    S* out = static_cast<S*>(c);
    const S* x = static_cast<const S*>(a);
    const S* y = static_cast<const S*>(b);
    for (std::size_t i = 0; i < n; ++i) out[i] = f(x[i], y[i]);
  };
}

template <typename T>
ReduceFn native(dpt_coll_op_t op) {
  switch (op) {
    case DPT_COLL_SUM:
      return elementwise<T>([](T a, T b) { return static_cast<T>(a + b); });
    case DPT_COLL_MAX:
      return elementwise<T>(pick_max<T>);
    case DPT_COLL_MIN:
      return elementwise<T>(pick_min<T>);
  }
  return nullptr;
}

template <typename T, typename U>  // signed T, wrapping sum in unsigned U
ReduceFn integer(dpt_coll_op_t op) {
  if (op != DPT_COLL_SUM) return native<T>(op);
  return elementwise<T>([](T a, T b) {
    return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  });
}

template <float (*Load)(uint16_t), uint16_t (*Store)(float)>
ReduceFn half(dpt_coll_op_t op) {
  switch (op) {
    case DPT_COLL_SUM:
      return elementwise<uint16_t>([](uint16_t a, uint16_t b) { return Store(Load(a) + Load(b)); });
    case DPT_COLL_MAX:
      return elementwise<uint16_t>(
          [](uint16_t a, uint16_t b) { return Store(pick_max(Load(a), Load(b))); });
    case DPT_COLL_MIN:
      return elementwise<uint16_t>(
          [](uint16_t a, uint16_t b) { return Store(pick_min(Load(a), Load(b))); });
  }
  return nullptr;
}

// The reduction for (dtype, op), or an empty function for values outside the ABI's enums.
inline ReduceFn reduce_function(dpt_coll_dtype_t dtype, dpt_coll_op_t op) {
  switch (dtype) {
    case DPT_COLL_F32:
      return native<float>(op);
    case DPT_COLL_F64:
      return native<double>(op);
    case DPT_COLL_BF16:
      return half<bf16_to_float, float_to_bf16>(op);
    case DPT_COLL_F16:
      return half<f16_to_float, float_to_f16>(op);
    case DPT_COLL_I32:
      return integer<int32_t, uint32_t>(op);
    case DPT_COLL_I64:
      return integer<int64_t, uint64_t>(op);
  }
  return nullptr;
}

// Bytes per element, or 0 for a value outside the enum.
inline std::size_t dtype_bytes(dpt_coll_dtype_t dtype) {
  switch (dtype) {
    case DPT_COLL_F64:
    case DPT_COLL_I64:
      return 8;
    case DPT_COLL_F32:
    case DPT_COLL_I32:
      return 4;
    case DPT_COLL_BF16:
    case DPT_COLL_F16:
      return 2;
  }
  return 0;
}

}  // namespace dpt_gloo
