// Matrix multiply on a Device: C = alpha * op(A) * op(B) + beta * C, row-major, the one entry
// point layers use for GEMM. On the CPU float32 goes to the device's sgemm library (oneDNN or
// OpenBLAS) and float64 to OpenBLAS dgemm; on a CUDA device float32 goes to cuBLASLt
// (devices/gpu_ops.h) and float64 is an error. op(A) is [m, k], op(B) is [k, n], C is [m, n].
#pragma once

#include <cstdint>

#include "devices/device.h"
#include "devices/gemm_shape.h"
#include "devices/gpu_ops.h"

namespace dpt {

// GemmShape for dense row-major operands with no padding.
GemmShape dense_gemm_shape(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k);

// `gpu_precision` applies on a CUDA device only (TF32 there; the CPU ignores it).
void gemm(Device& device, const GemmShape& shape, float alpha, const float* a, const float* b,
          float beta, float* c, GpuMatmul gpu_precision = GpuMatmul::kFp32);
void gemm(Device& device, const GemmShape& shape, double alpha, const double* a, const double* b,
          double beta, double* c);

}  // namespace dpt
