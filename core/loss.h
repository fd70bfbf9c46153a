// Losses over logits [B, C] and integer labels: softmax cross-entropy (softmax and loss fused,
// computed from max-shifted logits so large values cannot overflow) and mean squared error
// against one-hot targets. One call gives the loss, the count of correct argmax predictions, and
// optionally the gradient.
#pragma once

#include <cstdint>

#include "core/config.pb.h"
#include "core/tensor.h"

namespace dpt {

struct LossResult {
  double loss_sum = 0.0;  // sum over the B samples of the per-sample loss
  int64_t correct = 0;    // samples whose argmax equals the label
};

// Labels must lie in [0, C) (checked: an internal error names the sample). When grad_logits is
// not null it receives grad_scale * d(loss_sum)/d(logits); the trainer passes 1 / global batch so
// that gradients summed over micro-batches and workers are the gradient of the mean loss.
// grad_logits lives on the logits' device. `labels`: B int32 values in host memory (copied to the
// device first when the logits are on a GPU). On a CUDA device the logits are float32.
LossResult compute_loss(proto::LossKind kind, const Tensor& logits, const int32_t* labels,
                        Tensor* grad_logits, double grad_scale);
// The same with the labels as an int32 tensor of B elements on any device; on the logits' CUDA
// device nothing is copied (the kernel checks the labels and waits for the device).
LossResult compute_loss(proto::LossKind kind, const Tensor& logits, const Tensor& labels,
                        Tensor* grad_logits, double grad_scale);

}  // namespace dpt
