// The training loop: data order, micro-batches with gradient accumulation, the non-finite guard,
// clipping, the LR schedule, the optimizer step, periodic evaluation, and the run directory
// (config.prototxt, metrics.jsonl, model.h5). It reports progress to a TrainListener and prints
// nothing itself, so tests can run it silently.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "core/config.pb.h"
#include "core/dataset.h"
#include "core/model.h"
#include "launch/straggler.h"

namespace dpt {

// Mean milliseconds per step by phase (launch/train_step.h's StepTimes) over a logging window.
struct PhaseMs {
  double data = 0, forward = 0, backward = 0, sync = 0, norm = 0, optimizer = 0;
};

struct TrainProgress {
  int64_t step = 0;  // optimizer steps completed
  int64_t total_steps = 0;
  int64_t epoch = 0;  // 0-based epoch of the step just completed
  double loss = 0.0;  // mean training loss over the steps since the last report
  double lr = 0.0;
  double grad_norm = 0.0;
  double samples_per_s = 0.0;
  double elapsed_s = 0.0;
  PhaseMs time_ms;  // in on_log: the window's mean split
  // With fp16 loss scaling (launch/loss_scaling.h; 0 otherwise): the next step's scale and the
  // steps it skipped for inf/NaN gradients since the run began.
  double loss_scale = 0.0;
  int64_t loss_scale_skipped = 0;
};

struct EvalResult {
  int64_t step = 0;
  int64_t epoch = 0;
  double loss = 0.0;
  double accuracy = 0.0;
  int64_t samples = 0;
};

struct TrainSummary {
  int64_t first_step = 0;          // > 0 when the run resumed from a checkpoint
  int64_t steps = 0;               // steps completed in all (including those before a resume)
  bool stopped = false;            // stopped early on request (a signal), after saving
  std::string last_checkpoint;     // path of the last checkpoint this run saved (rank 0)
  int64_t skipped_steps = 0;       // non-finite loss or gradient (train.on_non_finite: SKIP)
  int64_t loss_scale_skipped = 0;  // skipped by fp16 loss scaling (gradient overflow)
  double final_loss = 0.0;
  double seconds = 0.0;
  std::optional<EvalResult> last_eval;
  std::vector<RankStats> rank_stats;  // per rank, with more than one worker
  // Rows of a full batch per rank as comm.balance last set them (empty: the equal split).
  std::vector<int64_t> balance_shares;
};

class TrainListener {
 public:
  virtual ~TrainListener() = default;
  virtual void on_start(const Model& model, int64_t total_steps, int64_t steps_per_epoch) {}
  // After every optimizer step (cheap; a console uses it for its live line).
  virtual void on_step(const TrainProgress& progress) {}
  // Every train.log_every_steps steps, with the window's mean loss and throughput.
  virtual void on_log(const TrainProgress& progress) {}
  virtual void on_eval(const EvalResult& result) {}
  // A step whose loss or gradient was not finite was skipped (train.on_non_finite: SKIP), or
  // fp16 loss scaling skipped a step whose gradients overflowed (the reason names the new scale).
  virtual void on_skip(int64_t step, const std::string& reason) {}
  // A checkpoint was saved (rank 0).
  virtual void on_checkpoint(const std::string& path, int64_t step) {}
  // A line worth telling the user: resumed from where, skipped a corrupt checkpoint, ...
  virtual void on_note(const std::string& line) {}
  // Every monitor.straggler_every_steps steps with more than one worker: per-rank step times.
  virtual void on_ranks(const RankWindow& window) {}
};

struct TrainOptions {
  // "" (a fresh run; refused when the run directory already has checkpoints), "auto" (the newest
  // checkpoint that verifies, or fresh when there is none) or a checkpoint path.
  std::string resume;
  // Polled on every rank before each step; true on any rank makes every rank stop after that
  // step, save a checkpoint (checkpoint.on_signal) and return with TrainSummary::stopped.
  std::function<bool()> stop_requested;
  // Start from these parameters (the model's flat order, num_params floats) instead of the seeded
  // initialisation, e.g. to fine-tune saved weights; null: initialise. A checkpoint that is
  // resumed from takes precedence. Rank 0's values are broadcast to every rank.
  const std::vector<float>* initial_params = nullptr;
  // Called on every rank after each optimizer update with the flat parameter buffer, e.g. to hold
  // pruned weights at zero. Must change every rank's parameters the same way.
  std::function<void(Tensor& params)> after_update;
  // When set, receives the parameters at the end of training (flat, model order), on every rank;
  // untouched when the run stops early on request.
  std::vector<float>* final_params = nullptr;
  // Dynamic loss scaling (device.loss_scale) whatever device.precision says: a seam for tests of
  // the scaling on the CPU in float32. Runs from the command line scale only with FP16.
  bool loss_scaling = false;
};

// Trains `config` (validated) on `device` as rank comm.rank() of comm.size() workers; rank 0
// writes run_dir (config.prototxt, metrics.jsonl, checkpoints/, model.h5), the others write
// nothing.
// Throws dpt::Error: kConfig when the data does not fit the config (naming the field), kData,
// kNonFinite naming the step, kIo when run_dir is not writable (checked before step 1).
TrainSummary train(const proto::Config& config, Device& device, Communicator& comm,
                   const std::string& run_dir, TrainListener& listener,
                   const TrainOptions& options = {});

// Loss and accuracy of `model` over all of `dataset`, in batches of `batch_size`. With a
// communicator, each rank evaluates its shard and the sums are all-reduced (same result on all).
// `shares` (one per rank; empty: equal shards): the dataset is split in their proportions, so
// ranks balanced for training (comm.balance) are balanced for evaluation too. `staging`: the
// page-locked host memory of the batch loader on a GPU (make_pinned_host with keep_freed, kept
// by a caller that evaluates again and again, as the training run does, so only the first call
// page-locks); null: the loader's own, allocated and freed in this call. Unused on the CPU.
EvalResult evaluate(Model& model, const Dataset& dataset, const Normalization& normalization,
                    proto::LossKind loss, int64_t batch_size, Communicator* comm = nullptr,
                    const std::vector<int64_t>& shares = {}, Device* staging = nullptr);

// Checks that a dataset fits the model: feature count vs model.input_size and class count vs
// the last layer's width. Throws kConfig naming the field, the file and both numbers.
void check_dataset_fits(const proto::Config& config, const Model& model, const Dataset& dataset);

Normalization normalization_from(const proto::DataConfig& data);

// The order in which epoch `epoch` visits the `n` training samples: a permutation seeded by
// train.seed and the epoch when data.shuffle is set, else 0..n-1.
std::vector<int64_t> epoch_order(const proto::Config& config, int64_t n, int64_t epoch);

}  // namespace dpt
