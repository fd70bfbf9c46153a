// LossScaler (optim/loss_scaler.h): the scale update of PyTorch's _amp_update_scale_, with a
// floor; and the unscale-and-check of a gradient tensor on the CPU or a CUDA device.
#include "optim/loss_scaler.h"

#include <algorithm>
#include <cmath>

#include "devices/error.h"
#include "devices/gpu_ops.h"

namespace dpt {

LossScaler::LossScaler(const proto::LossScaleConfig& config) : config_(config) {
  auto finite_positive = [](float v) { return std::isfinite(v) && v > 0.0f; };
  DPT_CHECK_AS(ErrorKind::kConfig, finite_positive(config.min_scale()))
      << "device.loss_scale.min_scale: must be > 0 (got " << config.min_scale() << ")";
  DPT_CHECK_AS(ErrorKind::kConfig,
               finite_positive(config.init_scale()) && config.init_scale() >= config.min_scale())
      << "device.loss_scale.init_scale: must be > 0 and >= min_scale " << config.min_scale()
      << " (got " << config.init_scale() << ")";
  DPT_CHECK_AS(ErrorKind::kConfig,
               std::isfinite(config.growth_factor()) && config.growth_factor() > 1.0f)
      << "device.loss_scale.growth_factor: must be > 1 (got " << config.growth_factor() << ")";
  DPT_CHECK_AS(ErrorKind::kConfig, config.backoff_factor() > 0.0f && config.backoff_factor() < 1.0f)
      << "device.loss_scale.backoff_factor: must be in (0, 1) (got " << config.backoff_factor()
      << ")";
  DPT_CHECK_AS(ErrorKind::kConfig, config.growth_interval() > 0)
      << "device.loss_scale.growth_interval: must be > 0 (got " << config.growth_interval() << ")";
  state_.scale = config.init_scale();
}

bool LossScaler::unscale_and_update(const std::function<bool(float inv_scale)>& unscale_and_check) {
  return update(unscale_and_check(1.0f / state_.scale));
}

bool LossScaler::unscale_and_update(Tensor& grads) {
  return update(unscale_and_check(grads, 1.0f / state_.scale));
}

bool unscale_and_check(Tensor& grads, float inv_scale) {
  DPT_CHECK(grads.defined() && grads.dtype() == DType::kF32)
      << "unscale_and_check: grads must be a float32 tensor";
  float* x = grads.data<float>();
  const int64_t n = grads.numel();
  if (grads.device().kind() == DeviceKind::kCuda) {
    return gpu_unscale_and_check(grads.device(), x, n, inv_scale);
  }
  const bool scale = inv_scale != 1.0f;
  int found = 0;
#pragma omp parallel for schedule(static) reduction(| : found)
  for (int64_t i = 0; i < n; ++i) {
    const float before = x[i];
    const float after = scale ? before * inv_scale : before;
    x[i] = after;
    found |= (std::isfinite(before) && std::isfinite(after)) ? 0 : 1;
  }
  return found != 0;
}

bool LossScaler::update(bool found_inf) {
  if (found_inf) {
    state_.scale = std::max(state_.scale * config_.backoff_factor(), config_.min_scale());
    state_.clean_steps = 0;
    ++state_.skipped_steps;
    return false;
  }
  if (++state_.clean_steps == config_.growth_interval()) {
    const float grown = state_.scale * config_.growth_factor();
    if (std::isfinite(grown)) state_.scale = grown;
    state_.clean_steps = 0;
  }
  return true;
}

void LossScaler::restore(const LossScalerState& state) {
  DPT_CHECK_AS(ErrorKind::kCheckpoint, std::isfinite(state.scale) && state.scale > 0.0f)
      << "loss scaler state: scale " << state.scale << " is not a finite positive number";
  DPT_CHECK_AS(ErrorKind::kCheckpoint, state.clean_steps >= 0 &&
                                           state.clean_steps < config_.growth_interval() &&
                                           state.skipped_steps >= 0)
      << "loss scaler state: clean_steps " << state.clean_steps << " (growth_interval "
      << config_.growth_interval() << ") or skipped_steps " << state.skipped_steps
      << " out of range";
  state_ = state;
}

}  // namespace dpt
