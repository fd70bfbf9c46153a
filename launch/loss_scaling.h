// fp16 dynamic loss scaling, the trainer's side: whether a run scales its loss (device.precision
// FP16, or TrainOptions::loss_scaling in tests), the LossScaler the training step uses
// (launch/train_step.h), its state in checkpoints and on resume, and what it reports: one line
// per skipped step with the new scale, and the scale and skip count in every metrics record.
//
// A skipped step (inf/NaN gradients after the cross-rank sum) applies no optimizer update, so the
// optimizer's own step counter (Adam's bias correction) does not advance; the training step
// counter, the data cursor and the LR schedule (a function of the step counter) do, as with
// PyTorch's GradScaler, whose skipped optimizer.step() leaves the scheduler running.
#pragma once

#include <optional>
#include <string>

#include "core/config.pb.h"
#include "launch/checkpoint.h"
#include "launch/trainer.h"
#include "optim/loss_scaler.h"

namespace dpt {

class LossScaling {
 public:
  // On when config.device.precision is FP16 (config_validate allows it only with kind CUDA) or
  // when `force`. Throws kConfig naming the device.loss_scale field that is out of range.
  LossScaling(const proto::Config& config, bool force);

  // The step's scaler; null when loss scaling is off.
  LossScaler* scaler() { return scaler_ ? &*scaler_ : nullptr; }
  const LossScaler* scaler() const { return scaler_ ? &*scaler_ : nullptr; }

  // After resume_training: takes the checkpoint's scaler state when it has one. A checkpoint
  // without (saved by a run without loss scaling, or by an older dpt) starts the scaler fresh at
  // device.loss_scale.init_scale, with a note to `listener`; a state the current
  // device.loss_scale cannot continue throws kCheckpoint naming the field. A streak of overflows
  // at min_scale that ran up to the checkpoint (state.loss_scale_floor_skips) continues, so a
  // resumed run stops at the same step as an uninterrupted one.
  void restore(bool resumed, const TrainState& state, TrainListener& listener);
  // Writes the scaler's state and the floor streak ending at step state.step - 1 into a
  // checkpoint's `state` (state.step must be set first; nothing when off).
  void save(TrainState& state) const;

  // Records that the scaler skipped step `step`; returns the listener's line: "fp16 gradients
  // overflowed (inf/NaN); loss scale lowered to 32768 (3 skipped so far)". Throws kNonFinite
  // once more than train.max_consecutive_skips steps in a row overflowed with the scale at
  // device.loss_scale.min_scale (no scale helps then: the gradients are inf/NaN on their own).
  std::string skipped(int64_t step);
  // Sets progress.loss_scale and progress.loss_scale_skipped (left 0 when off).
  void report(TrainProgress& progress) const;
  // Sets summary.loss_scale_skipped.
  void report(TrainSummary& summary) const;

 private:
  std::optional<LossScaler> scaler_;
  int64_t growth_interval_ = 0;
  float min_scale_ = 0;
  int64_t max_floor_skips_ = 0;
  int64_t last_skipped_ = -2;  // the last step skipped
  int64_t floor_skips_ = 0;    // steps in a row up to it skipped with the scale at min_scale
};

}  // namespace dpt
