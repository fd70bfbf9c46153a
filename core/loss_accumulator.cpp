// LossAccumulator: deferred GPU softmax cross-entropy batches, summed on the host at total() in
// the order compute_loss would have summed them.
#include "core/loss_accumulator.h"

#include "devices/error.h"
#include "devices/gpu_ops.h"

namespace dpt {

void LossAccumulator::add(const Tensor& logits, const Tensor& labels, Tensor* grad_logits,
                          double grad_scale) {
  Batch batch;
  const bool deferred =
      kind_ == proto::SOFTMAX_CROSS_ENTROPY && logits.device().kind() == DeviceKind::kCuda &&
      &labels.device() == &logits.device() && logits.dtype() == DType::kF32 &&
      logits.shape().size() == 2 && logits.dim(0) > 0 && labels.dtype() == DType::kI32 &&
      labels.numel() == logits.dim(0) &&
      (grad_logits == nullptr ||
       (grad_logits->shape() == logits.shape() && &grad_logits->device() == &logits.device()));
  if (!deferred) {
    // compute_loss checks shapes and devices, and waits where it must.
    batch.done = compute_loss(kind_, logits, labels, grad_logits, grad_scale);
    batches_.push_back(std::move(batch));
    return;
  }
  const int64_t rows = logits.dim(0);
  batch.queued = true;
  batch.cols = logits.dim(1);
  batch.losses = Tensor(logits.device(), {rows}, DType::kF64);
  batch.hits = Tensor(logits.device(), {rows}, DType::kI32);
  gpu_softmax_cross_entropy_queued(logits.device(), logits.data<float>(), labels.data<int32_t>(),
                                   rows, batch.cols,
                                   grad_logits ? grad_logits->data<float>() : nullptr, grad_scale,
                                   batch.losses.data<double>(), batch.hits.data<int32_t>());
  batches_.push_back(std::move(batch));
}

LossResult LossAccumulator::total() {
  LossResult sum;
  std::vector<double> losses;
  std::vector<int32_t> hits;
  for (std::size_t b = 0; b < batches_.size(); ++b) {
    const Batch& batch = batches_[b];
    if (!batch.queued) {
      sum.loss_sum += batch.done.loss_sum;
      sum.correct += batch.done.correct;
      continue;
    }
    // The first copy waits for the device; the later ones find their batch done.
    losses.resize(static_cast<std::size_t>(batch.losses.numel()));
    hits.resize(losses.size());
    batch.losses.copy_to_host(losses.data());
    batch.hits.copy_to_host(hits.data());
    // As cuda_softmax_cross_entropy sums one batch, from 0 in sample order.
    LossResult one;
    for (std::size_t r = 0; r < losses.size(); ++r) {
      DPT_CHECK(hits[r] >= 0) << "softmax cross-entropy: sample " << r << " of batch " << b
                              << " has a label outside [0, " << batch.cols << ")";
      one.loss_sum += losses[r];
      one.correct += hits[r];
    }
    sum.loss_sum += one.loss_sum;
    sum.correct += one.correct;
  }
  return sum;
}

}  // namespace dpt
