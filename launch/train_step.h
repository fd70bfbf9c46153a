// One optimizer step, shared by the trainer and `dpt bench step` so the benchmark times exactly
// the code that trains: micro-batches of forward + loss + backward accumulating into the flat
// gradient buffer, the global gradient norm (and clipping), then the optimizer update. Each phase
// is timed with a steady clock.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/config.pb.h"
#include "core/model.h"
#include "optim/optimizer.h"

namespace dpt {

// Fills inputs.rows(n) and labels[0..n) with samples [offset, offset + n) of the step's batch.
using BatchSource = std::function<void(int64_t offset, int64_t n, Tensor& inputs, int32_t* labels)>;

struct StepTimes {
  double data_s = 0, forward_s = 0, backward_s = 0, norm_s = 0, optimizer_s = 0;
  double total() const { return data_s + forward_s + backward_s + norm_s + optimizer_s; }
};

struct StepResult {
  double loss = 0.0;       // mean loss over the batch
  double grad_norm = 0.0;  // global L2 norm before clipping
  StepTimes times;
};

class TrainStep {
 public:
  TrainStep(Model& model, Optimizer& optimizer, const proto::Config& config);
  // Zeroes the gradients and accumulates those of `batch` samples in micro-batches; computes the
  // gradient norm and clips when configured. `step` keys dropout.
  StepResult compute_gradients(int64_t step, int64_t batch, const BatchSource& source);
  // Applies the optimizer with `lr`; adds its time to `times`.
  void apply(float lr, StepTimes& times);

 private:
  Model& model_;
  Optimizer& optimizer_;
  proto::LossKind loss_;
  int64_t micro_batch_;
  double clip_norm_;
  Tensor inputs_;
  Tensor grad_logits_buffer_;
  std::vector<int32_t> labels_;
};

}  // namespace dpt
