// The tuner's procedure: memory, batch, learning rate, warmup, evaluation batch, in that order,
// each step writing the line that explains it.
#include "launch/tuner.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "devices/error.h"

namespace dpt {

std::string format_bytes(double bytes) {
  if (bytes < 1024) return fmt::format("{:.0f} B", bytes);
  if (bytes < 1024.0 * 1024) return fmt::format("{:.1f} KiB", bytes / 1024);
  if (bytes < 1024.0 * 1024 * 1024) return fmt::format("{:.1f} MiB", bytes / (1024.0 * 1024));
  return fmt::format("{:.2f} GiB", bytes / (1024.0 * 1024 * 1024));
}

namespace {

// Measurements of the memory fit: two batches small enough to be cheap, far enough apart that
// 64-byte allocation rounding is noise next to the per-sample bytes.
constexpr int64_t kFitBatch = 32;
// Verification steps down at most this many times before giving up.
constexpr int kMaxVerifications = 8;

// Fits the memory model, finds the largest batch under the budget and verifies it by measurement.
void measure_memory(const proto::TuneConfig& tune, const TuneInputs& in, TuneProbe& probe,
                    TuneResult& r) {
  const int64_t budget = in.budget_bytes;
  r.fit_batches[1] = std::min(r.cap, kFitBatch);
  r.fit_batches[0] = std::max<int64_t>(1, r.fit_batches[1] / 2);
  r.fit_bytes[0] = probe.peak_bytes(r.fit_batches[0], 0);
  r.fit_bytes[1] =
      r.fit_batches[1] == r.fit_batches[0] ? r.fit_bytes[0] : probe.peak_bytes(r.fit_batches[1], 0);
  r.fit = fit_memory(r.fit_batches[0], r.fit_bytes[0], r.fit_batches[1], r.fit_bytes[1]);
  r.explanation.push_back(fmt::format(
      "memory of a step: {} fixed (parameters, gradients, optimizer state) + {} per sample "
      "(activations, inputs), the line through steps measured at batch {} ({}) and {} ({})",
      format_bytes(r.fit.fixed_bytes), format_bytes(r.fit.per_sample_bytes), r.fit_batches[0],
      format_bytes(r.fit_bytes[0]), r.fit_batches[1], format_bytes(r.fit_bytes[1])));
  const std::string figures = fmt::format(
      "{} per worker ({}) against {} measured for parameters, gradients and optimizer "
      "state plus {} per sample",
      format_bytes(budget), in.budget_source, format_bytes(r.fit.fixed_bytes),
      format_bytes(r.fit.per_sample_bytes));
  DPT_CHECK_AS(ErrorKind::kConfig, r.fit.fixed_bytes <= budget)
      << "tune.memory_budget_mb: the model alone does not fit: " << figures << " (batch 1 needs "
      << format_bytes(r.fit.bytes_at(1)) << ")";
  int64_t batch = largest_fitting_batch(r.fit, budget, r.cap);
  DPT_CHECK_AS(ErrorKind::kConfig, batch >= tune.min_batch())
      << "tune.memory_budget_mb: not even tune.min_batch = " << tune.min_batch() << " ("
      << format_bytes(r.fit.bytes_at(tune.min_batch())) << ") fits: " << figures;
  int64_t peak = probe.peak_bytes(batch, 0);
  for (int tries = 0; peak > budget; ++tries) {
    DPT_CHECK_AS(ErrorKind::kConfig, batch > tune.min_batch() && tries < kMaxVerifications)
        << "tune.memory_budget_mb: a step at batch " << batch << " measured "
        << format_bytes(static_cast<double>(peak)) << " over " << figures;
    const double over = static_cast<double>(peak - budget) / std::max(1.0, r.fit.per_sample_bytes);
    batch = std::max(tune.min_batch(), batch - std::max<int64_t>(1, std::llround(std::ceil(over))));
    peak = probe.peak_bytes(batch, 0);
  }
  r.largest = batch;
  r.largest_peak = peak;
  const std::string limit =
      batch < r.cap ? "memory"
                    : (r.cap == tune.max_batch()
                           ? fmt::format("tune.max_batch; memory would allow {}",
                                         largest_fitting_batch(r.fit, budget,
                                                               std::numeric_limits<int32_t>::max()))
                           : fmt::format("the {} training samples over {} workers",
                                         in.train_samples, in.workers));
  r.explanation.push_back(fmt::format(
      "largest per-worker batch without accumulation: {} (limit: {}); one step there measured {} "
      "<= {}",
      batch, limit, format_bytes(static_cast<double>(peak)), format_bytes(budget)));
}

// The throughput table, one line per measured batch.
void explain_table(TuneResult& r) {
  r.explanation.push_back("throughput: batch/worker   ms/step   samples/s   measured peak");
  for (std::size_t i = 0; i < r.table.size(); ++i) {
    const BatchTiming& t = r.table[i];
    const std::string mark = r.chosen == i
                                 ? (i == r.fastest ? "  <- fastest, chosen" : "  <- chosen")
                                 : (i == r.fastest ? "  <- fastest" : "");
    r.explanation.push_back(fmt::format("{:>24} {:>9.2f} {:>11.0f} {:>15}{}", t.batch,
                                        t.step_s * 1e3, t.samples_per_s,
                                        format_bytes(static_cast<double>(t.peak_bytes)), mark));
  }
}

// The global batch and its split into micro-batches.
void choose_batch(const proto::Config& config, const TuneInputs& in, TuneResult& r) {
  const proto::TuneConfig& tune = config.tune();
  r.fastest = fastest(r.table);
  const BatchTiming& best = r.table[r.fastest];
  const int64_t workers = in.workers;
  if (tune.global_batch() > 0) explain_table(r);
  if (tune.global_batch() == 0) {
    r.chosen = pick_throughput(r.table, tune.throughput_tolerance());
    explain_table(r);
    const BatchTiming& chosen = r.table[*r.chosen];
    r.accumulation = {chosen.batch, chosen.batch, 1};
    r.global_batch = chosen.batch * workers;
    r.explanation.push_back(fmt::format(
        "train.batch_size: {} -> {} ({} per worker x {} workers): the smallest batch within {:g}% "
        "of the best samples/s ({:.0f} at batch {}; {:.0f} here), since past that knee a larger "
        "batch buys little speed and smaller batches generalise better",
        config.train().batch_size(), r.global_batch, chosen.batch, workers,
        100 * tune.throughput_tolerance(), best.samples_per_s, best.batch, chosen.samples_per_s));
    r.explanation.push_back(fmt::format(
        "train.micro_batch_size: 0 (no accumulation needed); with accumulation, micro-batches of "
        "up to {} rows fit: set tune.global_batch to keep a larger global batch",
        r.largest));
    return;
  }
  r.global_batch = tune.global_batch();
  DPT_CHECK_AS(ErrorKind::kConfig, r.global_batch % workers == 0)
      << "tune.global_batch: " << r.global_batch << " is not a multiple of the " << workers
      << " workers";
  DPT_CHECK_AS(ErrorKind::kConfig, r.global_batch <= in.train_samples)
      << "tune.global_batch: " << r.global_batch << " is larger than the " << in.train_samples
      << " training samples";
  r.accumulation = plan_accumulation(r.global_batch / workers, r.largest);
  r.explanation.push_back(
      fmt::format("train.batch_size: {} -> {} (tune.global_batch; {} per worker)",
                  config.train().batch_size(), r.global_batch, r.accumulation.per_worker));
  r.explanation.push_back(
      r.accumulation.steps == 1
          ? fmt::format("train.micro_batch_size: 0 (the {} rows per worker fit in one pass)",
                        r.accumulation.per_worker)
          : fmt::format("train.micro_batch_size: {} ({} accumulation steps of {} rows per worker: "
                        "the fewest equal micro-batches of at most {} rows)",
                        r.accumulation.micro, r.accumulation.steps, r.accumulation.micro,
                        r.largest));
}

// The scaled lr, and the LR range test's pick when it runs.
void choose_lr(const proto::Config& config, TuneProbe& probe, TuneResult& r) {
  const proto::TuneConfig& tune = config.tune();
  const double lr = config.optimizer().lr();
  r.reference_batch =
      tune.reference_batch() > 0 ? tune.reference_batch() : config.train().batch_size();
  const double factor =
      static_cast<double>(r.global_batch) / static_cast<double>(r.reference_batch);
  r.rule = resolve_lr_scaling(tune.lr_scaling(), config.optimizer());
  r.scaled_lr = scale_lr(lr, factor, r.rule);
  r.lr = r.scaled_lr;
  const std::string why =
      tune.lr_scaling() != proto::LR_SCALING_AUTO
          ? "tune.lr_scaling"
          : (r.rule == proto::LR_SCALING_SQRT ? "AUTO: Adam-family optimizer" : "AUTO: SGD");
  r.explanation.push_back(fmt::format(
      "optimizer.lr: {:g} -> {:g}: {} rule ({}) for global batch {} over reference batch {} "
      "(factor {:g})",
      lr, r.scaled_lr, lr_scaling_name(r.rule), why, r.global_batch, r.reference_batch, factor));
  if (!tune.lr_range_test()) return;
  probe.start_lr_test(r.global_batch, r.accumulation.micro);
  LossSmoother smoother;
  double lowest = std::numeric_limits<double>::infinity();
  for (double sweep_lr : lr_sweep(tune.lr_min(), tune.lr_max(), tune.lr_range_steps())) {
    const double loss = probe.lr_test_step(sweep_lr);
    const double smoothed = smoother.add(loss);
    r.lr_points.push_back({sweep_lr, loss, smoothed});
    if (!std::isfinite(smoothed) || smoothed > kDivergenceFactor * lowest) break;
    lowest = std::min(lowest, smoothed);
  }
  r.lr_pick = pick_lr(r.lr_points);
  r.lr = r.lr_pick->lr;
  const bool stopped = r.lr_points.size() < static_cast<std::size_t>(tune.lr_range_steps());
  const LrPoint& low = r.lr_points[r.lr_pick->min_index];
  r.explanation.push_back(fmt::format(
      "LR range test: {} steps at global batch {} from lr {:g} up to {:g}{}; lowest smoothed "
      "loss {:.4g} at lr {:.3g}; steepest descent at lr {:.3g}",
      r.lr_points.size(), r.global_batch, tune.lr_min(), r.lr_points.back().lr,
      stopped ? " (stopped: the smoothed loss passed 4x its minimum)" : "", low.smoothed, low.lr,
      r.lr_points[r.lr_pick->steepest_index].lr));
  if (r.lr_pick->min_index + 1 == r.lr_points.size() && !stopped) {
    r.explanation.push_back(
        "LR range test: the loss was still falling at tune.lr_max; raise it "
        "to see where the loss turns up");
  }
  if (r.lr_pick->min_index == 0) {
    r.explanation.push_back("LR range test: the loss was lowest at tune.lr_min; lower it");
  }
  r.explanation.push_back(fmt::format(
      "optimizer.lr: {:g} -> {:.3g}: the range test's lowest-loss lr / 10 (replaces the scaled "
      "{:g}; min-loss / 10 stays clear of where the loss turns up)",
      lr, r.lr, r.scaled_lr));
}

// Rescales step-counted fields to the new batch and adds warmup when the lr went up.
void adjust_schedule(const proto::Config& config, const TuneInputs& in, TuneResult& r) {
  proto::LrScheduleConfig& schedule = *r.tuned.mutable_optimizer()->mutable_schedule();
  const double ratio =
      static_cast<double>(r.global_batch) / static_cast<double>(config.train().batch_size());
  for (const std::string& note : rescale_schedule(schedule, ratio)) {
    r.explanation.push_back(note + fmt::format(" (step counts cover the same samples at batch {} "
                                               "as at {})",
                                               r.global_batch, config.train().batch_size()));
  }
  if (config.train().max_steps() > 0 && ratio != 1.0) {
    const int64_t steps =
        std::max<int64_t>(1, std::llround(static_cast<double>(config.train().max_steps()) / ratio));
    r.tuned.mutable_train()->set_max_steps(steps);
    r.explanation.push_back(fmt::format("train.max_steps: {} -> {} (the same samples)",
                                        config.train().max_steps(), steps));
  }
  const double lr = config.optimizer().lr();
  const double epochs = config.tune().warmup_epochs();
  if (!(r.lr > lr) || epochs <= 0) return;
  const int64_t per_epoch =
      steps_per_epoch(in.train_samples, r.global_batch, config.train().drop_last());
  const int64_t want =
      std::max<int64_t>(1, std::llround(std::ceil(epochs * static_cast<double>(per_epoch))));
  if (schedule.warmup_steps() >= want) {
    r.explanation.push_back(fmt::format(
        "optimizer.schedule.warmup_steps: kept at {} (>= the {} steps of tune.warmup_epochs {:g})",
        schedule.warmup_steps(), want, epochs));
    return;
  }
  schedule.set_warmup_steps(want);
  schedule.set_warmup_start_factor(static_cast<float>(lr / r.lr));
  r.explanation.push_back(fmt::format(
      "optimizer.schedule.warmup_steps: {} (tune.warmup_epochs {:g} x {} steps per epoch), "
      "warmup_start_factor {:.4g}: "
      "the lr rose above optimizer.lr, so it ramps linearly from {:g} (Goyal et al. 2017)",
      want, epochs, per_epoch, schedule.warmup_start_factor(), lr));
}

// Halves train.eval_batch_size until evaluation after the tuned steps fits the budget too.
void fit_eval(const proto::Config& config, const TuneInputs& in, TuneProbe& probe, TuneResult& r) {
  r.eval_batch = config.train().eval_batch_size();
  if (in.test_samples == 0) return;
  const int64_t shard = (in.test_samples + in.workers - 1) / in.workers;
  int64_t peak = probe.peak_bytes(r.accumulation.micro, std::min(r.eval_batch, shard));
  while (peak > in.budget_bytes) {
    DPT_CHECK_AS(ErrorKind::kConfig, r.eval_batch > 1)
        << "tune.memory_budget_mb: evaluation of one sample after a step at batch "
        << r.accumulation.micro << " measured " << format_bytes(static_cast<double>(peak)) << " > "
        << format_bytes(static_cast<double>(in.budget_bytes));
    r.eval_batch = std::max<int64_t>(1, std::min(r.eval_batch, shard) / 2);
    peak = probe.peak_bytes(r.accumulation.micro, std::min(r.eval_batch, shard));
  }
  r.tuned.mutable_train()->set_eval_batch_size(r.eval_batch);
  r.explanation.push_back(
      r.eval_batch == config.train().eval_batch_size()
          ? fmt::format("train.eval_batch_size: kept at {}; steps and evaluation measured {}",
                        r.eval_batch, format_bytes(static_cast<double>(peak)))
          : fmt::format("train.eval_batch_size: {} -> {}, so evaluation fits too (measured {})",
                        config.train().eval_batch_size(), r.eval_batch,
                        format_bytes(static_cast<double>(peak))));
}

}  // namespace

TuneResult tune(const proto::Config& config, const TuneInputs& in, TuneProbe& probe) {
  const proto::TuneConfig& tune = config.tune();
  DPT_CHECK(in.workers >= 1) << "tune: workers must be >= 1";
  TuneResult r;
  r.tuned = config;
  r.explanation.push_back(fmt::format("memory budget: {} per worker ({})",
                                      format_bytes(in.budget_bytes), in.budget_source));
  const int64_t data_cap = in.train_samples / in.workers;
  r.cap = std::min(tune.max_batch(), data_cap);
  DPT_CHECK_AS(ErrorKind::kConfig, r.cap >= tune.min_batch())
      << "tune.min_batch: " << tune.min_batch() << " per worker is more than the "
      << in.train_samples << " training samples allow over " << in.workers << " workers ("
      << data_cap << " each)";
  measure_memory(tune, in, probe, r);
  for (int64_t batch : candidate_batches(tune.min_batch(), r.largest)) {
    r.table.push_back(probe.time_steps(batch));
  }
  choose_batch(config, in, r);
  r.tuned.mutable_train()->set_batch_size(r.global_batch);
  r.tuned.mutable_train()->set_micro_batch_size(r.accumulation.steps > 1 ? r.accumulation.micro
                                                                         : 0);
  choose_lr(config, probe, r);
  r.tuned.mutable_optimizer()->set_lr(static_cast<float>(r.lr));
  adjust_schedule(config, in, r);
  fit_eval(config, in, probe, r);
  return r;
}

}  // namespace dpt
