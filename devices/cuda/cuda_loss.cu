// Softmax cross-entropy on the GPU: one thread per sample running core/loss.cpp's loop (max-
// shifted, exp and log in double), per-sample results copied back and added in sample order
// (cuda_softmax_cross_entropy), or left on the device for the caller to read back later
// (cuda_softmax_cross_entropy_queued: a step's micro-batches read back once,
// core/loss_accumulator).
#include <cuda_runtime.h>

#include <vector>

#include "devices/cuda/cuda_launch.h"
#include "devices/cuda/cuda_ops.h"
#include "devices/cuda/pool_block.h"
#include "devices/error.h"

namespace dpt {
namespace {

__device__ int64_t argmax(const float* row, int64_t cols) {
  int64_t best = 0;
  for (int64_t j = 1; j < cols; ++j) {
    if (row[j] > row[best]) best = j;
  }
  return best;
}

// hits[r] = -1 marks a label outside [0, cols); its loss and gradient row are left alone.
__global__ void softmax_cross_entropy_kernel(const float* logits, const int32_t* labels,
                                             int64_t rows, int64_t cols, float* grad, double scale,
                                             double* losses, int32_t* hits) {
  for (int64_t r = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; r < rows;
       r += int64_t{gridDim.x} * blockDim.x) {
    const int32_t label = labels[r];
    if (label < 0 || label >= cols) {
      hits[r] = -1;
      losses[r] = 0.0;
      continue;
    }
    const float* row = logits + r * cols;
    const int64_t best = argmax(row, cols);
    const float max = row[best];
    double sum = 0.0;
    for (int64_t j = 0; j < cols; ++j) sum += exp(static_cast<double>(row[j] - max));
    const double log_sum = log(sum);
    losses[r] = log_sum - static_cast<double>(row[label] - max);
    hits[r] = best == label ? 1 : 0;
    if (grad != nullptr) {
      float* grad_row = grad + r * cols;
      for (int64_t j = 0; j < cols; ++j) {
        const double p = exp(static_cast<double>(row[j] - max) - log_sum);
        grad_row[j] = static_cast<float>(scale * (p - (j == label ? 1.0 : 0.0)));
      }
    }
  }
}

}  // namespace

void cuda_softmax_cross_entropy_queued(CudaDevice& device, const float* logits,
                                       const int32_t* labels, int64_t rows, int64_t cols,
                                       float* grad, double grad_scale, double* losses,
                                       int32_t* hits) {
  DPT_CHECK(rows >= 0 && cols > 0)
      << "cuda_softmax_cross_entropy: bad shape [" << rows << ", " << cols << "]";
  if (rows == 0) return;
  softmax_cross_entropy_kernel<<<grid_for(rows), kThreads, 0, device.stream()>>>(
      logits, labels, rows, cols, grad, grad_scale, losses, hits);
  CUDA_CHECK_LAUNCH("softmax_cross_entropy_kernel");
}

CudaLossSums cuda_softmax_cross_entropy(CudaDevice& device, const float* logits,
                                        const int32_t* labels, int64_t rows, int64_t cols,
                                        float* grad, double grad_scale) {
  DPT_CHECK(rows >= 0 && cols > 0)
      << "cuda_softmax_cross_entropy: bad shape [" << rows << ", " << cols << "]";
  CudaLossSums sums;
  if (rows == 0) return sums;
  const std::size_t n = static_cast<std::size_t>(rows);
  PoolBlock losses(device, n * sizeof(double));
  PoolBlock hits(device, n * sizeof(int32_t));
  std::vector<double> host_losses(n);
  std::vector<int32_t> host_hits(n);
  cuda_softmax_cross_entropy_queued(device, logits, labels, rows, cols, grad, grad_scale,
                                    losses.as<double>(), hits.as<int32_t>());
  device.copy_to_host(host_losses.data(), losses.as<double>(), n * sizeof(double));
  device.copy_to_host(host_hits.data(), hits.as<int32_t>(), n * sizeof(int32_t));
  for (std::size_t r = 0; r < n; ++r) {
    DPT_CHECK(host_hits[r] >= 0) << "softmax cross-entropy: sample " << r
                                 << " has a label outside [0, " << cols << ")";
    sums.loss_sum += host_losses[r];
    sums.correct += host_hits[r];
  }
  return sums;
}

}  // namespace dpt
