// StepProbe: each measurement builds the model, optimizer and step from scratch, exactly as a
// training run would, so the counted bytes are what a run at that batch allocates.
#include "launch/tune_probe.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "core/random.h"
#include "devices/error.h"
#include "launch/loss_scaling.h"
#include "launch/trainer.h"

namespace dpt {
namespace {

using Clock = std::chrono::steady_clock;

// Rows in the synthetic block; rows beyond it repeat it.
constexpr int64_t kBlockRows = 64;
// Untimed steps before timing: the first step grows every buffer.
constexpr int64_t kUntimedSteps = 2;
// fp16: overflowed steps tried before an applied one, at most (the loss scale halves on each:
// from the default 65536 to 1 in 16).
constexpr int64_t kMaxOverflowedSteps = 17;

int64_t num_classes(const proto::Config& config) {
  const proto::ModelConfig& model = config.model();
  return model.layer(model.layer_size() - 1).dense().units();
}

// The model a training run builds: its gradient buffer in the communicator's shared memory when
// there is some (launch/training_run.cpp), so probes time the all-reduce training will run and
// count the device memory it will use.
ModelOptions shared_grads(Communicator& comm) {
  ModelOptions options;
  options.grad_memory = [&comm](std::size_t bytes) { return comm.allocate_shared(bytes); };
  return options;
}

}  // namespace

// What a training run at `config` builds before its first step: model, optimizer, loss scaling
// (device.precision FP16: the unscale-and-check pass is part of the step) and step.
struct ProbeStep {
  ProbeStep(Device& device, const proto::Config& config, Communicator& comm)
      : model(device, config, shared_grads(comm)),
        optimizer(make_optimizer(device, config.optimizer(), model.num_params())),
        loss_scaling(config, false),
        step(model, *optimizer, config, comm, loss_scaling.scaler()) {}
  // As training: a step whose fp16 gradients overflowed applies no update.
  void apply(StepResult& result, double lr) {
    if (!result.overflow) step.apply(static_cast<float>(lr), result.times);
  }
  Model model;
  std::unique_ptr<Optimizer> optimizer;
  LossScaling loss_scaling;
  TrainStep step;
};

StepProbe::~StepProbe() = default;

StepProbe::StepProbe(const proto::Config& config, Device& device, Communicator& comm,
                     const Dataset& train_set)
    : config_(config), device_(device), comm_(comm), train_set_(train_set) {
  block_.resize(static_cast<std::size_t>(kBlockRows * config.model().input_size()));
  RandomStream random(3, 0);
  for (float& x : block_) x = static_cast<float>(random.uniform());
}

proto::Config StepProbe::config_at(int64_t global_batch, int64_t micro) const {
  proto::Config config = config_;
  config.mutable_train()->set_batch_size(global_batch);
  config.mutable_train()->set_micro_batch_size(micro);
  return config;
}

void StepProbe::synthetic(int64_t row, int64_t n, Tensor& inputs, int32_t* labels) const {
  const int64_t width = config_.model().input_size();
  const int64_t classes = num_classes(config_);
  float* out = inputs.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const float* source = block_.data() + ((row + i) % kBlockRows) * width;
    std::copy(source, source + width, out + i * width);
    labels[i] = static_cast<int32_t>((row + i) % classes);
  }
}

BatchSource StepProbe::synthetic_source() const {
  return [this](int64_t row, int64_t n, Tensor& inputs, int32_t* labels) {
    synthetic(row, n, inputs, labels);
  };
}

double StepProbe::worst(double value) {
  if (comm_.size() > 1) comm_.all_reduce(&value, &value, 1, DType::kF64, ReduceOp::kMax);
  return value;
}

int64_t StepProbe::peak_bytes(int64_t batch, int64_t eval_batch) {
  const int64_t global = batch * comm_.size();
  const proto::Config config = config_at(global, 0);
  device_.reset_peak();
  const int64_t base = device_.memory_counters().current_bytes;
  {
    ProbeStep probe(device_, config, comm_);
    const BatchSource source = synthetic_source();
    // One applied step (fp16: steps whose gradients overflow skip the norm and the optimizer,
    // and their scratch, so they run until one is applied; the same steps on every rank).
    for (int64_t s = 0; s < kMaxOverflowedSteps; ++s) {
      StepResult result = probe.step.compute_gradients(
          s, global, shard_of(global, comm_.rank(), comm_.size()), source);
      probe.apply(result, config.optimizer().lr());
      if (!result.overflow) break;
    }
    if (eval_batch > 0) {
      // What evaluate() adds after training steps: its input batch and a forward pass.
      BatchLoader loader(device_, eval_batch, probe.model.input_size(), probe.model.dtype());
      probe.model.forward(loader.take({0, 0, eval_batch}, source).inputs, Pass{});
    }
  }
  const int64_t peak = device_.memory_counters().peak_bytes - base;
  return static_cast<int64_t>(worst(static_cast<double>(peak)));
}

