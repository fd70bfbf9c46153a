// Element-wise reduction kernels of the collective layer: dst = op(dst, src) for every DType, the
// final division of an average, and the bf16 / f16 <-> float conversions they use (exposed for
// reuse). CPU host memory only; the loops are written to vectorise, since a float32 sum over the
// whole gradient buffer runs here on every step. Called by comm/ring.cpp and the backends.
#pragma once

#include <cstddef>
#include <cstdint>

#include "comm/communicator.h"
#include "core/tensor.h"

namespace dpt {

// dst[i] = op(dst[i], src[i]) for i < count. kAvg accumulates a sum (finish_average divides).
// Floats: max and min propagate NaN (a NaN in either operand gives NaN). bf16 and f16 are
// converted to float, reduced and rounded back to nearest even once per call. Integer sums wrap
// modulo 2^bits (two's complement) instead of overflowing. dst and src must not overlap.
void reduce_into(void* dst, const void* src, std::size_t count, DType dtype, ReduceOp op);
// dst[i] = op(a[i], b[i]): reduce_into's result without first copying a into dst (the same
// bits). dst must overlap neither a nor b.
void reduce_pair(void* dst, const void* a, const void* b, std::size_t count, DType dtype,
                 ReduceOp op);

// data[i] /= world_size for i < count: turns the sum accumulated for kAvg into the average.
// Floats divide in their own precision (bf16/f16 through float, rounded once); integers use C++
// integer division, which truncates toward zero (-7 / 2 == -3). world_size must be >= 1.
void finish_average(void* data, std::size_t count, DType dtype, int world_size);

// Whole buffers: dst[i] = src[i] rounded to `dtype` (kBF16 or kF16, as below), and back. Loops
// the compiler vectorises (gradients reduced in 16 bits, comm.reduce_dtype).
void round_floats(const float* src, uint16_t* dst, std::size_t count, DType dtype);
void widen_floats(const uint16_t* src, float* dst, std::size_t count, DType dtype);

// bfloat16: the top 16 bits of a float32. Conversion to bf16 rounds to nearest, ties to even;
// overflow rounds to infinity; NaN stays NaN (quiet).
float bf16_to_float(uint16_t value);
uint16_t float_to_bf16(float value);

// IEEE 754 binary16. Conversion to f16 rounds to nearest, ties to even, including into the
// subnormal range; values from 65520 up become infinity; NaN stays NaN (quiet).
float f16_to_float(uint16_t value);
uint16_t float_to_f16(float value);

}  // namespace dpt
