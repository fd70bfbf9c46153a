// Optimizer kernels over the flat parameter buffer: SGD (plain, momentum, Nesterov) and
// Adam/AdamW, each one fused grid-stride loop with optim/sgd.cpp's and optim/adam.cpp's loop
// bodies, the chunked sum of squares behind the global gradient norm, and gradient clipping's
// scaling.
#include <cuda_runtime.h>

#include <vector>

#include "devices/cuda/cuda_launch.h"
#include "devices/cuda/cuda_ops.h"
#include "devices/error.h"

namespace dpt {
namespace {

constexpr int64_t kNormChunk = 4096;  // optim/optimizer.cpp's chunk

__global__ void sgd_kernel(float* p, const float* g, float* buf, int64_t n, float lr, float wd,
                           float momentum, bool nesterov) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float d = g[i] + wd * p[i];
    if (buf == nullptr) {
      p[i] -= lr * d;
      continue;
    }
    const float b = momentum * buf[i] + d;
    buf[i] = b;
    p[i] -= lr * (nesterov ? d + momentum * b : b);
  }
}

__global__ void adam_kernel(float* p, const float* g, float* m, float* v, int64_t n,
                            CudaAdamCoefficients c) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float grad = g[i] + c.l2 * p[i];
    const float mi = c.beta1 * m[i] + c.one_minus_beta1 * grad;
    const float vi = c.beta2 * v[i] + c.one_minus_beta2 * grad * grad;
    m[i] = mi;
    v[i] = vi;
    const float denom = sqrtf(vi) / c.bias2_sqrt + c.eps;
    p[i] = p[i] * c.decay - c.step_size * (mi / denom);
  }
}

// One block per chunk: strided partial sums in double, then a shared-memory tree.
__global__ void sum_squares_kernel(const float* x, int64_t n, double* partial) {
  __shared__ double shared[kThreads];
  const int64_t begin = blockIdx.x * kNormChunk;
  const int64_t end = begin + kNormChunk < n ? begin + kNormChunk : n;
  double sum = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const double value = x[i];
    sum += value * value;
  }
  shared[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = shared[0];
}

__global__ void scale_kernel(float* x, int64_t n, float factor) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    x[i] *= factor;
  }
}

}  // namespace

void cuda_sgd_step(CudaDevice& device, float* params, const float* grads, float* momentum_buffer,
                   int64_t n, float lr, float weight_decay, float momentum, bool nesterov) {
  DPT_CHECK((momentum > 0) == (momentum_buffer != nullptr))
      << "cuda_sgd_step: a momentum buffer is needed exactly when momentum > 0";
  if (n <= 0) return;
  sgd_kernel<<<grid_for(n), kThreads, 0, device.stream()>>>(params, grads, momentum_buffer, n, lr,
                                                            weight_decay, momentum, nesterov);
  CUDA_CHECK_LAUNCH("sgd_kernel");
}

void cuda_adam_step(CudaDevice& device, float* params, const float* grads, float* m, float* v,
                    int64_t n, const CudaAdamCoefficients& c) {
  if (n <= 0) return;
  adam_kernel<<<grid_for(n), kThreads, 0, device.stream()>>>(params, grads, m, v, n, c);
  CUDA_CHECK_LAUNCH("adam_kernel");
}

double cuda_sum_squares(CudaDevice& device, const float* x, int64_t n) {
  if (n <= 0) return 0.0;
  const int64_t chunks = (n + kNormChunk - 1) / kNormChunk;
  DPT_CHECK(chunks <= int64_t{0x7fffffff}) << "cuda_sum_squares: " << n << " elements is too many";
  const std::size_t bytes = static_cast<std::size_t>(chunks) * sizeof(double);
  auto* partial = static_cast<double*>(device.allocate(bytes));
  std::vector<double> host(static_cast<std::size_t>(chunks));
  try {
    sum_squares_kernel<<<static_cast<unsigned>(chunks), kThreads, 0, device.stream()>>>(x, n,
                                                                                        partial);
    CUDA_CHECK_LAUNCH("sum_squares_kernel");
    device.copy_to_host(host.data(), partial, bytes);
  } catch (...) {
    device.deallocate(partial);
    throw;
  }
  device.deallocate(partial);
  double sum = 0.0;
  for (double chunk : host) sum += chunk;
  return sum;
}

void cuda_scale(CudaDevice& device, float* x, int64_t n, float factor) {
  if (n <= 0) return;
  scale_kernel<<<grid_for(n), kThreads, 0, device.stream()>>>(x, n, factor);
  CUDA_CHECK_LAUNCH("scale_kernel");
}

}  // namespace dpt