BatchTiming StepProbe::time_steps(int64_t batch) {
  const int64_t global = batch * comm_.size();
  const proto::Config config = config_at(global, 0);
  device_.reset_peak();
  const int64_t base = device_.memory_counters().current_bytes;
  std::vector<double> seconds;
  {
    ProbeStep probe(device_, config, comm_);
    const BatchSource source = synthetic_source();
    // fp16: a step whose gradients overflowed applies no update (no optimizer), so it is left
    // out of the timing while the loss scale settles, with at most timing_steps extra steps.
    // Overflow is decided after the gradient sum, so every rank runs the same steps.
    const int64_t wanted = config.tune().timing_steps();
    std::vector<double> every;  // including overflowed steps: used when no step was clean
    for (int64_t s = 0;
         s < kUntimedSteps + 2 * wanted && static_cast<int64_t>(seconds.size()) < wanted; ++s) {
      const auto start = Clock::now();
      StepResult result = probe.step.compute_gradients(
          s, global, shard_of(global, comm_.rank(), comm_.size()), source);
      probe.apply(result, config.optimizer().lr());
      if (s < kUntimedSteps) continue;
      every.push_back(std::chrono::duration<double>(Clock::now() - start).count());
      if (!result.overflow) seconds.push_back(every.back());
    }
    if (seconds.empty()) seconds = every;
  }
  std::sort(seconds.begin(), seconds.end());
  BatchTiming timing;
  timing.batch = batch;
  timing.step_s = worst(seconds[seconds.size() / 2]);
  timing.samples_per_s = static_cast<double>(global) / timing.step_s;
  timing.peak_bytes =
      static_cast<int64_t>(worst(static_cast<double>(device_.memory_counters().peak_bytes - base)));
  return timing;
}

void StepProbe::start_lr_test(int64_t global_batch, int64_t micro) {
  DPT_CHECK(global_batch >= 1 && global_batch <= train_set_.size)
      << "start_lr_test: global batch " << global_batch << " outside [1, " << train_set_.size
      << "]";
  lr_probe_.reset();
  const bool accumulate = micro * comm_.size() < global_batch;
  lr_config_ = config_at(global_batch, accumulate ? micro : 0);
  lr_probe_ = std::make_unique<ProbeStep>(device_, lr_config_, comm_);
  lr_step_ = 0;
}

double StepProbe::lr_test_step(double lr) {
  DPT_CHECK(lr_probe_ != nullptr) << "lr_test_step: start_lr_test was not called";
  const int64_t batch = lr_config_.train().batch_size();
  const int64_t per_epoch = train_set_.size / batch;
  const int64_t epoch = lr_step_ / per_epoch;
  if (lr_step_ % per_epoch == 0) order_ = epoch_order(lr_config_, train_set_.size, epoch);
  const int64_t first = (lr_step_ % per_epoch) * batch;
  const Normalization normalization = normalization_from(lr_config_.data());
  StepResult result = lr_probe_->step.compute_gradients(
      lr_step_, batch, shard_of(batch, comm_.rank(), comm_.size()),
      [&](int64_t row, int64_t n, Tensor& inputs, int32_t* labels) {
        gather_batch(train_set_, order_.data() + first + row, n, normalization, inputs, labels);
      });
  ++lr_step_;
  // As training (training_loop.cpp): an fp16 overflow is the loss scale's problem, not the LR's
  // (its grad_norm is NaN by design): the step is skipped and the scale lowered; only a streak of
  // overflows at the scale's floor (kNonFinite) counts as divergence.
  if (!std::isfinite(result.loss) || (!result.overflow && !std::isfinite(result.grad_norm))) {
    return std::numeric_limits<double>::infinity();
  }
  if (result.overflow) {
    try {
      lr_probe_->loss_scaling.skipped(lr_step_ - 1);
    } catch (const Error& error) {
      if (error.kind() != ErrorKind::kNonFinite) throw;
      return std::numeric_limits<double>::infinity();
    }
    return result.loss;
  }
  lr_probe_->apply(result, lr);
  return result.loss;
}

}  // namespace dpt
