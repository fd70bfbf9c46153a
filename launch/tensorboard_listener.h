// TensorBoardListener: writes a run's scalars as a TensorBoard event file, so that
// `tensorboard --logdir runs/` charts every run. on_log gives train/loss, train/lr,
// train/grad_norm, train/samples_per_s and the step's time split time_ms/<phase>; on_eval gives
// eval/loss and eval/accuracy; scalars() takes anything else (stragglers, power). Only rank 0
// should own one. The x axis is the optimizer step.
#pragma once

#include <cstdint>
#include <string>

#include "launch/event_file.h"
#include "launch/trainer.h"

namespace dpt {

class TensorBoardListener : public TrainListener {
 public:
  // Starts a new event file in `dir` (created when missing; throws kIo naming it). First the
  // earlier files there keep only their points up to resume_step (a run resumed from the
  // checkpoint at that step) or none (-1, a fresh run), as metrics.jsonl does. (Trimming the
  // files, unlike SessionLog restarts, works with TensorBoard's Rust loader too.)
  explicit TensorBoardListener(const std::string& dir, int64_t resume_step = -1);
  void on_log(const TrainProgress& progress) override;
  void on_eval(const EvalResult& result) override;
  // Writes `values` (tag, value) at `step`, e.g. {{"time/forward_s", 0.012}}. Throws kIo.
  void scalars(int64_t step, const Scalars& values);
  // The event file being written.
  const std::string& path() const { return writer_.path(); }

 private:
  EventFileWriter writer_;
};

}  // namespace dpt
