// Reduction kernels (comm/reduce.h). One plain loop per (type, op) pair over __restrict pointers,
// so the compiler vectorises the float sums that dominate gradient averaging; 16-bit floats go
// through float with branch-free conversions. Integer sums run in unsigned arithmetic, where
// wrap-around is defined, instead of signed arithmetic, where overflow is undefined behaviour.
#include "comm/reduce.h"

#include <cstring>
#include <type_traits>

#include "core/bf16.h"
#include "devices/error.h"

namespace dpt {
namespace {

inline uint32_t float_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

inline float bits_float(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

// bf16 rounding is core's (core/bf16.h), the same the bf16 matmuls use.
inline float bf16_to_f32(uint16_t value) { return from_bf16(value); }
inline uint16_t f32_to_bf16(float value) { return to_bf16(value); }

inline float f16_to_f32(uint16_t value) {
  const uint32_t sign = (static_cast<uint32_t>(value) & 0x8000u) << 16;
  const uint32_t exponent = (value >> 10) & 0x1Fu;
  const uint32_t mantissa = value & 0x3FFu;
  if (exponent == 0x1F) return bits_float(sign | 0x7F800000u | (mantissa << 13));  // inf, NaN
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign != 0 ? -magnitude : magnitude;
  }
  return bits_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

// After F. Giesen's float_to_half_fast3_rtne: exact round to nearest even in every range.
inline uint16_t f32_to_f16(float value) {
  uint32_t bits = float_bits(value);
  const uint32_t sign = bits & 0x80000000u;
  bits ^= sign;
  uint32_t result;
  if (bits >= 0x47800000u) {  // |value| >= 65536, inf or NaN
    result = bits > 0x7F800000u ? (0x7E00u | ((bits >> 13) & 0x3FFu)) : 0x7C00u;
  } else if (bits < 0x38800000u) {  // below 2^-14: f16 subnormal or zero
    // Adding 0.5 aligns the value's bits so the FPU's own rounding (to nearest even) yields the
    // f16 subnormal mantissa in the low bits.
    const float magic = bits_float(0x3F000000u);
    result = float_bits(bits_float(bits) + magic) - 0x3F000000u;
  } else {
    const uint32_t mantissa_odd = (bits >> 13) & 1u;
    bits += 0xC8000FFFu + mantissa_odd;  // rebias exponent (15 - 127) and round; may carry to inf
    result = bits >> 13;
  }
  return static_cast<uint16_t>(result | (sign >> 16));
}

// Binary operators on one element. Max and min return the first operand when it is NaN and the
// second otherwise, which covers a NaN second operand since every comparison with NaN is false.
struct Sum {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      using U = std::make_unsigned_t<T>;
      return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
    } else {
      return a + b;
    }
  }
};
struct Max {
  template <typename T>
  T operator()(T a, T b) const {
    return (a > b || a != a) ? a : b;
  }
};
struct Min {
  template <typename T>
  T operator()(T a, T b) const {
    return (a < b || a != a) ? a : b;
  }
};

template <typename T, typename Op>
void reduce_loop(T* __restrict dst, const T* __restrict src, std::size_t count, Op op) {
  for (std::size_t i = 0; i < count; ++i) dst[i] = op(dst[i], src[i]);
}

// 16-bit floats: widen both operands, reduce in float, round back once.
template <float (*kToFloat)(uint16_t), uint16_t (*kFromFloat)(float), typename Op>
void reduce_loop_16(uint16_t* __restrict dst, const uint16_t* __restrict src, std::size_t count,
                    Op op) {
  for (std::size_t i = 0; i < count; ++i)
    dst[i] = kFromFloat(op(kToFloat(dst[i]), kToFloat(src[i])));
}

template <typename T>
void reduce_typed(void* dst, const void* src, std::size_t count, ReduceOp op) {
  T* d = static_cast<T*>(dst);
  const T* s = static_cast<const T*>(src);
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      return reduce_loop(d, s, count, Sum());
    case ReduceOp::kMax:
      return reduce_loop(d, s, count, Max());
    case ReduceOp::kMin:
      return reduce_loop(d, s, count, Min());
  }
}

template <float (*kToFloat)(uint16_t), uint16_t (*kFromFloat)(float)>
void reduce_16(void* dst, const void* src, std::size_t count, ReduceOp op) {
  auto* d = static_cast<uint16_t*>(dst);
  const auto* s = static_cast<const uint16_t*>(src);
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      return reduce_loop_16<kToFloat, kFromFloat>(d, s, count, Sum());
    case ReduceOp::kMax:
      return reduce_loop_16<kToFloat, kFromFloat>(d, s, count, Max());
    case ReduceOp::kMin:
      return reduce_loop_16<kToFloat, kFromFloat>(d, s, count, Min());
  }
}

template <typename T>
void divide_loop(void* data, std::size_t count, int world_size) {
  T* __restrict d = static_cast<T*>(data);
  const T divisor = static_cast<T>(world_size);
  for (std::size_t i = 0; i < count; ++i) d[i] = d[i] / divisor;
}

template <float (*kToFloat)(uint16_t), uint16_t (*kFromFloat)(float)>
void divide_loop_16(void* data, std::size_t count, int world_size) {
  auto* __restrict d = static_cast<uint16_t*>(data);
  const float divisor = static_cast<float>(world_size);
  for (std::size_t i = 0; i < count; ++i) d[i] = kFromFloat(kToFloat(d[i]) / divisor);
}

}  // namespace

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kMin:
      return "min";
  }
  return "?";
}

float bf16_to_float(uint16_t value) { return bf16_to_f32(value); }
uint16_t float_to_bf16(float value) { return f32_to_bf16(value); }
float f16_to_float(uint16_t value) { return f16_to_f32(value); }
uint16_t float_to_f16(float value) { return f32_to_f16(value); }

void reduce_into(void* dst, const void* src, std::size_t count, DType dtype, ReduceOp op) {
  switch (dtype) {
    case DType::kF32:
      return reduce_typed<float>(dst, src, count, op);
    case DType::kF64:
      return reduce_typed<double>(dst, src, count, op);
    case DType::kBF16:
      return reduce_16<bf16_to_f32, f32_to_bf16>(dst, src, count, op);
    case DType::kF16:
      return reduce_16<f16_to_f32, f32_to_f16>(dst, src, count, op);
    case DType::kI32:
      return reduce_typed<int32_t>(dst, src, count, op);
    case DType::kI64:
      return reduce_typed<int64_t>(dst, src, count, op);
  }
  DPT_THROW(ErrorKind::kInternal) << "reduce_into: unknown dtype " << static_cast<int>(dtype);
}

void finish_average(void* data, std::size_t count, DType dtype, int world_size) {
  DPT_CHECK(world_size >= 1) << "finish_average: world size " << world_size << " must be >= 1";
  if (world_size == 1) return;
  switch (dtype) {
    case DType::kF32:
      return divide_loop<float>(data, count, world_size);
    case DType::kF64:
      return divide_loop<double>(data, count, world_size);
    case DType::kBF16:
      return divide_loop_16<bf16_to_f32, f32_to_bf16>(data, count, world_size);
    case DType::kF16:
      return divide_loop_16<f16_to_f32, f32_to_f16>(data, count, world_size);
    case DType::kI32:
      return divide_loop<int32_t>(data, count, world_size);
    case DType::kI64:
      return divide_loop<int64_t>(data, count, world_size);
  }
  DPT_THROW(ErrorKind::kInternal) << "finish_average: unknown dtype " << static_cast<int>(dtype);
}

}  // namespace dpt
