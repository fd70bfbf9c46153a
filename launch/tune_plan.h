// The decisions of `dpt tune`, as pure functions of measurements: the memory cost model and the
// largest batch under a budget, gradient accumulation, the throughput pick, learning-rate scaling
// and warmup, and the LR range test's smoothing and pick. Nothing here measures or prints; the
// tuner (launch/tuner.h) feeds them measurements, and tests feed them hand-made ones.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.pb.h"

namespace dpt {

// Device bytes of one training step as fixed + per_sample x rows per forward/backward pass:
// parameters, gradients and optimizer state are fixed; activations and input buffers scale.
struct MemoryFit {
  double fixed_bytes = 0;
  double per_sample_bytes = 0;
  double bytes_at(int64_t batch) const { return fixed_bytes + per_sample_bytes * batch; }
};

// The line through two measurements (batch_a < batch_b); one point when they are equal (then
// everything counts as fixed). Throws kInternal for batch_a > batch_b or batches < 1.
MemoryFit fit_memory(int64_t batch_a, int64_t bytes_a, int64_t batch_b, int64_t bytes_b);

// The CPU's budget per worker when tune.memory_budget_mb is 0: fraction x MemAvailable shared by
// the workers of the node, less the datasets each of them holds in host memory. May be <= 0.
int64_t cpu_memory_budget(int64_t available_bytes, double fraction, int workers_on_node,
                          int64_t dataset_bytes);

// Largest batch in [1, cap] whose predicted bytes are <= budget_bytes; 0 when not even 1 fits.
int64_t largest_fitting_batch(const MemoryFit& fit, int64_t budget_bytes, int64_t cap);

// A worker's share of the global batch split into `steps` micro-batches of `micro` rows.
struct Accumulation {
  int64_t per_worker = 0;
  int64_t micro = 0;
  int64_t steps = 1;
};

// The fewest equal micro-batches of at most `largest` rows that make up `per_worker` rows (the
// trainer needs micro to divide the batch): steps is the smallest divisor of per_worker with
// per_worker / steps <= largest. Throws kInternal unless both are >= 1.
Accumulation plan_accumulation(int64_t per_worker, int64_t largest);

// The per-worker batches to time: the powers of two in [min_batch, largest]; {largest} when
// there are none.
std::vector<int64_t> candidate_batches(int64_t min_batch, int64_t largest);

// One row of the throughput table.
struct BatchTiming {
  int64_t batch = 0;         // per worker
  double step_s = 0;         // median seconds per optimizer step
  double samples_per_s = 0;  // global: batch x workers / step_s
  int64_t peak_bytes = 0;    // measured device bytes at the step's peak
};

// Index of the best samples/s in `table` (not empty).
std::size_t fastest(const std::vector<BatchTiming>& table);
// Index of the smallest batch whose samples/s is at least (1 - tolerance) x the best: beyond the
// knee a larger batch buys little speed, and smaller batches generalise better.
std::size_t pick_throughput(const std::vector<BatchTiming>& table, double tolerance);

// The rule LR_SCALING_AUTO stands for: SQRT for adam and adamw, LINEAR for sgd; others as given.
proto::LrScaling resolve_lr_scaling(proto::LrScaling rule, const proto::OptimizerConfig& optimizer);
// "linear", "square-root", "none".
const char* lr_scaling_name(proto::LrScaling rule);
// lr x factor (LINEAR), lr x sqrt(factor) (SQRT), lr (NONE); `rule` already resolved.
double scale_lr(double lr, double factor, proto::LrScaling rule);

// Optimizer steps per epoch at `global_batch`, as the trainer counts them.
int64_t steps_per_epoch(int64_t train_samples, int64_t global_batch, bool drop_last);

// Rescales every step count of `schedule` (warmup_steps, total_steps, step.step_size,
// multistep.milestones, exponential.gamma) for a global batch `ratio` = new / old times as
// large, so each covers the same samples as before. Returns one note per field it changed.
std::vector<std::string> rescale_schedule(proto::LrScheduleConfig& schedule, double ratio);

// ---- LR range test (Smith 2017; fast.ai's lr_find) ----

// `steps` learning rates from lr_min to lr_max, evenly spaced in log(lr).
std::vector<double> lr_sweep(double lr_min, double lr_max, int64_t steps);

// Exponential moving average of the loss with fast.ai's bias correction:
// avg = beta * avg + (1 - beta) * loss; smoothed = avg / (1 - beta^n).
class LossSmoother {
 public:
  explicit LossSmoother(double beta = 0.98) : beta_(beta) {}
  double add(double loss);

 private:
  double beta_;
  double average_ = 0;
  double power_ = 1;
};

// The sweep stops when the smoothed loss is not finite or exceeds this multiple of its minimum.
constexpr double kDivergenceFactor = 4.0;

struct LrPoint {
  double lr = 0;
  double loss = 0;      // training loss of that step's batch
  double smoothed = 0;  // LossSmoother over the sweep so far
};

struct LrPick {
  double lr = 0;                   // the pick: lr at the minimum smoothed loss / 10
  std::size_t min_index = 0;       // point with the lowest smoothed loss
  std::size_t steepest_index = 0;  // point where the smoothed loss falls fastest per log(lr)
};

// Picks from a sweep's points (smoothed filled in): the lr of the lowest smoothed loss divided by
// 10, which stays a safe distance below where the loss turns up (the steepest-descent lr is
// reported too; on noisy curves it jumps around). Throws kConfig naming tune.lr_min when fewer
// than 3 points have a finite loss (the sweep diverged at once).
LrPick pick_lr(const std::vector<LrPoint>& points);

}  // namespace dpt
