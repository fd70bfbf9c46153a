// The trainer's logging window: what it adds up over the steps since the last log line
// (train.log_every_steps), namely the mean loss of the applied updates, the samples and the phase
// times of every step, skipped ones included, and the wall time for throughput. Used by
// launch/training_run only; it prints and writes nothing.
#pragma once

#include <chrono>
#include <cstdint>

#include "launch/train_step.h"
#include "launch/trainer.h"

namespace dpt {

class LogWindow {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts an empty window at `start`.
  void restart(Clock::time_point start);
  // A step whose update was applied, with its loss.
  void add_update(double loss);
  // Every step, applied or skipped: its samples and phase times.
  void add_step(int64_t samples, const StepTimes& times);
  // Samples per second since the window started (0 when no time has passed).
  double samples_per_s() const;
  // For the log line: sets progress.loss to the window's mean over its applied updates (left as
  // it is when there were none) and progress.time_ms to the mean phase times per step.
  void summarize(TrainProgress& progress) const;

 private:
  Clock::time_point start_;
  double loss_ = 0.0;
  int64_t updates_ = 0;
  int64_t samples_ = 0;
  StepTimes times_;
  int64_t timed_steps_ = 0;  // steps in times_ (skipped ones included)
};

}  // namespace dpt
