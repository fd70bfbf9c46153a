// Loss kernels. Per-sample losses are accumulated in double, in sample order, so the result is
// deterministic for any thread count.
#include "core/loss.h"

#include <cmath>
#include <vector>

#include "devices/error.h"

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
LossResult compute(proto::LossKind kind, const Tensor& logits, const int32_t* labels,
                   Tensor* grad_logits, double scale) {
  const int64_t rows = logits.dim(0), cols = logits.dim(1);
  T* grad = grad_logits ? grad_logits->data<T>() : nullptr;
  std::vector<double> losses(static_cast<std::size_t>(rows));
  std::vector<int64_t> hits(static_cast<std::size_t>(rows));
  switch (kind) {
    case proto::SOFTMAX_CROSS_ENTROPY:
      softmax_cross_entropy(logits.data<T>(), labels, rows, cols, grad, scale, losses.data(),
                            hits.data());
      break;
    case proto::MEAN_SQUARED_ERROR:
      mean_squared_error(logits.data<T>(), labels, rows, cols, grad, scale, losses.data(),
                         hits.data());
      break;
  }
  LossResult result;
  for (int64_t r = 0; r < rows; ++r) {
    result.loss_sum += losses[r];
    result.correct += hits[r];
  }
  return result;
}

}  // namespace

LossResult compute_loss(proto::LossKind kind, const Tensor& logits, const int32_t* labels,
                        Tensor* grad_logits, double grad_scale) {
  DPT_CHECK(logits.ndim() == 2) << "loss: logits " << shape_string(logits.shape())
                                << " must be [B, C]";
  const int64_t rows = logits.dim(0), cols = logits.dim(1);
  for (int64_t r = 0; r < rows; ++r) {
    DPT_CHECK(labels[r] >= 0 && labels[r] < cols)
        << "loss: label " << labels[r] << " of sample " << r << " is outside [0, " << cols << ")";
  }
  if (grad_logits != nullptr) {
    DPT_CHECK(grad_logits->shape() == logits.shape() && grad_logits->dtype() == logits.dtype())
        << "loss: gradient " << shape_string(grad_logits->shape()) << " for logits "
        << shape_string(logits.shape());
  }
  if (logits.dtype() == DType::kF32) {
    return compute<float>(kind, logits, labels, grad_logits, grad_scale);
  }
  return compute<double>(kind, logits, labels, grad_logits, grad_scale);
}

}  // namespace dpt
