// One optimizer step, shared by the trainer and `dpt bench step` so the benchmark times exactly
// the code that trains. Each rank computes its shard of the global batch in micro-batches
// (forward + loss + backward accumulating into the flat gradient buffer); the last micro-batch's
// backward hands finished layers to GradSync, which sums them across ranks while backward goes
// on; with a LossScaler (fp16, launch/loss_scaling.h) the loss gradient is multiplied by its
// scale and the summed gradients unscaled and checked for inf/NaN; then the global gradient norm
// (and clipping, of the unscaled gradients), then the optimizer update. Each phase is timed by
// the device's PhaseClock (devices/device.h): host time on the CPU, the compute stream's time
// between timing events on a GPU, where the host only queues the work.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "comm/grad_sync.h"
#include "core/config.pb.h"
#include "core/model.h"
#include "launch/batch_loader.h"
#include "optim/loss_scaler.h"
#include "optim/optimizer.h"

namespace dpt {

// Rows [begin, end) of a global batch that `rank` of `world` computes: floor(r * b / w) to
// floor((r + 1) * b / w), so shards differ by at most one row and cover the batch exactly once.
struct Shard {
  int64_t begin = 0;
  int64_t end = 0;
};
Shard shard_of(int64_t batch, int rank, int world);

// The first micro-batch of the step after this one, so TrainStep can load it while this step
// computes. A guess is harmless: when the next step asks for other rows, they are loaded then.
struct NextBatch {
  int64_t step = 0;
  Shard shard;
  BatchSource source;
};

// Seconds per phase, as the device spent them. On a GPU each phase is the compute stream's time
// from its start to its end (its kernels, and the stream's idle time while the host loaded data
// or waited for the other ranks), read without an extra synchronisation: the optimizer's (and
// clipping's) time is still running when the step returns, so it arrives with the next step's
// times (TrainStep::read_times after a synchronize gets it at once).
struct StepTimes {
  double data_s = 0, forward_s = 0, backward_s = 0, sync_s = 0, norm_s = 0, optimizer_s = 0;
  double total() const { return data_s + forward_s + backward_s + sync_s + norm_s + optimizer_s; }
  void add(const StepTimes& other);
};

struct StepResult {
  double loss = 0.0;       // mean loss over the global batch (identical on every rank)
  double grad_norm = 0.0;  // global L2 norm before clipping (identical on every rank); NaN when
                           // `overflow`
  bool stop = false;       // some rank asked to stop after this step (identical on every rank)
  // The loss scaler found inf/NaN in the gradients (identical on every rank): the step must not be
  // applied; the scaler has lowered its scale and counted the skip.
  bool overflow = false;
  StepTimes times;
};

class TrainStep {
 public:
  // `scaler` (not owned; null: no loss scaling) scales the loss gradient and unscales the
  // gradients after their cross-rank sum, so every rank sees the same inf/NaN verdict.
  TrainStep(Model& model, Optimizer& optimizer, const proto::Config& config, Communicator& comm,
            LossScaler* scaler = nullptr);
  // Zeroes the gradients and computes rows [shard.begin, shard.end) of a global batch of `batch`
  // samples (the ranks' shards must cover it exactly once, in any sizes, empty ones included),
  // in micro-batches of at most train.micro_batch_size rows; on return every rank holds the
  // gradient of the mean loss over the global batch (unscaled), clipped when configured, unless
  // the result says `overflow`. `step` keys
  // dropout. `stop`: this rank asks every rank to stop after this step (travels in the loss
  // all-reduce, so it costs no extra message).
  // `next`: the following step's batch, prefetched during this step (null: none).
  StepResult compute_gradients(int64_t step, int64_t batch, Shard shard, const BatchSource& source,
                               bool stop = false, const NextBatch* next = nullptr);
  // Applies the optimizer with `lr`; adds its time to `times` when the device has finished it
  // (the CPU: always; a GPU: usually not yet, see StepTimes).
  void apply(float lr, StepTimes& times);
  // Adds the phase times the device has finished since the last read to `times` (after a
  // device.synchronize(): all of them; `dpt bench step` does so to time each step whole).
  void read_times(StepTimes& times);
  // Records data loading, forward/backward per layer, gradient buckets, the wait for them and
  // the optimizer into `tracer` (null: off). Not owned.
  void set_tracer(Tracer* tracer);
  const BatchLoader& loader() const { return loader_; }

 private:
  Model& model_;
  Optimizer& optimizer_;
  Communicator& comm_;
  LossScaler* scaler_;
  proto::LossKind loss_;
  int64_t micro_batch_;
  double clip_norm_;
  std::unique_ptr<GradSync> grad_sync_;  // only with more than one rank
  BatchLoader loader_;
  Tensor grad_logits_buffer_;
  Tracer* tracer_ = nullptr;
  std::unique_ptr<PhaseClock> clock_;  // the model's device's
  // fault_injection FAULT_SLOW_SAMPLES on this rank: sleep per sample loaded from slow_from_ on.
  int64_t slow_us_per_sample_ = 0;
  int64_t slow_from_ = 0;
};

}  // namespace dpt
