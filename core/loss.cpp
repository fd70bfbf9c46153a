// Loss kernels. Per-sample losses are accumulated in double, in sample order, so the result is
// deterministic for any thread count. Logits on a CUDA device go to the GPU kernel
// (devices/gpu_ops.h) for softmax cross-entropy, through host memory for mean squared error.
#include "core/loss.h"

#include <cmath>
#include <vector>

#include "devices/error.h"
#include "devices/gpu_ops.h"

namespace dpt {
namespace {

template <typename T>
int64_t argmax(const T* row, int64_t cols) {
  int64_t best = 0;
  for (int64_t j = 1; j < cols; ++j) {
    if (row[j] > row[best]) best = j;
  }
  return best;
}

// Per-sample loss into losses[r]; gradient row when grad is not null.
template <typename T>
void softmax_cross_entropy(const T* logits, const int32_t* labels, int64_t rows, int64_t cols,
                           T* grad, double scale, double* losses, int64_t* hits) {
#pragma omp parallel for schedule(static) if (rows * cols > 16384)
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = logits + r * cols;
    const T max = row[argmax(row, cols)];
    double sum = 0.0;
    for (int64_t j = 0; j < cols; ++j) sum += std::exp(static_cast<double>(row[j] - max));
    const double log_sum = std::log(sum);
    const int32_t label = labels[r];
    losses[r] = log_sum - static_cast<double>(row[label] - max);
    hits[r] = argmax(row, cols) == label ? 1 : 0;
    if (grad != nullptr) {
      T* grad_row = grad + r * cols;
      for (int64_t j = 0; j < cols; ++j) {
        double p = std::exp(static_cast<double>(row[j] - max) - log_sum);
        grad_row[j] = static_cast<T>(scale * (p - (j == label ? 1.0 : 0.0)));
      }
    }
  }
}

template <typename T>
void mean_squared_error(const T* outputs, const int32_t* labels, int64_t rows, int64_t cols,
                        T* grad, double scale, double* losses, int64_t* hits) {
#pragma omp parallel for schedule(static) if (rows * cols > 16384)
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = outputs + r * cols;
    double sum = 0.0;
    for (int64_t j = 0; j < cols; ++j) {
      double diff = static_cast<double>(row[j]) - (j == labels[r] ? 1.0 : 0.0);
      sum += diff * diff;
      if (grad != nullptr) grad[r * cols + j] = static_cast<T>(scale * 2.0 * diff / cols);
    }
    losses[r] = sum / cols;
    hits[r] = argmax(row, cols) == labels[r] ? 1 : 0;
  }
}

template <typename T>
LossResult compute(proto::LossKind kind, const T* logits, const int32_t* labels, int64_t rows,
                   int64_t cols, T* grad, double scale) {
  std::vector<double> losses(static_cast<std::size_t>(rows));
  std::vector<int64_t> hits(static_cast<std::size_t>(rows));
  switch (kind) {
    case proto::SOFTMAX_CROSS_ENTROPY:
      softmax_cross_entropy(logits, labels, rows, cols, grad, scale, losses.data(), hits.data());
      break;
    case proto::MEAN_SQUARED_ERROR:
      mean_squared_error(logits, labels, rows, cols, grad, scale, losses.data(), hits.data());
      break;
  }
  LossResult result;
  for (int64_t r = 0; r < rows; ++r) {
    result.loss_sum += losses[r];
    result.correct += hits[r];
  }
  return result;
}

void check_labels(const int32_t* labels, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    DPT_CHECK(labels[r] >= 0 && labels[r] < cols)
        << "loss: label " << labels[r] << " of sample " << r << " is outside [0, " << cols << ")";
  }
}

