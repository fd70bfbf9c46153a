// The pure decisions of `dpt tune`: formulas and rules only, every input passed in.
#include "launch/tune_plan.h"

#include <algorithm>
#include <cmath>

#include "devices/error.h"

namespace dpt {

MemoryFit fit_memory(int64_t batch_a, int64_t bytes_a, int64_t batch_b, int64_t bytes_b) {
  DPT_CHECK(batch_a >= 1 && batch_a <= batch_b)
      << "fit_memory: batches must satisfy 1 <= a <= b (got " << batch_a << ", " << batch_b << ")";
  MemoryFit fit;
  if (batch_a == batch_b) {
    fit.fixed_bytes = static_cast<double>(std::max(bytes_a, bytes_b));
    return fit;
  }
  // Counted bytes only grow with the batch; a negative slope would be a counting bug, and 0 is
  // the safe reading of it (the verification step measures the result anyway).
  fit.per_sample_bytes = std::max(
      0.0, static_cast<double>(bytes_b - bytes_a) / static_cast<double>(batch_b - batch_a));
  fit.fixed_bytes = static_cast<double>(bytes_a) - fit.per_sample_bytes * batch_a;
  return fit;
}

int64_t cpu_memory_budget(int64_t available_bytes, double fraction, int workers_on_node,
                          int64_t dataset_bytes) {
  DPT_CHECK(workers_on_node >= 1) << "cpu_memory_budget: workers_on_node must be >= 1";
  const double share = static_cast<double>(available_bytes) * fraction / workers_on_node;
  return static_cast<int64_t>(std::floor(share)) - dataset_bytes;
}

int64_t largest_fitting_batch(const MemoryFit& fit, int64_t budget_bytes, int64_t cap) {
  const auto budget = static_cast<double>(budget_bytes);
  if (cap < 1 || fit.bytes_at(1) > budget) return 0;
  if (fit.per_sample_bytes <= 0) return cap;
  const double room = std::floor((budget - fit.fixed_bytes) / fit.per_sample_bytes);
  int64_t batch = room >= static_cast<double>(cap) ? cap : std::max<int64_t>(1, int64_t(room));
  // Exact at the boundary despite rounding in the division.
  while (batch > 1 && fit.bytes_at(batch) > budget) --batch;
  while (batch < cap && fit.bytes_at(batch + 1) <= budget) ++batch;
  return batch;
}

Accumulation plan_accumulation(int64_t per_worker, int64_t largest) {
  DPT_CHECK(per_worker >= 1 && largest >= 1)
      << "plan_accumulation: batches must be >= 1 (got " << per_worker << ", " << largest << ")";
  for (int64_t steps = (per_worker + largest - 1) / largest;; ++steps) {
    if (per_worker % steps == 0) return {per_worker, per_worker / steps, steps};
  }
}

std::vector<int64_t> candidate_batches(int64_t min_batch, int64_t largest) {
  std::vector<int64_t> batches;
  for (int64_t b = 1; b <= largest; b *= 2) {
    if (b >= min_batch) batches.push_back(b);
  }
  if (batches.empty()) batches.push_back(largest);
  return batches;
}

std::size_t fastest(const std::vector<BatchTiming>& table) {
  DPT_CHECK(!table.empty()) << "fastest: empty throughput table";
  std::size_t best = 0;
  for (std::size_t i = 1; i < table.size(); ++i) {
    if (table[i].samples_per_s > table[best].samples_per_s) best = i;
  }
  return best;
}

std::size_t pick_throughput(const std::vector<BatchTiming>& table, double tolerance) {
  const double threshold = (1.0 - tolerance) * table[fastest(table)].samples_per_s;
  std::size_t pick = fastest(table);
  for (std::size_t i = 0; i < table.size(); ++i) {
    if (table[i].samples_per_s >= threshold && table[i].batch < table[pick].batch) pick = i;
  }
  return pick;
}

proto::LrScaling resolve_lr_scaling(proto::LrScaling rule,
                                    const proto::OptimizerConfig& optimizer) {
  if (rule != proto::LR_SCALING_AUTO) return rule;
  return optimizer.has_adam() || optimizer.has_adamw() ? proto::LR_SCALING_SQRT
                                                       : proto::LR_SCALING_LINEAR;
}

const char* lr_scaling_name(proto::LrScaling rule) {
  switch (rule) {
    case proto::LR_SCALING_LINEAR:
      return "linear";
    case proto::LR_SCALING_SQRT:
      return "square-root";
    case proto::LR_SCALING_NONE:
      return "none";
    default:
      return "auto";
  }
}

double scale_lr(double lr, double factor, proto::LrScaling rule) {
  switch (rule) {
    case proto::LR_SCALING_LINEAR:
      return lr * factor;
    case proto::LR_SCALING_SQRT:
      return lr * std::sqrt(factor);
    case proto::LR_SCALING_NONE:
      return lr;
    default:
      DPT_THROW(ErrorKind::kInternal) << "scale_lr: unresolved rule " << static_cast<int>(rule);
  }
}

int64_t steps_per_epoch(int64_t train_samples, int64_t global_batch, bool drop_last) {
  return drop_last ? train_samples / global_batch
                   : (train_samples + global_batch - 1) / global_batch;
}

namespace {

// A step count for a batch `ratio` times as large: the same samples, at least 1 step.
int64_t rescaled(int64_t steps, double ratio) {
  return std::max<int64_t>(1, std::llround(static_cast<double>(steps) / ratio));
}

void note_change(std::vector<std::string>& notes, const std::string& field, const std::string& from,
                 const std::string& to) {
  if (from != to) notes.push_back(field + ": " + from + " -> " + to);
}

}  // namespace

std::vector<std::string> rescale_schedule(proto::LrScheduleConfig& schedule, double ratio) {
  std::vector<std::string> notes;
  if (ratio == 1.0) return notes;
  const std::string prefix = "optimizer.schedule.";
  auto steps = [&](const std::string& field, int64_t value, auto set) {
    if (value <= 0) return;
    const int64_t now = rescaled(value, ratio);
    set(now);
    note_change(notes, prefix + field, std::to_string(value), std::to_string(now));
  };
  steps("warmup_steps", schedule.warmup_steps(), [&](int64_t v) { schedule.set_warmup_steps(v); });
  steps("total_steps", schedule.total_steps(), [&](int64_t v) { schedule.set_total_steps(v); });
  if (schedule.has_step()) {
    steps("step.step_size", schedule.step().step_size(),
          [&](int64_t v) { schedule.mutable_step()->set_step_size(v); });
  }
  if (schedule.has_multistep()) {
    auto& milestones = *schedule.mutable_multistep()->mutable_milestones();
    std::string from, to;
    int64_t previous = 0;
    for (int i = 0; i < milestones.size(); ++i) {
      from += (i ? ", " : "") + std::to_string(milestones[i]);
      // Still strictly increasing, as validation requires.
      previous = std::max(previous + 1, rescaled(milestones[i], ratio));
      milestones[i] = previous;
      to += (i ? ", " : "") + std::to_string(previous);
    }
    note_change(notes, prefix + "multistep.milestones", "[" + from + "]", "[" + to + "]");
  }
  if (schedule.has_exponential()) {
    const float gamma = schedule.exponential().gamma();
    const auto now = static_cast<float>(std::pow(static_cast<double>(gamma), ratio));
    schedule.mutable_exponential()->set_gamma(now);
    note_change(notes, prefix + "exponential.gamma", std::to_string(gamma), std::to_string(now));
  }
  return notes;
}

std::vector<double> lr_sweep(double lr_min, double lr_max, int64_t steps) {
  std::vector<double> lrs;
  for (int64_t i = 0; i < steps; ++i) {
    const double t = steps > 1 ? static_cast<double>(i) / static_cast<double>(steps - 1) : 0.0;
    lrs.push_back(lr_min * std::pow(lr_max / lr_min, t));
  }
  return lrs;
}

double LossSmoother::add(double loss) {
  average_ = beta_ * average_ + (1.0 - beta_) * loss;
  power_ *= beta_;
  return average_ / (1.0 - power_);
}

LrPick pick_lr(const std::vector<LrPoint>& points) {
  std::size_t finite = 0;
  while (finite < points.size() && std::isfinite(points[finite].smoothed)) ++finite;
  DPT_CHECK_AS(ErrorKind::kConfig, finite >= 3)
      << "tune.lr_min: the LR range test's loss diverged within " << points.size()
      << " steps of lr " << (points.empty() ? 0.0 : points.front().lr) << "; lower tune.lr_min";
  LrPick pick;
  for (std::size_t i = 1; i < finite; ++i) {
    if (points[i].smoothed < points[pick.min_index].smoothed) pick.min_index = i;
  }
  double steepest = 0;
  pick.steepest_index = 1;
  for (std::size_t i = 1; i + 1 < finite; ++i) {
    const double slope = (points[i + 1].smoothed - points[i - 1].smoothed) /
                         (std::log(points[i + 1].lr) - std::log(points[i - 1].lr));
    if (i == 1 || slope < steepest) {
      steepest = slope;
      pick.steepest_index = i;
    }
  }
  pick.lr = points[pick.min_index].lr / 10.0;
  return pick;
}

}  // namespace dpt
