// Dynamic loss scaling for fp16 mixed precision, with PyTorch GradScaler's semantics: the loss
// (in practice the loss gradient) is multiplied by scale() before backward so small gradients do
// not flush to zero in fp16; after backward the gradients are multiplied by 1 / scale() and
// checked for inf/NaN. A step with inf/NaN is skipped (not applied, counted) and the scale is
// multiplied by backoff_factor, never below min_scale; after growth_interval clean steps in a
// row it is multiplied by growth_factor (only when the result is still a finite float).
// Device-independent: the unscale-and-check runs wherever the gradients live (unscale_and_check
// below: a loop on the CPU, cuda_unscale_and_check on a GPU). Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>

#include "core/config.pb.h"
#include "core/tensor.h"

namespace dpt {

// Everything a checkpoint must keep for a resumed run to scale exactly as an uninterrupted one.
struct LossScalerState {
  float scale = 65536.0f;     // the scale of the next step
  int64_t clean_steps = 0;    // clean steps in a row since the scale last changed
  int64_t skipped_steps = 0;  // steps skipped for inf/NaN gradients since the run began
};

class LossScaler {
 public:
  // Starts at config.init_scale(). Throws dpt::Error (kConfig) naming the device.loss_scale
  // field for a value outside its range (core/config.proto).
  explicit LossScaler(const proto::LossScaleConfig& config);

  float scale() const { return state_.scale; }
  int64_t skipped_steps() const { return state_.skipped_steps; }

  // One step's end: calls unscale_and_check(1 / scale()), which must multiply the gradients by
  // its argument and return whether any of them (before or after) is inf or NaN; then updates
  // the scale. Returns true when the optimizer should apply the step, false when it is skipped.
  bool unscale_and_update(const std::function<bool(float inv_scale)>& unscale_and_check);
  // The same over a float32 gradient tensor on any device (unscale_and_check below).
  bool unscale_and_update(Tensor& grads);
  // The scale update alone, for callers that checked the gradients themselves.
  bool update(bool found_inf);

  const LossScalerState& state() const { return state_; }
  // Resumes from a checkpoint's state. Throws dpt::Error (kCheckpoint) when it is impossible:
  // scale not finite or <= 0, a negative count, or clean_steps >= growth_interval.
  void restore(const LossScalerState& state);

 private:
  proto::LossScaleConfig config_;
  LossScalerState state_;
};

// grads[i] *= inv_scale over a float32 tensor (skipped when inv_scale == 1) on the CPU or a CUDA
// device; returns whether any value was inf or NaN before or after. Every value is scaled even
// when one is not finite (the step is skipped then, and the buffer is zeroed by the next step).
bool unscale_and_check(Tensor& grads, float inv_scale);

}  // namespace dpt
