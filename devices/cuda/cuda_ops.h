// The CUDA kernels of dpt's ops, on raw device pointers: GEMM through cuBLASLt (fp32, TF32, bf16
// or fp16 inputs with fp32 accumulation; fused bias, bias + ReLU and bias-gradient epilogues), the
// Dense layer's forward and backward over it (16-bit operands rounded once each), the 16-bit casts
// and the inf/NaN check behind fp16 loss scaling, bias + activation forward and backward, the bias
// gradient, dropout masks (bit-identical to the CPU's Philox masks), softmax cross-entropy with its
// gradient, SGD and Adam/AdamW updates fused over the flat parameter buffer, and the sum of squares
// behind the gradient norm. Each mirrors a CPU reference (core/gemm, core/activation, core/dropout,
// core/loss, optim/sgd, optim/adam, optim/optimizer global_norm); tests/gpu compares them.
// Everything is queued on the device's stream; functions returning host values wait for it.
// core/ and optim/ reach them through the CUDA-free devices/gpu_ops.h (devices/cuda/gpu_ops.cpp).
#pragma once

#include <cstdint>

#include "devices/cuda/cuda_device.h"
#include "devices/gemm_shape.h"

namespace dpt {

enum class CudaActivation { kIdentity, kRelu, kLeakyRelu, kGelu, kTanh, kSigmoid };

struct CudaActivationSpec {
  CudaActivation kind = CudaActivation::kIdentity;
  float negative_slope = 0.01f;  // leaky_relu only
};

// The number format A and B are multiplied in; accumulation, C, alpha, beta and the bias stay
// float32 in every mode (cuBLASLt CUBLAS_COMPUTE_32F, or _FAST_TF32 for kTf32).
enum class CudaGemmInput {
  kFp32,  // float32 inputs
  kTf32,  // TF32 tensor cores (inputs read with a 10-bit mantissa)
  kBf16,  // A and B rounded to bf16 (nearest even, as core/bf16.h) before the multiply
  kFp16,  // A and B rounded to IEEE fp16 (nearest even; beyond 65504 -> inf) before the multiply
};

struct CudaGemmOptions {
  bool tf32 = false;  // same as input = kTf32 (kept for existing callers)
  CudaGemmInput input = CudaGemmInput::kFp32;
  // When set, bias[j] is added to column j of C (n floats), and with `relu` C = max(C, 0) (relu
  // requires bias): fused into the GEMM by cuBLASLt's BIAS / RELU_BIAS epilogue where it has an
  // algorithm for the call, else one element-wise pass after it (which needs ldc == n). NaN: the
  // RELU_BIAS epilogue maps a NaN to 0 (undocumented; NVIDIA developer forum, "Incorrect result
  // of cublasLtMatmul with CUBLASLT_EPILOGUE_RELU when input is NaN"), while the element-wise
  // pass, like core/activation.cpp's ReLU, keeps it; +inf and -inf give inf and 0 either way.
  const float* bias = nullptr;
  bool relu = false;
  // kBf16 / kFp16 only: packed 16-bit copies of A and B (as stored, row stride = stored columns)
  // that the caller already has, e.g. a layer's cached 16-bit weights; when null, cuda_gemm
  // rounds the float32 operand into pool scratch first (one extra pass over it).
  const uint16_t* a16 = nullptr;
  const uint16_t* b16 = nullptr;
  // When set (m floats; not with `bias`): a_row_sums[i] = sum over p of op(A)[i, p], the bias
  // gradient of a weight-gradient GEMM (dW = dz^T x: column sums of dz), fused into the GEMM by
  // cuBLASLt's BGRADB epilogue (our A is its B, see cuda_gemm.cpp). WRITTEN, not added; float32;
  // summed from A as multiplied (the 16-bit copy in kBf16 / kFp16; in kTf32 perhaps the TF32
  // values the tensor cores read). Needs alpha = 1 (the sums are not scaled). Only when cuBLASLt
  // has an algorithm for it: cuda_gemm then returns true; otherwise it runs the GEMM without it,
  // leaves a_row_sums untouched and returns false (the caller sums itself, e.g. cuda_bias_grad).
  float* a_row_sums = nullptr;
};

// Row-major C = alpha * op(A) * op(B) + beta * C (+ bias, relu) on the device's stream through
// cuBLASLt. Returns whether options.a_row_sums was written (false when it is null). Throws
// dpt::Error on a bad shape (k <= 0, a stride smaller than its row), a cuBLASLt failure, or a
// bias that cuBLASLt cannot fuse with ldc != n (C not written then). m == 0 or n == 0 does
// nothing (and returns false).
bool cuda_gemm(CudaDevice& device, const GemmShape& shape, float alpha, const float* a,
               const float* b, float beta, float* c, const CudaGemmOptions& options = {});

// dst[r * cols + j] = round(src[r * ld + j]) for a [rows, cols] float32 matrix with row stride
// ld, to bf16 or fp16 bit patterns (type kBf16 or kFp16; round to nearest even as core/bf16.h,
// NaN stays NaN, fp16 overflow -> inf). dst is packed [rows, cols].
void cuda_round_to_16bit(CudaDevice& device, CudaGemmInput type, const float* src, int64_t rows,
                         int64_t cols, int64_t ld, uint16_t* dst);
// dst[i] = the float32 value of bf16 / fp16 src[i] (exact) for i < n.
void cuda_widen_16bit(CudaDevice& device, CudaGemmInput type, const uint16_t* src, float* dst,
                      int64_t n);
// Whether any of x[0..n) is inf or NaN (before, or after the scaling); when inv_scale != 1 also
// x[i] *= inv_scale (the loss scaler's unscale of the gradients, fused with its check as
// PyTorch's GradScaler does). Waits for the stream.
bool cuda_unscale_and_check(CudaDevice& device, float* x, int64_t n, float inv_scale = 1.0f);

// y[r, j] = f(x[r, j] + bias[j]) for a [rows, cols] matrix; bias may be null; y may alias x.
void cuda_bias_activation_forward(CudaDevice& device, const CudaActivationSpec& spec,
                                  const float* x, const float* bias, float* y, int64_t rows,
                                  int64_t cols);
// dx[i] = dy[i] * f'(x[i]), with y = f(x) (as core/activation.h); dx may alias dy.
void cuda_activation_backward(CudaDevice& device, const CudaActivationSpec& spec, const float* x,
                              const float* y, const float* dy, float* dx, int64_t n);
// grad_bias[j] += sum over r of dy[r, j] (adds, as Layer::backward does into parameter grads), in
// double, in a fixed order (the same bits on every run).
void cuda_bias_grad(CudaDevice& device, const float* dy, int64_t rows, int64_t cols,
                    float* grad_bias);
// y[i] += x[i] for i < n (a fused bias gradient, written by the GEMM, added into grad_bias).
void cuda_add(CudaDevice& device, const float* x, float* y, int64_t n);
// Whether this build holds code the current GPU can run (machine code for its architecture, or
// PTX its driver can compile): cudaSuccess, else the error the first launch would fail with
// (cudaErrorNoKernelImageForDevice, ...), the thread's last error cleared.
cudaError_t cuda_kernel_image_status();

// The 16-bit operands a Dense layer keeps between its GEMMs in kBf16 / kFp16 (ignored in float32
// and TF32): packed device buffers owned by the caller (core/dense.cpp: pool memory of the layer),
// so each is rounded once: W once per step, x once per forward (reused by the weight gradient).
// A null pointer means "none kept": the call rounds that operand into pool scratch itself.
struct CudaDense16 {
  uint16_t* weight = nullptr;   // W [out, in] in 16 bits
  bool weight_current = false;  // forward: `weight` already holds W rounded (skip rounding it)
  uint16_t* input = nullptr;    // x [rows, in]: forward writes it, backward reads it
};

// The Dense layer's forward on the GPU (core/dense.h: y = act(x W^T + b)); x [rows, in],
// W [out, in], b [out] or null, z and y [rows, out]. Identity and ReLU with a bias run as one
// cuBLASLt call with the BIAS / RELU_BIAS epilogue writing y (or, where cuBLASLt has no algorithm
// for it, the GEMM and one element-wise pass over y; z is not written, their backward needs only
// y); otherwise the GEMM (with the BIAS epilogue) writes the pre-activation z and one
// element-wise pass writes y. cuBLASLt's GELU epilogue is the tanh approximation, not the CPU's
// erf GELU, so it is not used.
// NaN: the fused ReLU gives 0 for a NaN pre-activation where the CPU layer gives NaN (cuda_gemm's
// `relu`). Training's non-finite guard (the loss and the gradient norm, launch/training_loop.cpp)
// still stops on a NaN or inf that reaches such a layer through its input x, or sits in its W
// when backward computes dx: the weight gradient dz^T x and dx = dz W (on into the earlier
// layers' gradients) multiply them by the zeroed dz, and 0 * NaN = 0 * inf = NaN
// (tests/gpu/cuda_dense_test.cpp checks both). It does not see a
// NaN in the bias, or in the W of a layer without dx (the model's first), which only a weights
// file or checkpoint can bring in (finite gradients keep parameters finite, barring overflow):
// the unit then reads 0; nor a NaN made inside the GEMM from finite x and W (inf - inf past
// float32's range); nor does evaluation, which has no backward: its loss stays finite where the
// CPU's is NaN.
// `input`: the number format of its GEMM (CudaGemmInput). In kBf16 / kFp16 it writes
// operands16.input (x rounded) and, unless weight_current, operands16.weight (W rounded; also
// when rows == 0, so the copy is always whole once forward has run).
void cuda_dense_forward(CudaDevice& device, const CudaActivationSpec& spec, const float* x,
                        const float* weight, const float* bias, float* z, float* y, int64_t rows,
                        int64_t in, int64_t out, CudaGemmInput input = CudaGemmInput::kFp32,
                        const CudaDense16& operands16 = {});
// Its backward, adding into the parameter gradients as Layer::backward does: dz = dy * act'(z)
// (dz [rows, out] scratch, may alias dy), grad_bias += column sums of dz (when not null),
// grad_weight += dz^T x, and dx = dz W when dx is not null. z, y: from cuda_dense_forward.
// In kBf16 / kFp16 dz is rounded once (pool scratch) for both GEMMs, and x and W are read from
// operands16 as the forward left them (they must still be x's and W's). The bias gradient is
// fused into the weight-gradient GEMM (cuda_gemm's a_row_sums: summed from the dz the GEMM
// multiplies, i.e. 16-bit dz in kBf16 / kFp16, then added into grad_bias); where cuBLASLt has no
// algorithm for that, cuda_bias_grad sums the float32 dz instead.
void cuda_dense_backward(CudaDevice& device, const CudaActivationSpec& spec, const float* x,
                         const float* weight, const float* z, const float* y, const float* dy,
                         float* dz, float* grad_weight, float* grad_bias, float* dx, int64_t rows,
                         int64_t in, int64_t out, CudaGemmInput input = CudaGemmInput::kFp32,
                         const CudaDense16& operands16 = {});

// The dropout mask of core/dropout.cpp: element (r, j) is 0 with probability `rate`, else
// 1 / (1 - rate), from Philox(seed; j / 4, sample, step, layer << 20 ^ sample >> 32) with
// sample = sample_offset + r. Bit-identical to the CPU's mask.
void cuda_dropout_mask(CudaDevice& device, float* mask, int64_t rows, int64_t cols, float rate,
                       uint64_t seed, int layer, int64_t step, int64_t sample_offset);
// y[i] = x[i] * mask[i]; y may alias x.
void cuda_multiply(CudaDevice& device, const float* x, const float* mask, float* y, int64_t n);

struct CudaLossSums {
  double loss_sum = 0.0;  // sum over rows of the per-sample loss
  int64_t correct = 0;    // rows whose argmax equals the label
};

// Softmax cross-entropy over logits [rows, cols] and device labels (int32) as core/loss.h: max-
// shifted, per-sample losses in double added in sample order on the host. grad (nullable) gets
// grad_scale * d(loss_sum)/d(logits). Waits for the stream; throws dpt::Error (kInternal) naming
// the first sample whose label is outside [0, cols).
CudaLossSums cuda_softmax_cross_entropy(CudaDevice& device, const float* logits,
                                        const int32_t* labels, int64_t rows, int64_t cols,
                                        float* grad, double grad_scale);
// Its kernel alone, queued without waiting: losses[r] (double) and hits[r] (1 when the argmax
// is the label, 0 when not, -1 for a label outside [0, cols): loss 0, grad row not written) in
// the caller's device arrays of `rows` elements, for the caller to read back and check later.
void cuda_softmax_cross_entropy_queued(CudaDevice& device, const float* logits,
                                       const int32_t* labels, int64_t rows, int64_t cols,
                                       float* grad, double grad_scale, double* losses,
                                       int32_t* hits);

// SGD as optim/sgd.h over n floats: g = grad + wd * p; with momentum buf = momentum * buf + g and
// g = buf (Nesterov: g + momentum * buf); p -= lr * g. buf is null when momentum == 0.
void cuda_sgd_step(CudaDevice& device, float* params, const float* grads, float* momentum_buffer,
                   int64_t n, float lr, float weight_decay, float momentum, bool nesterov);

// The per-step scalars of optim/adam.h (adam_coefficients computes them).
struct CudaAdamCoefficients {
  float l2 = 0;     // coupled weight decay added to the gradient (Adam)
  float decay = 1;  // p *= decay before the update (AdamW: 1 - lr * wd)
  float beta1 = 0, one_minus_beta1 = 1, beta2 = 0, one_minus_beta2 = 1;
  float step_size = 0;   // lr / (1 - beta1^t)
  float bias2_sqrt = 1;  // sqrt(1 - beta2^t)
  float eps = 1e-8f;
};

// One fused Adam/AdamW update of n floats (params, m, v in place).
void cuda_adam_step(CudaDevice& device, float* params, const float* grads, float* m, float* v,
                    int64_t n, const CudaAdamCoefficients& c);

// Sum of x[i]^2 over n floats, in double: per 4096-element chunk on the GPU, chunks added in order
// on the host (global_norm's chunking). Waits for the stream.
double cuda_sum_squares(CudaDevice& device, const float* x, int64_t n);
// x[i] *= factor over n floats (gradient clipping).
void cuda_scale(CudaDevice& device, float* x, int64_t n, float factor);

}  // namespace dpt
