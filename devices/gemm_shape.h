// GemmShape: the row-major GEMM problem C = alpha * op(A) * op(B) + beta * C shared by the CPU
// dispatch (core/gemm.h) and the CUDA one (devices/cuda/cuda_ops.h). op(A) is [m, k], op(B) is
// [k, n], C is [m, n]; lda/ldb/ldc are the row strides of A, B and C as stored.
#pragma once

#include <cstdint>

namespace dpt {

struct GemmShape {
  bool trans_a = false;
  bool trans_b = false;
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  int64_t lda = 0;  // row stride of A as stored
  int64_t ldb = 0;
  int64_t ldc = 0;
};

}  // namespace dpt
