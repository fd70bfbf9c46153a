// GEMM dispatch: the CPU to oneDNN or OpenBLAS, a CUDA device to cuBLASLt through
// devices/gpu_ops.h (devices/cuda/cuda_gemm.cpp).
#include "core/gemm.h"

#include <cblas.h>
#include <dnnl.h>

#include "devices/cpu_device.h"
#include "devices/error.h"

namespace dpt {
namespace {

const CpuDevice& as_cpu(Device& device) {
  DPT_CHECK(device.kind() == DeviceKind::kCpu)
      << "gemm: " << device.name() << " is not the CPU (float64 GEMMs run on the CPU only)";
  return static_cast<const CpuDevice&>(device);
}

CBLAS_TRANSPOSE cblas_op(bool trans) { return trans ? CblasTrans : CblasNoTrans; }

}  // namespace

GemmShape dense_gemm_shape(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k) {
  GemmShape shape;
  shape.trans_a = trans_a;
  shape.trans_b = trans_b;
  shape.m = m;
  shape.n = n;
  shape.k = k;
  shape.lda = trans_a ? m : k;
  shape.ldb = trans_b ? k : n;
  shape.ldc = n;
  return shape;
}

void gemm(Device& device, const GemmShape& s, float alpha, const float* a, const float* b,
          float beta, float* c, GpuMatmul gpu_precision) {
  if (device.kind() == DeviceKind::kCuda) {
    gpu_gemm(device, s, alpha, a, b, beta, c, gpu_precision);
    return;
  }
  if (s.m == 0 || s.n == 0) return;
  if (as_cpu(device).gemm_library() == CpuGemmLibrary::kOneDnn) {
    dnnl_status_t status = dnnl_sgemm(s.trans_a ? 'T' : 'N', s.trans_b ? 'T' : 'N', s.m, s.n, s.k,
                                      alpha, a, s.lda, b, s.ldb, beta, c, s.ldc);
    DPT_CHECK(status == dnnl_success) << "oneDNN sgemm failed with status " << status;
    return;
  }
  cblas_sgemm(CblasRowMajor, cblas_op(s.trans_a), cblas_op(s.trans_b), s.m, s.n, s.k, alpha, a,
              s.lda, b, s.ldb, beta, c, s.ldc);
}

void gemm(Device& device, const GemmShape& s, double alpha, const double* a, const double* b,
          double beta, double* c) {
  as_cpu(device);
  if (s.m == 0 || s.n == 0) return;
  cblas_dgemm(CblasRowMajor, cblas_op(s.trans_a), cblas_op(s.trans_b), s.m, s.n, s.k, alpha, a,
              s.lda, b, s.ldb, beta, c, s.ldc);
}

}  // namespace dpt
