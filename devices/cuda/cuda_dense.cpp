// The Dense layer's GPU path: its three GEMMs through cuda_gemm (forward with a fused bias or
// bias + ReLU epilogue where cuBLASLt has one, the weight gradient with the bias gradient fused
// where cuBLASLt has BGRADB) and the element-wise kernels around them, in the order core/dense.cpp
// runs them on the CPU. In bf16 / fp16 each operand is rounded once: W and x in forward into the
// caller's buffers (CudaDense16; W only when it changed), dz once in backward for both GEMMs.
#include <cstdint>
#include <memory>

#include "devices/cuda/cuda_ops.h"
#include "devices/cuda/pool_block.h"
#include "devices/error.h"

namespace dpt {
namespace {

bool is_16bit(CudaGemmInput input) {
  return input == CudaGemmInput::kBf16 || input == CudaGemmInput::kFp16;
}

}  // namespace

void cuda_dense_forward(CudaDevice& device, const CudaActivationSpec& spec, const float* x,
                        const float* weight, const float* bias, float* z, float* y, int64_t rows,
                        int64_t in, int64_t out, CudaGemmInput input,
                        const CudaDense16& operands16) {
  DPT_CHECK(rows >= 0 && in > 0 && out > 0)
      << "cuda_dense_forward: bad shape rows=" << rows << " in=" << in << " out=" << out;
  CudaGemmOptions options;
  options.input = input;
  if (is_16bit(input)) {
    // W first, even for an empty batch: a later forward told weight_current reads this copy.
    if (operands16.weight != nullptr && !operands16.weight_current) {
      cuda_round_to_16bit(device, input, weight, out, in, in, operands16.weight);
    }
    options.b16 = operands16.weight;  // null: cuda_gemm rounds W into scratch
    if (rows > 0 && operands16.input != nullptr) {
      cuda_round_to_16bit(device, input, x, rows, in, in, operands16.input);
      options.a16 = operands16.input;
    }
  }
  if (rows == 0) return;
  GemmShape shape;  // z[rows, out] = x[rows, in] W^T
  shape.trans_b = true;
  shape.m = rows, shape.n = out, shape.k = in;
  shape.lda = in, shape.ldb = in, shape.ldc = out;
  // cuBLASLt's bias epilogues may pick kernels that read the bias 16 bytes at a time; a bias in
  // the flat parameter buffer is only float-aligned when out * in is not a multiple of 4, and then
  // goes to the element-wise pass instead.
  const bool bias_epilogue = bias != nullptr && reinterpret_cast<uintptr_t>(bias) % 16 == 0;
  const bool fused = bias_epilogue &&
                     (spec.kind == CudaActivation::kIdentity || spec.kind == CudaActivation::kRelu);
  options.bias = bias_epilogue ? bias : nullptr;
  if (fused) {
    options.relu = spec.kind == CudaActivation::kRelu;
    cuda_gemm(device, shape, 1.0f, x, weight, 0.0f, y, options);
    return;
  }
  cuda_gemm(device, shape, 1.0f, x, weight, 0.0f, z, options);
  cuda_bias_activation_forward(device, spec, z, bias_epilogue ? nullptr : bias, y, rows, out);
}

void cuda_dense_backward(CudaDevice& device, const CudaActivationSpec& spec, const float* x,
                         const float* weight, const float* z, const float* y, const float* dy,
                         float* dz, float* grad_weight, float* grad_bias, float* dx, int64_t rows,
                         int64_t in, int64_t out, CudaGemmInput input,
                         const CudaDense16& operands16) {
  DPT_CHECK(rows >= 0 && in > 0 && out > 0)
      << "cuda_dense_backward: bad shape rows=" << rows << " in=" << in << " out=" << out;
  if (rows == 0) return;
  // The fused forward wrote no z; its activations (identity, ReLU) need only y.
  const bool needs_z =
      spec.kind == CudaActivation::kLeakyRelu || spec.kind == CudaActivation::kGelu;
  cuda_activation_backward(device, spec, needs_z ? z : nullptr, y, dy, dz, rows * out);

  // Both backward GEMMs multiply dz (our A in each): rounded once, here. x (the weight
  // gradient's B) and W (dx's B) are the forward's copies; null ones are rounded into scratch.
  CudaGemmOptions weight_options, input_options;
  weight_options.input = input_options.input = input;
  std::unique_ptr<PoolBlock> dz16;
  if (is_16bit(input)) {
    dz16 = std::make_unique<PoolBlock>(device, static_cast<std::size_t>(rows * out) * 2);
    cuda_round_to_16bit(device, input, dz, rows, out, out, dz16->as<uint16_t>());
    weight_options.a16 = input_options.a16 = dz16->as<uint16_t>();
    weight_options.b16 = operands16.input;
    input_options.b16 = operands16.weight;
  }
  // The epilogue writes the bias gradient; the contract adds into grad_bias (accumulation over
  // micro-batches), so it goes to scratch first and is added after.
  std::unique_ptr<PoolBlock> bias_sums;
  if (grad_bias != nullptr) {
    bias_sums = std::make_unique<PoolBlock>(device, static_cast<std::size_t>(out) * sizeof(float));
  }
  GemmShape shape;  // grad_weight[out, in] += dz^T [out, rows] x [rows, in]
  shape.trans_a = true;
  shape.m = out, shape.n = in, shape.k = rows;
  shape.lda = out, shape.ldb = in, shape.ldc = in;
  weight_options.a_row_sums = bias_sums ? bias_sums->as<float>() : nullptr;
  const bool fused_bias = cuda_gemm(device, shape, 1.0f, dz, x, 1.0f, grad_weight, weight_options);
  if (grad_bias != nullptr) {
    if (fused_bias) {
      cuda_add(device, bias_sums->as<float>(), grad_bias, out);
    } else {
      cuda_bias_grad(device, dz, rows, out, grad_bias);
    }
  }
  if (dx == nullptr) return;
  shape = GemmShape();  // dx[rows, in] = dz [rows, out] W [out, in]
  shape.m = rows, shape.n = in, shape.k = out;
  shape.lda = out, shape.ldb = in, shape.ldc = in;
  cuda_gemm(device, shape, 1.0f, dz, weight, 0.0f, dx, input_options);
}

}  // namespace dpt
