// TrainingRun's loop: epochs in their data order, one step after another with the next batch
// prefetched, the non-finite guard, the LR schedule, balance and straggler windows, the log
// lines, evaluation and the saves due. Set-up and the end of the run are training_run.cpp.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>

#include "devices/error.h"
#include "launch/device_transfer.h"
#include "launch/fault_injection.h"
#include "launch/training_run.h"
#include "optim/lr_schedule.h"

namespace dpt {
namespace {

// Runs `body`; a communication error gets "<what> <step>: " in front ("step 41: all_reduce #87
// timed out"), so the user learns what the job was doing when a peer went missing. The label is
// built only on that path: this wraps every step.
template <typename Body>
auto in_context(const char* what, int64_t step, Body body) -> decltype(body()) {
  try {
    return body();
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kComm) throw;
    throw Error(e.kind(), std::string(what) + " " + std::to_string(step) + ": " + e.what());
  }
}

}  // namespace

TrainSummary TrainingRun::run() {
  summary_.first_step = cursor_.step;
  summary_.skipped_steps = cursor_.skipped_steps;
  start_ = Clock::now();
  window_.restart(start_);
  consecutive_skips_ = cursor_.consecutive_skips;
  stragglers_.emplace(comm_, comm_.size() > 1 ? config_.monitor().straggler_every_steps() : 0,
                      config_.monitor().straggler_threshold());
  step_ = cursor_.step;
  last_saved_ = resumed_ ? cursor_.step : -1;
  for (int64_t epoch = cursor_.epoch; epoch < config_.train().epochs() && step_ < total_steps_;
       ++epoch) {
    if (!run_epoch(epoch)) return summary_;
  }
  finish();
  return summary_;
}

bool TrainingRun::run_epoch(int64_t epoch) {
  const std::vector<int64_t> order =
      next_order_.empty() ? epoch_order(config_, train_set_.size, epoch) : std::move(next_order_);
  next_order_.clear();
  const int64_t first_s = epoch == cursor_.epoch ? cursor_.step_in_epoch : 0;
  for (int64_t s = first_s; s < steps_per_epoch_ && step_ < total_steps_; ++s) {
    if (!run_step(epoch, s, order)) return false;
  }
  end_epoch(epoch);
  return true;
}

// Step `s` of epoch `epoch`, the run's step `step_`, on rows s * batch_ onwards of `order`.
bool TrainingRun::run_step(int64_t epoch, int64_t s, const std::vector<int64_t>& order) {
  const int64_t first = s * batch_;
  const int64_t this_batch = std::min(batch_, train_set_.size - first);
  const auto step_start = Clock::now();
  if (trace_ && config_.trace().max_steps() > 0 &&
      step_ - summary_.first_step >= config_.trace().max_steps()) {
    trace_->stop();
  }
  TraceSpan step_span(trace_.get(), "step", trace_ ? "step " + std::to_string(step_) : "");
  maybe_inject_fault(config_.fault_injection(), comm_.rank(), step_, options_.stop_requested);
  const bool stop_here = options_.stop_requested && options_.stop_requested();
  const Shard shard = balancer_->shard(this_batch, comm_.rank());
  const std::optional<NextBatch> next = next_batch(epoch, s, order);
  StepResult result = in_context("step", step_, [&] {
    return train_step_->compute_gradients(step_, this_batch, shard, rows_from(order.data() + first),
                                          stop_here, next ? &*next : nullptr);
  });
  const double lr =
      lr_at(config_.optimizer().schedule(), config_.optimizer().lr(), step_, schedule_steps_);
  update(result, epoch, lr);
  window_.add_step(this_batch, result.times);
  ++step_;
  const double step_s = seconds_since(step_start);
  record_balance(result, shard);
  record_stragglers(step_s, result);
  const bool epoch_end = s + 1 == steps_per_epoch_;
  cursor_.epoch = epoch_end ? epoch + 1 : epoch;
  cursor_.step_in_epoch = epoch_end ? 0 : s + 1;
  report(result, epoch, lr);
  if (result.stop) {
    stop();
    return false;
  }
  // Saves due at an epoch's end wait for its evaluation.
  const int64_t every = config_.checkpoint().every_steps();
  if (!epoch_end && every > 0 && step_ % every == 0) save();
  return true;
}

