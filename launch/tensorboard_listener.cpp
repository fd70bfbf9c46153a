// TensorBoardListener: maps training reports to tagged scalars in an EventFileWriter.
#include "launch/tensorboard_listener.h"

namespace dpt {

namespace {

// Runs before the writer exists, so the new file is not among those rewritten.
const std::string& trimmed(const std::string& dir, int64_t resume_step) {
  keep_events_up_to(dir, resume_step);
  return dir;
}

}  // namespace

TensorBoardListener::TensorBoardListener(const std::string& dir, int64_t resume_step)
    : writer_(trimmed(dir, resume_step)) {}

void TensorBoardListener::on_log(const TrainProgress& p) {
  const PhaseMs& t = p.time_ms;
  Scalars values = {{"train/loss", p.loss},           {"train/lr", p.lr},
                    {"train/grad_norm", p.grad_norm}, {"train/samples_per_s", p.samples_per_s},
                    {"time_ms/data", t.data},         {"time_ms/forward", t.forward},
                    {"time_ms/backward", t.backward}, {"time_ms/sync", t.sync},
                    {"time_ms/norm", t.norm},         {"time_ms/optimizer", t.optimizer}};
  if (p.loss_scale > 0) {  // fp16 loss scaling
    values.push_back({"train/loss_scale", p.loss_scale});
    values.push_back({"train/loss_scale_skipped", static_cast<double>(p.loss_scale_skipped)});
  }
  writer_.write_scalars(p.step, values);
}

void TensorBoardListener::on_eval(const EvalResult& r) {
  writer_.write_scalars(r.step, {{"eval/loss", r.loss}, {"eval/accuracy", r.accuracy}});
}

void TensorBoardListener::scalars(int64_t step, const Scalars& values) {
  writer_.write_scalars(step, values);
}

}  // namespace dpt
