// TrainStep: the gradient of the mean loss over the batch, accumulated over micro-batches (each
// micro-batch's loss gradient is scaled by 1 / batch).
#include "launch/train_step.h"

#include <chrono>

#include "core/loss.h"

namespace dpt {
namespace {

using Clock = std::chrono::steady_clock;

// Adds the seconds since `mark` to `total` and moves `mark` to now.
void lap(Clock::time_point& mark, double& total) {
  const auto now = Clock::now();
  total += std::chrono::duration<double>(now - mark).count();
  mark = now;
}

}  // namespace

TrainStep::TrainStep(Model& model, Optimizer& optimizer, const proto::Config& config)
    : model_(model),
      optimizer_(optimizer),
      loss_(config.model().loss()),
      micro_batch_(config.train().micro_batch_size() > 0 ? config.train().micro_batch_size()
                                                         : config.train().batch_size()),
      clip_norm_(config.optimizer().clip_grad_norm()),
      inputs_(model.device(), {micro_batch_, model.input_size()}, model.dtype()),
      labels_(static_cast<std::size_t>(micro_batch_)) {}

StepResult TrainStep::compute_gradients(int64_t step, int64_t batch, const BatchSource& source) {
  StepResult result;
  StepTimes& times = result.times;
  auto mark = Clock::now();
  model_.zero_grads();
  double loss_sum = 0.0;
  for (int64_t offset = 0; offset < batch; offset += micro_batch_) {
    const int64_t n = std::min(micro_batch_, batch - offset);
    source(offset, n, inputs_, labels_.data());
    lap(mark, times.data_s);
    const Tensor& logits = model_.forward(inputs_.rows(n), Pass{true, step, offset});
    lap(mark, times.forward_s);
    Tensor grad_logits =
        workspace(grad_logits_buffer_, model_.device(), logits.shape(), logits.dtype());
    loss_sum +=
        compute_loss(loss_, logits, labels_.data(), &grad_logits, 1.0 / static_cast<double>(batch))
            .loss_sum;
    model_.backward(grad_logits);
    lap(mark, times.backward_s);
  }
  result.loss = loss_sum / static_cast<double>(batch);
  result.grad_norm =
      clip_norm_ > 0 ? clip_grad_norm(model_.grads(), clip_norm_) : global_norm(model_.grads());
  lap(mark, times.norm_s);
  return result;
}

void TrainStep::apply(float lr, StepTimes& times) {
  auto mark = Clock::now();
  optimizer_.step(model_.params(), model_.grads(), lr);
  lap(mark, times.optimizer_s);
}

}  // namespace dpt
