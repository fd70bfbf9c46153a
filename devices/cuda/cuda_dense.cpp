// The Dense layer's GPU path: its three GEMMs through cuda_gemm (forward with a fused bias or
// bias + ReLU epilogue where cuBLASLt has one) and the element-wise kernels around them, in the
// order core/dense.cpp runs them on the CPU.
#include "devices/cuda/cuda_ops.h"
#include "devices/error.h"

namespace dpt {

void cuda_dense_forward(CudaDevice& device, const CudaActivationSpec& spec, const float* x,
                        const float* weight, const float* bias, float* z, float* y, int64_t rows,
                        int64_t in, int64_t out, CudaGemmInput input) {
  DPT_CHECK(rows >= 0 && in > 0 && out > 0)
      << "cuda_dense_forward: bad shape rows=" << rows << " in=" << in << " out=" << out;
  if (rows == 0) return;
  GemmShape shape;  // z[rows, out] = x[rows, in] W^T
  shape.trans_b = true;
  shape.m = rows, shape.n = out, shape.k = in;
  shape.lda = in, shape.ldb = in, shape.ldc = out;
  const bool fused = bias != nullptr &&
                     (spec.kind == CudaActivation::kIdentity || spec.kind == CudaActivation::kRelu);
  if (fused) {
    CudaGemmOptions options;
    options.input = input;
    options.bias = bias;
    options.relu = spec.kind == CudaActivation::kRelu;
    cuda_gemm(device, shape, 1.0f, x, weight, 0.0f, y, options);
    return;
  }
  CudaGemmOptions options;
  options.input = input;
  options.bias = bias;
  cuda_gemm(device, shape, 1.0f, x, weight, 0.0f, z, options);
  cuda_bias_activation_forward(device, spec, z, nullptr, y, rows, out);
}

void cuda_dense_backward(CudaDevice& device, const CudaActivationSpec& spec, const float* x,
                         const float* weight, const float* z, const float* y, const float* dy,
                         float* dz, float* grad_weight, float* grad_bias, float* dx, int64_t rows,
                         int64_t in, int64_t out, CudaGemmInput input) {
  DPT_CHECK(rows >= 0 && in > 0 && out > 0)
      << "cuda_dense_backward: bad shape rows=" << rows << " in=" << in << " out=" << out;
  if (rows == 0) return;
  // The fused forward wrote no z; its activations (identity, ReLU) need only y.
  const bool needs_z =
      spec.kind == CudaActivation::kLeakyRelu || spec.kind == CudaActivation::kGelu;
  cuda_activation_backward(device, spec, needs_z ? z : nullptr, y, dy, dz, rows * out);
  if (grad_bias != nullptr) cuda_bias_grad(device, dz, rows, out, grad_bias);
  GemmShape shape;  // grad_weight[out, in] += dz^T [out, rows] x [rows, in]
  shape.trans_a = true;
  shape.m = out, shape.n = in, shape.k = rows;
  shape.lda = out, shape.ldb = in, shape.ldc = in;
  CudaGemmOptions options;
  options.input = input;
  cuda_gemm(device, shape, 1.0f, dz, x, 1.0f, grad_weight, options);
  if (dx == nullptr) return;
  shape = GemmShape();  // dx[rows, in] = dz [rows, out] W [out, in]
  shape.m = rows, shape.n = in, shape.k = out;
  shape.lda = out, shape.ldb = in, shape.ldc = in;
  cuda_gemm(device, shape, 1.0f, dz, weight, 0.0f, dx, options);
}

}  // namespace dpt
