// LogWindow: sums over the steps since the last log line, means when the line is written.
#include "launch/log_window.h"

namespace dpt {
namespace {

PhaseMs mean_ms(const StepTimes& total, int64_t steps) {
  const double scale = steps > 0 ? 1e3 / static_cast<double>(steps) : 0.0;
  return {total.data_s * scale, total.forward_s * scale, total.backward_s * scale,
          total.sync_s * scale, total.norm_s * scale,    total.optimizer_s * scale};
}

}  // namespace

void LogWindow::restart(Clock::time_point start) {
  start_ = start;
  loss_ = 0.0;
  updates_ = samples_ = 0;
  times_ = StepTimes();
  timed_steps_ = 0;
}

void LogWindow::add_update(double loss) {
  loss_ += loss;
  ++updates_;
}

void LogWindow::add_step(int64_t samples, const StepTimes& times) {
  samples_ += samples;
  times_.add(times);
  ++timed_steps_;
}

double LogWindow::samples_per_s() const {
  const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  return seconds > 0 ? samples_ / seconds : 0.0;
}

void LogWindow::summarize(TrainProgress& progress) const {
  if (updates_ > 0) progress.loss = loss_ / updates_;
  progress.time_ms = mean_ms(times_, timed_steps_);
}

}  // namespace dpt
