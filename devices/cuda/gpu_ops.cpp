// devices/gpu_ops.h with CUDA: checks that the Device is a CudaDevice and forwards each call to
// its kernel in devices/cuda/cuda_ops.h, converting the CUDA-free enums and structs.
#include "devices/gpu_ops.h"

#include "devices/cuda/cuda_ops.h"
#include "devices/error.h"

namespace dpt {
namespace {

// dynamic_cast, not the kind: a Device that only claims to be CUDA (a test double) must fail
// cleanly, not be used as a CudaDevice. Makes the device current: the caller may be a thread that
// never selected it (the gradient sync's, converting buckets to 16 bits), and a kernel launched
// into another device's stream fails.
CudaDevice& as_cuda(Device& device, const char* op) {
  auto* cuda = dynamic_cast<CudaDevice*>(&device);
  DPT_CHECK(cuda != nullptr) << op << ": device " << device.name() << " is not a CUDA device";
  cuda->make_current();
  return *cuda;
}

CudaActivationSpec cuda_spec(const GpuActivationSpec& spec) {
  CudaActivationSpec result;
  result.negative_slope = spec.negative_slope;
  switch (spec.kind) {
    case GpuActivation::kIdentity:
      result.kind = CudaActivation::kIdentity;
      break;
    case GpuActivation::kRelu:
      result.kind = CudaActivation::kRelu;
      break;
    case GpuActivation::kLeakyRelu:
      result.kind = CudaActivation::kLeakyRelu;
      break;
    case GpuActivation::kGelu:
      result.kind = CudaActivation::kGelu;
      break;
    case GpuActivation::kTanh:
      result.kind = CudaActivation::kTanh;
      break;
    case GpuActivation::kSigmoid:
      result.kind = CudaActivation::kSigmoid;
      break;
  }
  return result;
}

CudaGemmInput gemm_input(GpuMatmul precision) {
  switch (precision) {
    case GpuMatmul::kTf32:
      return CudaGemmInput::kTf32;
    case GpuMatmul::kBf16:
      return CudaGemmInput::kBf16;
    case GpuMatmul::kFp16:
      return CudaGemmInput::kFp16;
    case GpuMatmul::kFp32:
      break;
  }
  return CudaGemmInput::kFp32;
}

CudaDense16 cuda_operands(const GpuDense16& operands16) {
  CudaDense16 result;
  result.weight = operands16.weight;
  result.weight_current = operands16.weight_current;
  result.input = operands16.input;
  return result;
}

}  // namespace

void gpu_gemm(Device& device, const GemmShape& shape, float alpha, const float* a, const float* b,
              float beta, float* c, GpuMatmul precision) {
  CudaGemmOptions options;
  options.input = gemm_input(precision);
  cuda_gemm(as_cuda(device, "gemm"), shape, alpha, a, b, beta, c, options);
}

void gpu_dense_forward(Device& device, const GpuActivationSpec& spec, GpuMatmul precision,
                       const float* x, const float* weight, const float* bias, float* z, float* y,
                       int64_t rows, int64_t in, int64_t out, const GpuDense16& operands16) {
  cuda_dense_forward(as_cuda(device, "dense forward"), cuda_spec(spec), x, weight, bias, z, y, rows,
                     in, out, gemm_input(precision), cuda_operands(operands16));
}

void gpu_dense_backward(Device& device, const GpuActivationSpec& spec, GpuMatmul precision,
                        const float* x, const float* weight, const float* z, const float* y,
                        const float* dy, float* dz, float* grad_weight, float* grad_bias, float* dx,
                        int64_t rows, int64_t in, int64_t out, const GpuDense16& operands16) {
  cuda_dense_backward(as_cuda(device, "dense backward"), cuda_spec(spec), x, weight, z, y, dy, dz,
                      grad_weight, grad_bias, dx, rows, in, out, gemm_input(precision),
                      cuda_operands(operands16));
}

void gpu_bias_activation_forward(Device& device, const GpuActivationSpec& spec, const float* x,
                                 const float* bias, float* y, int64_t rows, int64_t cols) {
  cuda_bias_activation_forward(as_cuda(device, "activation forward"), cuda_spec(spec), x, bias, y,
                               rows, cols);
}

void gpu_activation_backward(Device& device, const GpuActivationSpec& spec, const float* x,
                             const float* y, const float* dy, float* dx, int64_t n) {
  cuda_activation_backward(as_cuda(device, "activation backward"), cuda_spec(spec), x, y, dy, dx,
                           n);
}

void gpu_dropout_mask(Device& device, float* mask, int64_t rows, int64_t cols, float rate,
                      uint64_t seed, int layer, int64_t step, int64_t sample_offset) {
  cuda_dropout_mask(as_cuda(device, "dropout"), mask, rows, cols, rate, seed, layer, step,
                    sample_offset);
}

void gpu_multiply(Device& device, const float* x, const float* mask, float* y, int64_t n) {
  cuda_multiply(as_cuda(device, "multiply"), x, mask, y, n);
}

GpuLossSums gpu_softmax_cross_entropy(Device& device, const float* logits, const int32_t* labels,
                                      int64_t rows, int64_t cols, float* grad, double grad_scale) {
  const CudaLossSums sums = cuda_softmax_cross_entropy(
      as_cuda(device, "softmax cross-entropy"), logits, labels, rows, cols, grad, grad_scale);
  GpuLossSums result;
  result.loss_sum = sums.loss_sum;
  result.correct = sums.correct;
  return result;
}

void gpu_softmax_cross_entropy_queued(Device& device, const float* logits, const int32_t* labels,
                                      int64_t rows, int64_t cols, float* grad, double grad_scale,
                                      double* losses, int32_t* hits) {
  cuda_softmax_cross_entropy_queued(as_cuda(device, "softmax cross-entropy"), logits, labels, rows,
                                    cols, grad, grad_scale, losses, hits);
}

void gpu_sgd_step(Device& device, float* params, const float* grads, float* momentum_buffer,
                  int64_t n, float lr, float weight_decay, float momentum, bool nesterov) {
  cuda_sgd_step(as_cuda(device, "sgd"), params, grads, momentum_buffer, n, lr, weight_decay,
                momentum, nesterov);
}

void gpu_adam_step(Device& device, float* params, const float* grads, float* m, float* v, int64_t n,
                   const GpuAdamCoefficients& c) {
  CudaAdamCoefficients cuda;
  cuda.l2 = c.l2;
  cuda.decay = c.decay;
  cuda.beta1 = c.beta1;
  cuda.one_minus_beta1 = c.one_minus_beta1;
  cuda.beta2 = c.beta2;
  cuda.one_minus_beta2 = c.one_minus_beta2;
  cuda.step_size = c.step_size;
  cuda.bias2_sqrt = c.bias2_sqrt;
  cuda.eps = c.eps;
  cuda_adam_step(as_cuda(device, "adam"), params, grads, m, v, n, cuda);
}

double gpu_sum_squares(Device& device, const float* x, int64_t n) {
  return cuda_sum_squares(as_cuda(device, "sum of squares"), x, n);
}

void gpu_scale(Device& device, float* x, int64_t n, float factor) {
  cuda_scale(as_cuda(device, "scale"), x, n, factor);
}

bool gpu_unscale_and_check(Device& device, float* x, int64_t n, float inv_scale) {
  return cuda_unscale_and_check(as_cuda(device, "unscale and check"), x, n, inv_scale);
}

void gpu_round_to_16bit(Device& device, bool bf16, const float* src, uint16_t* dst, int64_t n) {
  cuda_round_to_16bit(as_cuda(device, "round to 16 bits"),
                      bf16 ? CudaGemmInput::kBf16 : CudaGemmInput::kFp16, src, 1, n, n, dst);
}

void gpu_widen_16bit(Device& device, bool bf16, const uint16_t* src, float* dst, int64_t n) {
  cuda_widen_16bit(as_cuda(device, "widen 16 bits"),
                   bf16 ? CudaGemmInput::kBf16 : CudaGemmInput::kFp16, src, dst, n);
}

}  // namespace dpt
