// The GPU kernels of dpt's ops behind a CUDA-free header, so that core/ and optim/ can run their
// layers, losses and optimizers on a CUDA device without including CUDA headers or using #ifdef:
// they branch on device.kind() == DeviceKind::kCuda and call these. Each takes the Device the
// pointers live on (a CudaDevice; anything else is an internal error) and forwards to the kernel
// of the same name in devices/cuda/cuda_ops.h (contracts there). devices/cuda/gpu_ops.cpp
// implements them with CUDA; devices/gpu_ops_none.cpp, in builds without CUDA, throws kConfig
// "this build has no CUDA support". All pointers are device pointers of `device`.
#pragma once

#include <cstdint>

#include "devices/device.h"
#include "devices/gemm_shape.h"

namespace dpt {

enum class GpuActivation { kIdentity, kRelu, kLeakyRelu, kGelu, kTanh, kSigmoid };

struct GpuActivationSpec {
  GpuActivation kind = GpuActivation::kIdentity;
  float negative_slope = 0.01f;  // leaky_relu only
};

// Number format of float32 GEMMs: exact float32, TF32 tensor cores (inputs rounded to a 10-bit
// mantissa), or inputs rounded to bf16 or IEEE fp16 (nearest even; fp16 beyond 65504 -> inf);
// float32 accumulation and output always.
enum class GpuMatmul { kFp32, kTf32, kBf16, kFp16 };

// Row-major C = alpha * op(A) * op(B) + beta * C (core/gemm.h's contract), through cuBLASLt.
void gpu_gemm(Device& device, const GemmShape& shape, float alpha, const float* a, const float* b,
              float beta, float* c, GpuMatmul precision);

// The 16-bit operand copies a Dense layer keeps in bf16 / fp16 GEMMs (cuda_ops.h CudaDense16):
// device buffers of the caller, W [out, in] and x [rows, in] as bf16 / fp16 bit patterns; null
// ones are rounded into scratch per call instead. Ignored in float32 and TF32.
struct GpuDense16 {
  uint16_t* weight = nullptr;
  bool weight_current = false;  // forward: `weight` already holds the current W rounded
  uint16_t* input = nullptr;    // written by forward, read by the backward that follows
};

// The Dense layer's forward (y = act(x W^T + b), z the pre-activation where backward needs it)
// and backward (adds into grad_weight and grad_bias, the bias gradient fused into the weight-
// gradient GEMM where cuBLASLt can; dx skipped when null), cuda_dense_*.
void gpu_dense_forward(Device& device, const GpuActivationSpec& spec, GpuMatmul precision,
                       const float* x, const float* weight, const float* bias, float* z, float* y,
                       int64_t rows, int64_t in, int64_t out, const GpuDense16& operands16 = {});
void gpu_dense_backward(Device& device, const GpuActivationSpec& spec, GpuMatmul precision,
                        const float* x, const float* weight, const float* z, const float* y,
                        const float* dy, float* dz, float* grad_weight, float* grad_bias, float* dx,
                        int64_t rows, int64_t in, int64_t out, const GpuDense16& operands16 = {});

// y = f(x + bias) over [rows, cols] (bias may be null; y may alias x), and dx = dy * f'(x).
void gpu_bias_activation_forward(Device& device, const GpuActivationSpec& spec, const float* x,
                                 const float* bias, float* y, int64_t rows, int64_t cols);
void gpu_activation_backward(Device& device, const GpuActivationSpec& spec, const float* x,
                             const float* y, const float* dy, float* dx, int64_t n);

// core/dropout.cpp's mask, bit for bit, and y = x * mask.
void gpu_dropout_mask(Device& device, float* mask, int64_t rows, int64_t cols, float rate,
                      uint64_t seed, int layer, int64_t step, int64_t sample_offset);
void gpu_multiply(Device& device, const float* x, const float* mask, float* y, int64_t n);

struct GpuLossSums {
  double loss_sum = 0.0;
  int64_t correct = 0;
};

// Softmax cross-entropy over logits [rows, cols] and int32 labels on the device; waits for the
// device. Throws kInternal naming the first sample whose label is outside [0, cols).
GpuLossSums gpu_softmax_cross_entropy(Device& device, const float* logits, const int32_t* labels,
                                      int64_t rows, int64_t cols, float* grad, double grad_scale);
// The same queued without waiting: per-sample losses (double) and hits (1 / 0, -1 for a label
// outside [0, cols)) into the device arrays losses[rows] and hits[rows], read back by the caller.
void gpu_softmax_cross_entropy_queued(Device& device, const float* logits, const int32_t* labels,
                                      int64_t rows, int64_t cols, float* grad, double grad_scale,
                                      double* losses, int32_t* hits);

// SGD (momentum_buffer null when momentum == 0) and Adam/AdamW over n floats of the flat buffer.
void gpu_sgd_step(Device& device, float* params, const float* grads, float* momentum_buffer,
                  int64_t n, float lr, float weight_decay, float momentum, bool nesterov);

// optim/adam.h's AdamCoefficients, field for field.
struct GpuAdamCoefficients {
  float l2 = 0, decay = 1;
  float beta1 = 0, one_minus_beta1 = 1, beta2 = 0, one_minus_beta2 = 1;
  float step_size = 0, bias2_sqrt = 1, eps = 1e-8f;
};
void gpu_adam_step(Device& device, float* params, const float* grads, float* m, float* v, int64_t n,
                   const GpuAdamCoefficients& c);

// Sum of x[i]^2 in double (global_norm's 4096-element chunks, added in order); waits.
double gpu_sum_squares(Device& device, const float* x, int64_t n);
// x[i] *= factor (gradient clipping).
void gpu_scale(Device& device, float* x, int64_t n, float factor);
// Whether any of x[0..n) is inf or NaN, before or after x[i] *= inv_scale (the loss scaler's
// unscale, cuda_unscale_and_check); waits.
bool gpu_unscale_and_check(Device& device, float* x, int64_t n, float inv_scale);
// dst[i] = src[i] rounded to bf16 (bf16 true) or IEEE fp16, nearest even (gradients reduced in
// 16 bits, comm.reduce_dtype), and back: dst[i] = src[i] widened to float32. Queued.
void gpu_round_to_16bit(Device& device, bool bf16, const float* src, uint16_t* dst, int64_t n);
void gpu_widen_16bit(Device& device, bool bf16, const uint16_t* src, float* dst, int64_t n);

}  // namespace dpt
