// Console output of a training run: on a terminal one live progress line (epoch, step, loss,
// samples/s, ETA) redrawn in place, otherwise plain log lines every train.log_every_steps steps.
// Part of launch/, the only layer that prints.
#pragma once

#include <cstdio>

#include "launch/trainer.h"

namespace dpt {

class ConsoleListener : public TrainListener {
 public:
  // `live`: redraw one progress line (stderr is a terminal).
  explicit ConsoleListener(bool live) : live_(live) {}
  void on_start(const Model& model, int64_t total_steps, int64_t steps_per_epoch) override;
  void on_step(const TrainProgress& progress) override;
  void on_log(const TrainProgress& progress) override;
  void on_eval(const EvalResult& result) override;
  void on_skip(int64_t step, const std::string& reason) override;
  void on_checkpoint(const std::string& path, int64_t step) override;
  void on_note(const std::string& line) override;

 private:
  void end_live_line();
  bool live_;
  bool line_open_ = false;
  int64_t steps_per_epoch_ = 1;
  double last_draw_s_ = -1.0;
};

// "1m05s", "2h03m"
std::string format_duration(double seconds);

}  // namespace dpt
