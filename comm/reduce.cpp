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

// Both conversions pick between their range cases with arithmetic selects instead of branches,
// so loops over buffers vectorise (every case is computed; the unused ones are harmless).
inline uint32_t pick(bool condition, uint32_t if_true, uint32_t if_false) {
  return if_false ^ ((if_true ^ if_false) & (0u - static_cast<uint32_t>(condition)));
}

inline float f16_to_f32(uint16_t value) {
  const uint32_t sign = (static_cast<uint32_t>(value) & 0x8000u) << 16;
  const uint32_t exponent = (value >> 10) & 0x1Fu;
  const uint32_t mantissa = value & 0x3FFu;
  const uint32_t special = sign | 0x7F800000u | (mantissa << 13);  // inf, NaN
  // Zero or subnormal: mantissa * 2^-24, exact in float.
  const uint32_t tiny =
      sign | float_bits(static_cast<float>(static_cast<int32_t>(mantissa)) * 0x1p-24f);
  const uint32_t normal = sign | ((exponent + 112) << 23) | (mantissa << 13);
  return bits_float(pick(exponent == 0x1F, special, pick(exponent == 0, tiny, normal)));
}

// After F. Giesen's float_to_half_fast3_rtne: exact round to nearest even in every range.
inline uint16_t f32_to_f16(float value) {
  uint32_t bits = float_bits(value);
  const uint32_t sign = bits & 0x80000000u;
  bits ^= sign;
  // |value| >= 65536, inf or NaN.
  const uint32_t big = pick(bits > 0x7F800000u, 0x7E00u | ((bits >> 13) & 0x3FFu), 0x7C00u);
  // Below 2^-14 (f16 subnormal or zero): adding 0.5 aligns the value's bits so the FPU's own
  // rounding (to nearest even) yields the f16 subnormal mantissa in the low bits.
  const uint32_t tiny = float_bits(bits_float(bits) + 0.5f) - 0x3F000000u;
  // Rebias the exponent (15 - 127) and round; may carry into inf.
  const uint32_t normal = (bits + 0xC8000FFFu + ((bits >> 13) & 1u)) >> 13;
  const uint32_t result = pick(bits >= 0x47800000u, big, pick(bits < 0x38800000u, tiny, normal));
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

// How one storage type is reduced: loaded into the type the operator runs in, stored back.
// Identity for float, double and the integers; 16-bit floats widen to float and round back once.
template <typename T>
struct Plain {
  using Storage = T;
  static T load(T value) { return value; }
  static T store(T value) { return value; }
};
template <float (*kToFloat)(uint16_t), uint16_t (*kFromFloat)(float)>
struct Widened {
  using Storage = uint16_t;
  static float load(uint16_t value) { return kToFloat(value); }
  static uint16_t store(float value) { return kFromFloat(value); }
};

template <typename Codec, typename Op>
void reduce_loop(void* dst_bytes, const void* src_bytes, std::size_t count, Op op) {
  using T = typename Codec::Storage;
  T* __restrict dst = static_cast<T*>(dst_bytes);
  const T* __restrict src = static_cast<const T*>(src_bytes);
  for (std::size_t i = 0; i < count; ++i)
    dst[i] = Codec::store(op(Codec::load(dst[i]), Codec::load(src[i])));
}

template <typename Codec, typename Op>
void combine_loop(void* dst_bytes, const void* a_bytes, const void* b_bytes, std::size_t count,
                  Op op) {
  using T = typename Codec::Storage;
  T* __restrict dst = static_cast<T*>(dst_bytes);
  const T* __restrict a = static_cast<const T*>(a_bytes);
  const T* __restrict b = static_cast<const T*>(b_bytes);
  for (std::size_t i = 0; i < count; ++i)
    dst[i] = Codec::store(op(Codec::load(a[i]), Codec::load(b[i])));
}

// Calls kernel(Codec{}, Op{}) for the codec of `dtype` and the operator of `op` (kAvg sums).
template <typename Codec, typename Kernel>
void with_op(ReduceOp op, Kernel&& kernel) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      return kernel(Codec(), Sum());
    case ReduceOp::kMax:
      return kernel(Codec(), Max());
    case ReduceOp::kMin:
      return kernel(Codec(), Min());
  }
}

template <typename Kernel>
void with_codec(DType dtype, ReduceOp op, Kernel&& kernel) {
  switch (dtype) {
    case DType::kF32:
      return with_op<Plain<float>>(op, kernel);
    case DType::kF64:
      return with_op<Plain<double>>(op, kernel);
    case DType::kBF16:
      return with_op<Widened<bf16_to_f32, f32_to_bf16>>(op, kernel);
    case DType::kF16:
      return with_op<Widened<f16_to_f32, f32_to_f16>>(op, kernel);
    case DType::kI32:
      return with_op<Plain<int32_t>>(op, kernel);
    case DType::kI64:
      return with_op<Plain<int64_t>>(op, kernel);
  }
  DPT_THROW(ErrorKind::kInternal) << "reduce: unknown dtype " << static_cast<int>(dtype);
}

template <typename Codec>
void divide_loop(void* data, std::size_t count, int world_size) {
  using T = typename Codec::Storage;
  using Value = decltype(Codec::load(T()));
  T* __restrict d = static_cast<T*>(data);
  const Value divisor = static_cast<Value>(world_size);
  for (std::size_t i = 0; i < count; ++i) d[i] = Codec::store(Codec::load(d[i]) / divisor);
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
  with_codec(dtype, op,
             [&](auto codec, auto op_fn) { reduce_loop<decltype(codec)>(dst, src, count, op_fn); });
}

void reduce_pair(void* dst, const void* a, const void* b, std::size_t count, DType dtype,
                 ReduceOp op) {
  with_codec(dtype, op, [&](auto codec, auto op_fn) {
    combine_loop<decltype(codec)>(dst, a, b, count, op_fn);
  });
}

void round_floats(const float* src, uint16_t* dst, std::size_t count, DType dtype) {
  DPT_CHECK(dtype == DType::kBF16 || dtype == DType::kF16)
      << "round_floats: to bf16 or f16, not " << dtype_name(dtype);
  const float* __restrict in = src;
  uint16_t* __restrict out = dst;
  if (dtype == DType::kBF16) {
    for (std::size_t i = 0; i < count; ++i) out[i] = f32_to_bf16(in[i]);
  } else {
    for (std::size_t i = 0; i < count; ++i) out[i] = f32_to_f16(in[i]);
  }
}

void widen_floats(const uint16_t* src, float* dst, std::size_t count, DType dtype) {
  DPT_CHECK(dtype == DType::kBF16 || dtype == DType::kF16)
      << "widen_floats: from bf16 or f16, not " << dtype_name(dtype);
  const uint16_t* __restrict in = src;
  float* __restrict out = dst;
  if (dtype == DType::kBF16) {
    for (std::size_t i = 0; i < count; ++i) out[i] = bf16_to_f32(in[i]);
  } else {
    for (std::size_t i = 0; i < count; ++i) out[i] = f16_to_f32(in[i]);
  }
}

void finish_average(void* data, std::size_t count, DType dtype, int world_size) {
  DPT_CHECK(world_size >= 1) << "finish_average: world size " << world_size << " must be >= 1";
  if (world_size == 1) return;
  with_codec(dtype, ReduceOp::kSum,
             [&](auto codec, auto) { divide_loop<decltype(codec)>(data, count, world_size); });
}

}  // namespace dpt
