// ConsoleListener: everything a training run prints.
#include "launch/console.h"

#include <fmt/core.h>

namespace dpt {

std::string format_duration(double seconds) {
  if (!(seconds >= 0)) return "?";
  const auto total = static_cast<int64_t>(seconds + 0.5);
  if (total >= 3600) return fmt::format("{}h{:02}m", total / 3600, total % 3600 / 60);
  if (total >= 60) return fmt::format("{}m{:02}s", total / 60, total % 60);
  return fmt::format("{}s", total);
}

void ConsoleListener::on_start(const Model& model, int64_t total_steps, int64_t steps_per_epoch) {
  steps_per_epoch_ = steps_per_epoch > 0 ? steps_per_epoch : 1;
  fmt::print(stderr, "model: {} ({} parameters)\n", model.summary(), model.num_params());
  fmt::print(stderr, "training: {} steps, {} per epoch\n", total_steps, steps_per_epoch);
}

void ConsoleListener::on_step(const TrainProgress& p) {
  if (!live_) return;
  // Redraw at most 10 times a second, and always on the last step.
  if (p.elapsed_s - last_draw_s_ < 0.1 && p.step != p.total_steps) return;
  last_draw_s_ = p.elapsed_s;
  const double eta = p.step > 0 ? p.elapsed_s / p.step * (p.total_steps - p.step) : -1;
  fmt::print(stderr, "\r\033[Kepoch {} step {}/{} loss {:.4f} lr {:.3g} {:.0f} samples/s ETA {}",
             p.epoch + 1, p.step, p.total_steps, p.loss, p.lr, p.samples_per_s,
             format_duration(eta));
  line_open_ = true;
}

void ConsoleListener::on_log(const TrainProgress& p) {
  if (live_) return;
  fmt::print(stderr,
             "epoch {} step {}/{} loss {:.4f} lr {:.4g} grad_norm {:.3g} {:.0f} samples/s{}\n",
             p.epoch + 1, p.step, p.total_steps, p.loss, p.lr, p.grad_norm, p.samples_per_s,
             p.loss_scale > 0
                 ? fmt::format(" loss_scale {:g} ({} skipped)", p.loss_scale, p.loss_scale_skipped)
                 : "");
}

void ConsoleListener::on_eval(const EvalResult& r) {
  end_live_line();
  fmt::print(stderr, "eval epoch {} step {}: test_loss {:.4f} test_accuracy {:.4f}\n", r.epoch + 1,
             r.step, r.loss, r.accuracy);
}

void ConsoleListener::on_skip(int64_t step, const std::string& reason) {
  end_live_line();
  fmt::print(stderr, "warning: step {} skipped: {}\n", step, reason);
}

void ConsoleListener::on_checkpoint(const std::string& path, int64_t step) {
  end_live_line();
  fmt::print(stderr, "checkpoint: step {} saved to {}\n", step, path);
}

void ConsoleListener::on_note(const std::string& line) {
  end_live_line();
  fmt::print(stderr, "{}\n", line);
}

void ConsoleListener::end_live_line() {
  if (line_open_) fmt::print(stderr, "\n");
  line_open_ = false;
}

}  // namespace dpt
