// TrainStep: the gradient of the mean loss over the global batch. Each micro-batch's loss
// gradient is scaled by 1 / global batch, backward adds into the flat buffer, and the cross-rank
// sum (GradSync) completes the mean. With a loss scaler the scale joins that factor, and the
// summed buffer is unscaled and checked before the norm.
#include "launch/train_step.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <thread>

#include "core/loss_accumulator.h"

namespace dpt {
namespace {

// StepTimes' fields as PhaseClock phases.
enum Phase { kData, kForward, kBackward, kSync, kNorm, kOptimizer, kPhases };
static_assert(kPhases <= PhaseClock::kMaxPhases, "StepTimes has more phases than a PhaseClock");

std::unique_ptr<GradSync> make_grad_sync(Model& model, const proto::CommConfig& config,
                                         Communicator& comm) {
  if (comm.size() == 1) return nullptr;
  std::vector<FlatRange> ranges;
  for (const auto& [offset, count] : model.param_ranges()) ranges.push_back({offset, count});
  GradSyncOptions options;
  options.bucket_bytes = static_cast<std::size_t>(config.bucket_mb() * (1 << 20));
  options.overlap = config.overlap();
  options.reduce_dtype = config.reduce_dtype() == proto::REDUCE_BF16   ? DType::kBF16
                         : config.reduce_dtype() == proto::REDUCE_FP16 ? DType::kF16
                                                                       : DType::kF32;
  return std::make_unique<GradSync>(comm, model.grads(), ranges, options);
}

// Rows the loader's slots hold: a micro-batch, and no more than this rank's share of the batch
// (equal shares: at most ceil(batch / world) rows, shard_of) where the balancer cannot give it
// more. On a GPU each slot is device plus page-locked memory: 8 ranks of a 4096-row batch of
// 8192 features need 32 MiB slots, not 128 MiB.
int64_t loader_rows(const proto::Config& config, int64_t micro_batch, int world) {
  const int64_t batch = config.train().batch_size();
  if (config.comm().balance() != proto::BALANCE_EQUAL || world <= 1) return micro_batch;
  return std::min(micro_batch, (batch + world - 1) / world);
}

}  // namespace

Shard shard_of(int64_t batch, int rank, int world) {
  return {batch * rank / world, batch * (rank + 1) / world};
}

void StepTimes::add(const StepTimes& other) {
  data_s += other.data_s;
  forward_s += other.forward_s;
  backward_s += other.backward_s;
  sync_s += other.sync_s;
  norm_s += other.norm_s;
  optimizer_s += other.optimizer_s;
}

TrainStep::TrainStep(Model& model, Optimizer& optimizer, const proto::Config& config,
                     Communicator& comm, LossScaler* scaler)
    : model_(model),
      optimizer_(optimizer),
      comm_(comm),
      scaler_(scaler),
      loss_(config.model().loss()),
      micro_batch_(config.train().micro_batch_size() > 0 ? config.train().micro_batch_size()
                                                         : config.train().batch_size()),
      clip_norm_(config.optimizer().clip_grad_norm()),
      grad_sync_(make_grad_sync(model, config.comm(), comm)),
      loader_(model.device(), loader_rows(config, micro_batch_, comm.size()), model.input_size(),
              model.dtype()),
      clock_(model.device().create_phase_clock()) {
  const proto::FaultInjection& fault = config.fault_injection();
  if (fault.kind() == proto::FAULT_SLOW_SAMPLES && fault.rank() == comm.rank()) {
    slow_us_per_sample_ = fault.slow_us_per_sample();
    slow_from_ = fault.step();
  }
}

void TrainStep::set_tracer(Tracer* tracer) {
  tracer_ = tracer;
  model_.set_tracer(tracer);
  if (grad_sync_) grad_sync_->set_tracer(tracer);
}

StepResult TrainStep::compute_gradients(int64_t step, int64_t batch, Shard shard,
                                        const BatchSource& source, bool stop,
                                        const NextBatch* next) {
  StepResult result;
  StepTimes& times = result.times;
  clock_->lap(PhaseClock::kUncharged);
  model_.zero_grads();
  if (grad_sync_) grad_sync_->begin();
  const Model::GradsReady on_ready = [this](int64_t offset, int64_t count) {
    grad_sync_->ready({offset, count});
  };
  // The micro-batches' loss sums, read back once at the end of the step (on a GPU the host does
  // not wait after each loss but goes on queueing backward).
  LossAccumulator losses(loss_);
  // d(mean loss)/d(logits), times the loss scale when scaling.
  const double grad_scale =
      (scaler_ ? static_cast<double>(scaler_->scale()) : 1.0) / static_cast<double>(batch);
  // Loads a micro-batch (now, or ahead for later) as the "data" phase.
  auto load = [&](auto&& body) {
    TraceSpan span(tracer_, "data", "load batch");
    body();
  };
  for (int64_t row = shard.begin; row < shard.end; row += micro_batch_) {
    const int64_t n = std::min(micro_batch_, shard.end - row);
    const bool last = row + n == shard.end;
    DeviceBatch micro;
    load([&] {
      micro = loader_.take({step, row, n}, source);
      if (slow_us_per_sample_ > 0 && step >= slow_from_) {
        std::this_thread::sleep_for(std::chrono::microseconds(slow_us_per_sample_ * n));
      }
    });
    clock_->lap(kData);
    // Parameters change only in apply(): later micro-batches reuse what layers derived from them.
    const Tensor& logits = model_.forward(micro.inputs, Pass{true, step, row, row != shard.begin});
    clock_->lap(kForward);
    // While the device runs this forward pass, the host loads the next micro-batch.
    if (!last) {
      const int64_t next_n = std::min(micro_batch_, shard.end - row - n);
      load([&] { loader_.prefetch({step, row + n, next_n}, source); });
    } else if (next != nullptr && next->shard.end > next->shard.begin) {
      const int64_t next_n = std::min(micro_batch_, next->shard.end - next->shard.begin);
      load([&] { loader_.prefetch({next->step, next->shard.begin, next_n}, next->source); });
    }
    clock_->lap(kData);
    Tensor grad_logits =
        workspace(grad_logits_buffer_, model_.device(), logits.shape(), logits.dtype());
    losses.add(logits, micro.labels, &grad_logits, grad_scale);
    // Only the last micro-batch's backward finishes a layer's gradients.
    model_.backward(grad_logits, last && grad_sync_ ? on_ready : Model::GradsReady{});
    clock_->lap(kBackward);
  }
  // {loss sum, ranks asking to stop}, summed over ranks. Reading the loss back waits for the
  // device to finish backward, which the gradient sync waits for too.
  double totals[2] = {0.0, stop ? 1.0 : 0.0};
  if (grad_sync_) {
    TraceSpan span(tracer_, "sync", "wait for gradients and loss");
    grad_sync_->finish();
    totals[0] = losses.total().loss_sum;
    comm_.all_reduce(totals, totals, 2, DType::kF64, ReduceOp::kSum);
    clock_->lap(kSync);
  } else {
    // A host wait at most (the device's work is already charged to its phases).
    totals[0] = losses.total().loss_sum;
  }
  result.loss = totals[0] / static_cast<double>(batch);
  result.stop = totals[1] > 0;
  if (scaler_ && !scaler_->unscale_and_update(model_.grads())) {
    result.overflow = true;
    result.grad_norm = std::numeric_limits<double>::quiet_NaN();
    clock_->lap(kNorm);
    read_times(times);
    return result;
  }
  result.grad_norm =
      clip_norm_ > 0 ? clip_grad_norm(model_.grads(), clip_norm_) : global_norm(model_.grads());
  clock_->lap(kNorm);
  // The norm was read back, so every phase before it is finished on any device: no extra wait.
  read_times(times);
  return result;
}

void TrainStep::apply(float lr, StepTimes& times) {
  clock_->lap(PhaseClock::kUncharged);
  {
    TraceSpan span(tracer_, "optimizer", optimizer_.name());
    optimizer_.step(model_.params(), model_.grads(), lr);
  }
  clock_->lap(kOptimizer);
  read_times(times);
}

void TrainStep::read_times(StepTimes& times) {
  double seconds[PhaseClock::kMaxPhases] = {};
  clock_->read(seconds);
  times.data_s += seconds[kData];
  times.forward_s += seconds[kForward];
  times.backward_s += seconds[kBackward];
  times.sync_s += seconds[kSync];
  times.norm_s += seconds[kNorm];
  times.optimizer_s += seconds[kOptimizer];
}

}  // namespace dpt
