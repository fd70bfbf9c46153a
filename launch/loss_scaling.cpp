// LossScaling (launch/loss_scaling.h): the glue between the LossScaler, the trainer, checkpoints
// and the run's reports.
#include "launch/loss_scaling.h"

#include <fmt/core.h>

#include "devices/error.h"

namespace dpt {

LossScaling::LossScaling(const proto::Config& config, bool force) {
  if (!force && config.device().precision() != proto::FP16) return;
  scaler_.emplace(config.device().loss_scale());
  growth_interval_ = config.device().loss_scale().growth_interval();
  min_scale_ = config.device().loss_scale().min_scale();
  max_floor_skips_ = config.train().max_consecutive_skips();
}

void LossScaling::restore(bool resumed, const TrainState& state, TrainListener& listener) {
  if (!scaler_ || !resumed) return;
  if (!state.loss_scaler) {
    listener.on_note(fmt::format(
        "loss scaling starts fresh at scale {:g}: the checkpoint holds no loss scaler state "
        "(saved without fp16 loss scaling, or by an older dpt)",
        scaler_->scale()));
    return;
  }
  DPT_CHECK_AS(ErrorKind::kCheckpoint, state.loss_scaler->clean_steps < growth_interval_)
      << "device.loss_scale.growth_interval: " << growth_interval_
      << " cannot continue the checkpoint's loss scaler, which has counted "
      << state.loss_scaler->clean_steps << " clean steps; use a value above that";
  scaler_->restore(*state.loss_scaler);
  // A streak at the floor that ran up to the checkpoint goes on with the run's next step.
  floor_skips_ = state.loss_scale_floor_skips;
  last_skipped_ = floor_skips_ > 0 ? state.step - 1 : -2;
}

void LossScaling::save(TrainState& state) const {
  if (scaler_) {
    state.loss_scaler = scaler_->state();
    // The streak is alive only if it includes the last step done (state.step - 1).
    state.loss_scale_floor_skips = last_skipped_ == state.step - 1 ? floor_skips_ : 0;
  } else {
    state.loss_scaler.reset();
    state.loss_scale_floor_skips = 0;
  }
}

std::string LossScaling::skipped(int64_t step) {
  DPT_CHECK(scaler_) << "loss scaling: a skip reported without a loss scaler";
  const bool at_floor = scaler_->scale() <= min_scale_;
  floor_skips_ = at_floor ? (step == last_skipped_ + 1 ? floor_skips_ : 0) + 1 : 0;
  last_skipped_ = step;
  DPT_CHECK_AS(ErrorKind::kNonFinite, floor_skips_ <= max_floor_skips_)
      << "step " << step << ": gradients overflowed (inf/NaN) for " << floor_skips_
      << " steps in a row with the loss scale at device.loss_scale.min_scale " << min_scale_
      << " (train.max_consecutive_skips is " << max_floor_skips_
      << "); lower optimizer.lr or device.loss_scale.min_scale";
  // The first skip at the floor may have lowered the scale to it; later ones cannot.
  return fmt::format("fp16 gradients overflowed (inf/NaN); loss scale {} {:g} ({} skipped so far)",
                     floor_skips_ > 1 ? "held at its floor" : "lowered to", scaler_->scale(),
                     scaler_->skipped_steps());
}

void LossScaling::report(TrainProgress& progress) const {
  if (!scaler_) return;
  progress.loss_scale = scaler_->scale();
  progress.loss_scale_skipped = scaler_->skipped_steps();
}

void LossScaling::report(TrainSummary& summary) const {
  if (scaler_) summary.loss_scale_skipped = scaler_->skipped_steps();
}

}  // namespace dpt