// The batch whose row i is training sample rows[i], gathered and normalised.
BatchSource TrainingRun::rows_from(const int64_t* rows) const {
  return [this, rows](int64_t row, int64_t n, Tensor& inputs, int32_t* labels) {
    gather_batch(train_set_, rows + row, n, normalization_, inputs, labels);
  };
}

// The next step's batch, loaded while this one computes (if the balancer moves its shard, the
// loader loads the rows asked for then); none after the run's last step. At an epoch's end it
// is the next epoch's first batch, whose order is kept in next_order_.
std::optional<NextBatch> TrainingRun::next_batch(int64_t epoch, int64_t s,
                                                 const std::vector<int64_t>& order) {
  const bool wraps = s + 1 == steps_per_epoch_;
  if (step_ + 1 >= total_steps_ || (wraps && epoch + 1 >= config_.train().epochs())) {
    return std::nullopt;
  }
  if (wraps) next_order_ = epoch_order(config_, train_set_.size, epoch + 1);
  const int64_t next_first = wraps ? 0 : s * batch_ + batch_;
  const int64_t* next_rows = (wraps ? next_order_ : order).data() + next_first;
  return NextBatch{step_ + 1,
                   balancer_->shard(std::min(batch_, train_set_.size - next_first), comm_.rank()),
                   rows_from(next_rows)};
}

// Applies the step's update, or skips the step: a loss or gradient norm that is not finite
// (an error unless train.on_non_finite is SKIP), or fp16 gradients that overflowed.
void TrainingRun::update(StepResult& result, int64_t epoch, double lr) {
  const proto::TrainConfig& train = config_.train();
  // A non-finite loss is the guard's even with loss scaling: no scale can fix it.
  if (!std::isfinite(result.loss) || (!result.overflow && !std::isfinite(result.grad_norm))) {
    const std::string what = !std::isfinite(result.loss)
                                 ? "training loss is " + std::to_string(result.loss)
                                 : "gradient norm is " + std::to_string(result.grad_norm);
    DPT_CHECK_AS(ErrorKind::kNonFinite, train.on_non_finite() == proto::SKIP)
        << "step " << step_ << " (epoch " << epoch << "): " << what
        << "; lower optimizer.lr, set optimizer.clip_grad_norm, or set "
           "train.on_non_finite: SKIP";
    ++summary_.skipped_steps;
    DPT_CHECK_AS(ErrorKind::kNonFinite, ++consecutive_skips_ <= train.max_consecutive_skips())
        << "step " << step_ << " (epoch " << epoch << "): " << what << " for " << consecutive_skips_
        << " steps in a row (train.max_consecutive_skips is " << train.max_consecutive_skips()
        << ")";
    listener_.on_skip(step_, what);
  } else if (result.overflow) {
    listener_.on_skip(step_, loss_scaling_->skipped(step_));
  } else {
    consecutive_skips_ = 0;
    train_step_->apply(static_cast<float>(lr), result.times);
    if (options_.after_update) options_.after_update(model_->params());
    window_.add_update(result.loss);
    summary_.final_loss = result.loss;
  }
}

// With comm.balance, the steps where the ranks decide new shares (a collective then).
void TrainingRun::record_balance(const StepResult& result, Shard shard) {
  if (std::optional<BalanceDecision> decision = in_context("balance after step", step_, [&] {
        return balancer_->record(comm_, step_, per_sample_seconds(result.times),
                                 shard.end - shard.begin);
      })) {
    if (metrics_) metrics_->write_balance(*decision);
    listener_.on_note(describe(*decision));
  }
}

