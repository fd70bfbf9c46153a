// Element-wise CUDA kernels: bias + activation forward, activation backward, bias gradient,
// dropout, and y += x (a fused bias gradient added into the gradients). Each loop body is the CPU
// reference's expression (core/activation.cpp, core/dropout.cpp) in a grid-stride loop.
#include <cuda_runtime.h>

#include "devices/cuda/cuda_launch.h"
#include "devices/cuda/cuda_ops.h"
#include "devices/error.h"

namespace dpt {
namespace {

__device__ float activate(CudaActivation kind, float slope, float x) {
  switch (kind) {
    case CudaActivation::kIdentity:
      return x;
    case CudaActivation::kRelu:
      return x < 0.0f ? 0.0f : x;
    case CudaActivation::kLeakyRelu:
      return x < 0.0f ? slope * x : x;
    case CudaActivation::kGelu:
      return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case CudaActivation::kTanh:
      return tanhf(x);
    case CudaActivation::kSigmoid:
      return 1.0f / (1.0f + expf(-x));
  }
  return x;
}

// f'(x) * dy, from x and y = f(x) as core/activation.cpp's backward_impl.
__device__ float activation_grad(CudaActivation kind, float slope, float x, float y, float dy) {
  switch (kind) {
    case CudaActivation::kIdentity:
      return dy;
    case CudaActivation::kRelu:
      return y > 0.0f ? dy : 0.0f;
    case CudaActivation::kLeakyRelu:
      return x > 0.0f ? dy : slope * dy;
    case CudaActivation::kGelu: {
      const float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
      const float pdf = expf(-0.5f * x * x) * 0.3989422804014327f;
      return dy * (cdf + x * pdf);
    }
    case CudaActivation::kTanh:
      return dy * (1.0f - y * y);
    case CudaActivation::kSigmoid:
      return dy * y * (1.0f - y);
  }
  return dy;
}

__global__ void bias_activation_kernel(CudaActivation kind, float slope, const float* x,
                                       const float* bias, float* y, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float v = bias != nullptr ? x[i] + bias[i % cols] : x[i];
    y[i] = activate(kind, slope, v);
  }
}

__global__ void activation_backward_kernel(CudaActivation kind, float slope, const float* x,
                                           const float* y, const float* dy, float* dx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    dx[i] =
        activation_grad(kind, slope, x != nullptr ? x[i] : 0.0f, y != nullptr ? y[i] : 0.0f, dy[i]);
  }
}

// Column sums in double: a block takes 32 columns (a warp reads 32 neighbouring floats of a row)
// with 8 lanes of rows each (lane y sums rows y, y + 8, ... in order), then lane 0 adds the 8
// lane sums in order: a fixed order, so the result is the same on every run, and enough blocks
// for wide layers (cols / 32) while a narrow one (the output layer) still splits its rows 8 ways.
constexpr int kBiasColumns = 32, kBiasLanes = 8;
__global__ void bias_grad_kernel(const float* dy, int64_t rows, int64_t cols, float* grad_bias) {
  __shared__ double lanes[kBiasLanes][kBiasColumns];
  const int64_t j = blockIdx.x * int64_t{kBiasColumns} + threadIdx.x;
  double sum = 0.0;
  if (j < cols) {
    for (int64_t r = threadIdx.y; r < rows; r += kBiasLanes) sum += dy[r * cols + j];
  }
  lanes[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y != 0 || j >= cols) return;
  for (int lane = 1; lane < kBiasLanes; ++lane) sum += lanes[lane][threadIdx.x];
  grad_bias[j] += static_cast<float>(sum);
}

