// Writes a known two-part run into DIR through TensorBoardListener, for read_events.py to check
// with TensorBoard's own reader: a fresh run logging steps 10, 20, 30 (and an eval and an extra
// scalar at 30), then a run resumed at step 20 logging 30 and 40. Keep the values in step with
// read_events.py. Usage: write_events DIR
#include <cstdio>
#include <string>

#include "devices/error.h"
#include "launch/tensorboard_listener.h"

namespace {

void log(dpt::TensorBoardListener& listener, int64_t step, double loss) {
  dpt::TrainProgress progress;
  progress.step = step;
  progress.loss = loss;
  progress.lr = 0.001 * static_cast<double>(step);
  progress.grad_norm = 0.5;
  progress.samples_per_s = 1000.0 + static_cast<double>(step);
  progress.time_ms = {0.25, 1.0, 2.0, 0.5, 0.125, 0.75};
  listener.on_log(progress);
}

void eval(dpt::TensorBoardListener& listener, int64_t step, double loss, double accuracy) {
  dpt::EvalResult result;
  result.step = step;
  result.loss = loss;
  result.accuracy = accuracy;
  listener.on_eval(result);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  try {
    {
      dpt::TensorBoardListener fresh(dir);
      log(fresh, 10, 1.5);
      log(fresh, 20, 1.25);
      log(fresh, 30, 1.0);
      eval(fresh, 30, 0.75, 0.5);
      fresh.scalars(30, {{"power/watts", 0.125}});
    }
    // Resumed from the checkpoint at step 20: its steps after 20 replace the first run's.
    dpt::TensorBoardListener resumed(dir, 20);
    log(resumed, 30, 0.875);
    log(resumed, 40, 0.5);
    eval(resumed, 40, 0.625, 0.75);
    resumed.scalars(30, {{"power/watts", 0.25}});
  } catch (const dpt::Error& e) {
    std::fprintf(stderr, "write_events: %s\n", e.what());
    return e.exit_code();
  }
  return 0;
}
