// LossAccumulator: the loss sums of several batches on one device (a training step's micro-
// batches, an evaluation's batches) read back once, at total(). On a CUDA device softmax cross-
// entropy's per-sample losses stay on the device until then, so the host does not wait for the
// GPU after each batch's loss (it goes on queueing backward); everywhere else (the CPU, mean
// squared error) add() computes at once as compute_loss does. Who calls it: launch/train_step
// and launch/trainer's evaluate().
#pragma once

#include <cstdint>
#include <vector>

#include "core/config.pb.h"
#include "core/loss.h"
#include "core/tensor.h"

namespace dpt {

class LossAccumulator {
 public:
  explicit LossAccumulator(proto::LossKind kind) : kind_(kind) {}

  // One batch's loss, as compute_loss(kind, logits, labels, grad_logits, grad_scale): the
  // gradient is written (queued on a GPU) by the time this returns; the sums wait for total().
  // A label outside [0, C) throws here on the CPU, at total() for a deferred GPU batch.
  void add(const Tensor& logits, const Tensor& labels, Tensor* grad_logits, double grad_scale);

  // The sums over every batch added so far: each batch's samples in order, then the batches in
  // order, so bit for bit the sum of the compute_loss results. Waits for the device (once).
  // Throws kInternal naming the batch and sample of the first label outside [0, C).
  LossResult total();

 private:
  // A batch whose per-sample losses and hits (-1: bad label) are still on the device (queued),
  // or one computed at once (`done`).
  struct Batch {
    bool queued = false;
    LossResult done;
    Tensor losses;  // float64 [rows]
    Tensor hits;    // int32 [rows]
    int64_t cols = 0;
  };

  proto::LossKind kind_;
  std::vector<Batch> batches_;
};

}  // namespace dpt