// Philox4x32-10 exactly as core/random.cpp.
__device__ void philox4x32(uint64_t key, uint32_t c[4]) {
  uint32_t k0 = static_cast<uint32_t>(key);
  uint32_t k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = __umulhi(0xD2511F53u, c[0]), lo0 = 0xD2511F53u * c[0];
    const uint32_t hi1 = __umulhi(0xCD9E8D57u, c[2]), lo1 = 0xCD9E8D57u * c[2];
    const uint32_t next0 = hi1 ^ c[1] ^ k0, next2 = hi0 ^ c[3] ^ k1;
    c[0] = next0;
    c[1] = lo1;
    c[2] = next2;
    c[3] = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

// One thread per (row, group of 4 features): one Philox block gives the group's four uniforms.
__global__ void dropout_mask_kernel(float* mask, int64_t rows, int64_t cols, float rate,
                                    float scale, uint64_t seed, uint32_t layer, uint32_t step,
                                    int64_t sample_offset) {
  const int64_t groups = (cols + 3) / 4;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < rows * groups;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / groups, j0 = (i % groups) * 4;
    const uint64_t sample = static_cast<uint64_t>(sample_offset + r);
    uint32_t words[4] = {static_cast<uint32_t>(j0 / 4), static_cast<uint32_t>(sample), step,
                         (layer << 20) ^ static_cast<uint32_t>(sample >> 32)};
    philox4x32(seed, words);
    for (int64_t j = j0; j < cols && j < j0 + 4; ++j) {
      const float uniform = static_cast<float>(words[j - j0] >> 8) * 0x1.0p-24f;
      mask[r * cols + j] = uniform < rate ? 0.0f : scale;
    }
  }
}

__global__ void multiply_kernel(const float* x, const float* mask, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    y[i] = x[i] * mask[i];
  }
}

__global__ void add_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    y[i] += x[i];
  }
}

}  // namespace

void cuda_bias_activation_forward(CudaDevice& device, const CudaActivationSpec& spec,
                                  const float* x, const float* bias, float* y, int64_t rows,
                                  int64_t cols) {
  DPT_CHECK(rows >= 0 && cols >= 0) << "cuda_bias_activation_forward: bad shape";
  if (rows * cols == 0) return;
  bias_activation_kernel<<<grid_for(rows * cols), kThreads, 0, device.stream()>>>(
      spec.kind, spec.negative_slope, x, bias, y, rows, cols);
  CUDA_CHECK_LAUNCH("bias_activation_kernel");
}

void cuda_activation_backward(CudaDevice& device, const CudaActivationSpec& spec, const float* x,
                              const float* y, const float* dy, float* dx, int64_t n) {
  if (n <= 0) return;
  activation_backward_kernel<<<grid_for(n), kThreads, 0, device.stream()>>>(
      spec.kind, spec.negative_slope, x, y, dy, dx, n);
  CUDA_CHECK_LAUNCH("activation_backward_kernel");
}

void cuda_bias_grad(CudaDevice& device, const float* dy, int64_t rows, int64_t cols,
                    float* grad_bias) {
  if (cols <= 0) return;
  // One block per 32 columns (cols < 2^31 * 32 here: a Dense layer's width).
  const dim3 block(kBiasColumns, kBiasLanes);
  const auto blocks = static_cast<unsigned>((cols + kBiasColumns - 1) / kBiasColumns);
  bias_grad_kernel<<<blocks, block, 0, device.stream()>>>(dy, rows, cols, grad_bias);
  CUDA_CHECK_LAUNCH("bias_grad_kernel");
}

void cuda_dropout_mask(CudaDevice& device, float* mask, int64_t rows, int64_t cols, float rate,
                       uint64_t seed, int layer, int64_t step, int64_t sample_offset) {
  DPT_CHECK(rate >= 0.0f && rate < 1.0f) << "cuda_dropout_mask: rate " << rate << " not in [0, 1)";
  if (rows * cols <= 0) return;
  const float scale = 1.0f / (1.0f - rate);
  dropout_mask_kernel<<<grid_for(rows * ((cols + 3) / 4)), kThreads, 0, device.stream()>>>(
      mask, rows, cols, rate, scale, seed, static_cast<uint32_t>(layer),
      static_cast<uint32_t>(step), sample_offset);
  CUDA_CHECK_LAUNCH("dropout_mask_kernel");
}

void cuda_multiply(CudaDevice& device, const float* x, const float* mask, float* y, int64_t n) {
  if (n <= 0) return;
  multiply_kernel<<<grid_for(n), kThreads, 0, device.stream()>>>(x, mask, y, n);
  CUDA_CHECK_LAUNCH("multiply_kernel");
}

cudaError_t cuda_kernel_image_status() {
  cudaFuncAttributes attributes{};
  return cuda_clear_error(cudaFuncGetAttributes(&attributes, add_kernel));
}

void cuda_add(CudaDevice& device, const float* x, float* y, int64_t n) {
  if (n <= 0) return;
  add_kernel<<<grid_for(n), kThreads, 0, device.stream()>>>(x, y, n);
  CUDA_CHECK_LAUNCH("add_kernel");
}

}  // namespace dpt
