// devices/gpu_ops.h for builds without CUDA (DPT_WITH_CUDA=OFF): there is never a CUDA device to
// run on, so every op throws kConfig naming itself (reached only through a bug or a hand-made
// Device claiming to be CUDA).
#include "devices/error.h"
#include "devices/gpu_ops.h"

namespace dpt {
namespace {

[[noreturn]] void no_cuda(const char* op) {
  DPT_THROW(ErrorKind::kConfig) << op << ": this build has no CUDA support (DPT_WITH_CUDA=OFF)";
}

}  // namespace

void gpu_gemm(Device&, const GemmShape&, float, const float*, const float*, float, float*,
              GpuMatmul) {
  no_cuda("gemm");
}

void gpu_dense_forward(Device&, const GpuActivationSpec&, GpuMatmul, const float*, const float*,
                       const float*, float*, float*, int64_t, int64_t, int64_t, const GpuDense16&) {
  no_cuda("dense forward");
}

void gpu_dense_backward(Device&, const GpuActivationSpec&, GpuMatmul, const float*, const float*,
                        const float*, const float*, const float*, float*, float*, float*, float*,
                        int64_t, int64_t, int64_t, const GpuDense16&) {
  no_cuda("dense backward");
}

void gpu_bias_activation_forward(Device&, const GpuActivationSpec&, const float*, const float*,
                                 float*, int64_t, int64_t) {
  no_cuda("activation forward");
}

void gpu_activation_backward(Device&, const GpuActivationSpec&, const float*, const float*,
                             const float*, float*, int64_t) {
  no_cuda("activation backward");
}

void gpu_dropout_mask(Device&, float*, int64_t, int64_t, float, uint64_t, int, int64_t, int64_t) {
  no_cuda("dropout");
}

void gpu_multiply(Device&, const float*, const float*, float*, int64_t) { no_cuda("multiply"); }

GpuLossSums gpu_softmax_cross_entropy(Device&, const float*, const int32_t*, int64_t, int64_t,
                                      float*, double) {
  no_cuda("softmax cross-entropy");
}

void gpu_softmax_cross_entropy_queued(Device&, const float*, const int32_t*, int64_t, int64_t,
                                      float*, double, double*, int32_t*) {
  no_cuda("softmax cross-entropy");
}

void gpu_sgd_step(Device&, float*, const float*, float*, int64_t, float, float, float, bool) {
  no_cuda("sgd");
}

void gpu_adam_step(Device&, float*, const float*, float*, float*, int64_t,
                   const GpuAdamCoefficients&) {
  no_cuda("adam");
}

double gpu_sum_squares(Device&, const float*, int64_t) { no_cuda("sum of squares"); }

void gpu_scale(Device&, float*, int64_t, float) { no_cuda("scale"); }

bool gpu_unscale_and_check(Device&, float*, int64_t, float) { no_cuda("unscale and check"); }

void gpu_round_to_16bit(Device&, bool, const float*, uint16_t*, int64_t) {
  no_cuda("round to 16 bits");
}

void gpu_widen_16bit(Device&, bool, const uint16_t*, float*, int64_t) { no_cuda("widen 16 bits"); }

}  // namespace dpt
