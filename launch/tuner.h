// `dpt tune`'s procedure: what to measure, in which order, and what to conclude (README "Tuning").
// It asks a TuneProbe for measurements (launch/tune_probe.h runs real training steps; tests pass
// fakes with a known cost model), decides with launch/tune_plan.h, and returns the tuned config
// with one line of explanation per choice. It prints and writes nothing; launch/tune_command.cpp
// does. Every rank runs it with the same inputs and, through the probe, the same measurements.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/config.pb.h"
#include "launch/tune_plan.h"

namespace dpt {

// What the tuner measures. Every call is collective under mpirun: all ranks make the same calls
// in the same order and get the same answer (the worst rank's).
class TuneProbe {
 public:
  virtual ~TuneProbe() = default;
  // Peak device bytes of one training step with `batch` rows per worker in one pass (no
  // accumulation), built from scratch (model, gradients, optimizer state, activations, inputs),
  // followed by an evaluation forward pass of `eval_batch` rows when eval_batch > 0.
  virtual int64_t peak_bytes(int64_t batch, int64_t eval_batch) = 0;
  // Times optimizer steps with `batch` rows per worker in one pass: the median step time, the
  // global samples/s and the step's measured peak device bytes.
  virtual BatchTiming time_steps(int64_t batch) = 0;
  // Starts an LR range test: a freshly initialised model and optimizer, training data in the
  // config's order, global batch `global_batch` computed in micro-batches of `micro` rows.
  virtual void start_lr_test(int64_t global_batch, int64_t micro) = 0;
  // One optimizer step at `lr` (none when the loss is not finite); the step's training loss.
  virtual double lr_test_step(double lr) = 0;
};

struct TuneInputs {
  int64_t budget_bytes = 0;   // per worker
  std::string budget_source;  // how the budget was set, for the explanation
  int workers = 1;
  int64_t train_samples = 0;
  int64_t test_samples = 0;  // 0: no test set (no evaluation to fit)
};

struct TuneResult {
  proto::Config tuned;
  MemoryFit fit;
  int64_t fit_batches[2] = {0, 0};
  int64_t fit_bytes[2] = {0, 0};
  int64_t cap = 0;                    // per-worker batch limit before memory
  int64_t largest = 0;                // largest per-worker batch that fits, without accumulation
  int64_t largest_peak = 0;           // measured at `largest`
  std::vector<BatchTiming> table;     // throughput per candidate batch
  std::size_t fastest = 0;            // index in table
  std::optional<std::size_t> chosen;  // index in table; none with tune.global_batch
  Accumulation accumulation;
  int64_t global_batch = 0;
  proto::LrScaling rule = proto::LR_SCALING_AUTO;  // resolved
  int64_t reference_batch = 0;
  double scaled_lr = 0;
  std::vector<LrPoint> lr_points;  // the range test's sweep, when it ran
  std::optional<LrPick> lr_pick;
  double lr = 0;  // the tuned optimizer.lr
  int64_t eval_batch = 0;
  std::vector<std::string> explanation;  // one line per measurement or choice
};

// Tunes `config` (validated). Throws kConfig naming tune.memory_budget_mb with the figures when
// the model alone does not fit the budget, and naming tune.max_batch / tune.min_batch /
// tune.global_batch when the batch range cannot be met.
TuneResult tune(const proto::Config& config, const TuneInputs& inputs, TuneProbe& probe);

// "812 B", "14.3 KiB", "11.2 MiB", "1.5 GiB".
std::string format_bytes(double bytes);

}  // namespace dpt