void check_shapes(const Tensor& logits, const Tensor* grad_logits) {
  DPT_CHECK(logits.ndim() == 2) << "loss: logits " << shape_string(logits.shape())
                                << " must be [B, C]";
  if (grad_logits != nullptr) {
    DPT_CHECK(grad_logits->shape() == logits.shape() && grad_logits->dtype() == logits.dtype())
        << "loss: gradient " << shape_string(grad_logits->shape()) << " for logits "
        << shape_string(logits.shape());
    DPT_CHECK(grad_logits->device().kind() == logits.device().kind())
        << "loss: gradient on " << grad_logits->device().name() << ", logits on "
        << logits.device().name();
  }
}

// Logits and labels on one CUDA device. Softmax cross-entropy runs there; mean squared error has
// no GPU kernel and goes through host memory (copies of logits, labels and the gradient).
LossResult gpu_loss(proto::LossKind kind, const Tensor& logits, const Tensor& labels,
                    Tensor* grad_logits, double scale) {
  const int64_t rows = logits.dim(0), cols = logits.dim(1);
  float* grad = grad_logits != nullptr ? grad_logits->data<float>() : nullptr;
  if (kind == proto::SOFTMAX_CROSS_ENTROPY) {
    const GpuLossSums sums = gpu_softmax_cross_entropy(
        logits.device(), logits.data<float>(), labels.data<int32_t>(), rows, cols, grad, scale);
    return {sums.loss_sum, sums.correct};
  }
  std::vector<float> host_logits(static_cast<std::size_t>(logits.numel()));
  std::vector<int32_t> host_labels(static_cast<std::size_t>(rows));
  logits.copy_to_host(host_logits.data());
  labels.copy_to_host(host_labels.data());
  check_labels(host_labels.data(), rows, cols);
  std::vector<float> host_grad(grad != nullptr ? host_logits.size() : 0);
  const LossResult result = compute(kind, host_logits.data(), host_labels.data(), rows, cols,
                                    grad != nullptr ? host_grad.data() : nullptr, scale);
  if (grad != nullptr) grad_logits->copy_from_host(host_grad.data());
  return result;
}

}  // namespace

LossResult compute_loss(proto::LossKind kind, const Tensor& logits, const int32_t* labels,
                        Tensor* grad_logits, double grad_scale) {
  check_shapes(logits, grad_logits);
  const int64_t rows = logits.dim(0), cols = logits.dim(1);
  if (logits.device().kind() == DeviceKind::kCuda) {
    Tensor device_labels(logits.device(), {rows}, DType::kI32);
    device_labels.copy_from_host(labels);
    return gpu_loss(kind, logits, device_labels, grad_logits, grad_scale);
  }
  check_labels(labels, rows, cols);
  if (logits.dtype() == DType::kF32) {
    return compute(kind, logits.data<float>(), labels, rows, cols,
                   grad_logits ? grad_logits->data<float>() : nullptr, grad_scale);
  }
  return compute(kind, logits.data<double>(), labels, rows, cols,
                 grad_logits ? grad_logits->data<double>() : nullptr, grad_scale);
}

LossResult compute_loss(proto::LossKind kind, const Tensor& logits, const Tensor& labels,
                        Tensor* grad_logits, double grad_scale) {
  check_shapes(logits, grad_logits);
  DPT_CHECK(labels.dtype() == DType::kI32 && labels.numel() == logits.dim(0))
      << "loss: labels " << dtype_name(labels.dtype()) << shape_string(labels.shape())
      << " for logits " << shape_string(logits.shape()) << ", expected int32[" << logits.dim(0)
      << "]";
  if (logits.device().kind() == DeviceKind::kCuda && &labels.device() == &logits.device()) {
    return gpu_loss(kind, logits, labels, grad_logits, grad_scale);
  }
  if (labels.device().kind() == DeviceKind::kCpu) {
    return compute_loss(kind, logits, labels.data<int32_t>(), grad_logits, grad_scale);
  }
  std::vector<int32_t> host(static_cast<std::size_t>(labels.numel()));
  labels.copy_to_host(host.data());
  return compute_loss(kind, logits, host.data(), grad_logits, grad_scale);
}

}  // namespace dpt