// Every monitor.straggler_every_steps steps with more than one worker: the per-rank window (a
// collective then), and a note when one rank holds the others up.
void TrainingRun::record_stragglers(double step_s, const StepResult& result) {
  std::optional<RankWindow> ranks = in_context("straggler report after step", step_, [&] {
    return stragglers_->record(step_, step_s, result.times.sync_s);
  });
  if (!ranks) return;
  if (metrics_) metrics_->write_ranks(*ranks);
  if (tensorboard_) {
    tensorboard_->scalars(step_, {{"ranks/slowest_compute_ms", ranks->compute_ms[ranks->slowest]},
                                  {"ranks/slowest_over_median", ranks->ratio}});
  }
  listener_.on_ranks(*ranks);
  if (ranks->straggler) {
    listener_.on_note(fmt::format(
        "straggler: rank {} took {:.1f} ms per step to compute, {:.2f}x the median, in "
        "steps {}-{} (the others waited for it){}",
        ranks->slowest, ranks->compute_ms[ranks->slowest], ranks->ratio, ranks->first_step + 1,
        ranks->last_step,
        balance_ ? "" : "; comm.balance: BALANCE_THROUGHPUT gives slower ranks fewer rows"));
  }
}

// The step's progress to the listener, and the log line when one is due.
void TrainingRun::report(const StepResult& result, int64_t epoch, double lr) {
  TrainProgress progress;
  progress.step = step_;
  progress.total_steps = total_steps_;
  progress.epoch = epoch;
  progress.loss = result.loss;
  progress.lr = lr;
  progress.grad_norm = result.grad_norm;
  loss_scaling_->report(progress);
  progress.elapsed_s = seconds_since(start_);
  progress.samples_per_s = window_.samples_per_s();
  listener_.on_step(progress);
  if (step_ % config_.train().log_every_steps() == 0 || step_ == total_steps_ || result.stop) {
    log(progress);
  }
}

// The window's log line: metrics.jsonl, TensorBoard and the listener; then a new window.
void TrainingRun::log(TrainProgress progress) {
  window_.summarize(progress);
  if (metrics_) metrics_->write_train(progress);
  if (tensorboard_) tensorboard_->on_log(progress);
  listener_.on_log(progress);
  window_.restart(Clock::now());
}

// The evaluation and the saves due after epoch `epoch` (which may have ended early, at
// train.max_steps).
void TrainingRun::end_epoch(int64_t epoch) {
  const bool epoch_done = cursor_.epoch == epoch + 1;
  const bool last_epoch = epoch + 1 == config_.train().epochs() || step_ >= total_steps_;
  const int64_t every = config_.train().eval_every_epochs();
  if (test_set_ && (last_epoch || (every > 0 && (epoch + 1) % every == 0))) {
    evaluate_test_set(epoch);
  }
  const int64_t save_steps = config_.checkpoint().every_steps();
  const int64_t save_epochs = config_.checkpoint().every_epochs();
  if (epoch_done && ((save_steps > 0 && step_ % save_steps == 0) ||
                     (save_epochs > 0 && (epoch + 1) % save_epochs == 0))) {
    save();
  }
}

void TrainingRun::evaluate_test_set(int64_t epoch) {
  TraceSpan span(trace_.get(), "eval", "evaluate");
  // Page-locked once for the run: cudaHostAlloc takes milliseconds, each evaluation would pay it.
  if (!eval_staging_) eval_staging_ = make_pinned_host(model_->device(), true);
  EvalResult result = in_context("evaluation after step", step_, [&] {
    return evaluate(*model_, *test_set_, normalization_, config_.model().loss(),
                    config_.train().eval_batch_size(), &comm_,
                    balancer_->balanced() ? balancer_->shares() : std::vector<int64_t>{},
                    eval_staging_.get());
  });
  result.step = step_;
  result.epoch = epoch;
  if (metrics_) metrics_->write_eval(result);
  if (tensorboard_) tensorboard_->on_eval(result);
  listener_.on_eval(result);
  summary_.last_eval = result;
}

}  // namespace dpt
