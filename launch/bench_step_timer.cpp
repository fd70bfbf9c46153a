// StepTimer (launch/bench_step_timer.h).
#include "launch/bench_step_timer.h"

#include <algorithm>
#include <chrono>

#include "core/random.h"
#include "devices/cuda_support.h"
#include "launch/bench_gemm.h"
#include "optim/lr_schedule.h"

namespace dpt {
namespace {

using Clock = std::chrono::steady_clock;

// Adds one measured window to a running total (unmeasured windows keep the first reason).
void add_energy(std::vector<EnergyResult>& total, const std::vector<EnergyResult>& window) {
  if (total.empty()) {
    total = window;
    return;
  }
  for (std::size_t i = 0; i < total.size() && i < window.size(); ++i) {
    if (!window[i].measured && total[i].measured) total[i] = window[i];
    if (!window[i].measured || !total[i].measured) continue;
    total[i].reading.joules += window[i].reading.joules;
    total[i].reading.seconds += window[i].reading.seconds;
  }
}

// The energy meters of a run on `device`: a GPU's NVML meter finds it by its PCI bus id, since a
// CUDA ordinal is not an NVML index (NVML ignores CUDA_VISIBLE_DEVICES, and its order need not be
// CUDA's); on the CPU, NVML's GPU 0 as before.
std::vector<std::unique_ptr<EnergyMeter>> energy_meters_for(const Device& device) {
  if (device.kind() != DeviceKind::kCuda) return default_energy_meters();
  const auto ordinal = static_cast<unsigned>(device.index());
  for (const GpuInfo& gpu : probe_gpus().gpus) {
    if (gpu.index == device.index()) return default_energy_meters(ordinal, gpu.pci_bus_id);
  }
  return default_energy_meters(ordinal);
}

}  // namespace

StepTimer::StepTimer(const proto::Config& config, Device& device, Communicator& comm,
                     int64_t total_steps)
    : config_(config),
      device_(device),
      model_(device_, config),
      optimizer_(make_optimizer(device_, config.optimizer(), model_.num_params())),
      loss_scaling_(config, false),
      step_(model_, *optimizer_, config, comm, loss_scaling_.scaler()),
      comm_(comm),
      total_steps_(total_steps),
      meters_(energy_meters_for(device_)) {
  const int64_t batch = config.train().batch_size();
  const int64_t micro =
      config.train().micro_batch_size() > 0 ? config.train().micro_batch_size() : batch;
  // Synthetic samples, fixed before timing so data generation is not measured as compute.
  samples_.resize(static_cast<std::size_t>(micro * model_.input_size()));
  RandomStream random(3, 0);
  for (float& x : samples_) x = static_cast<float>(random.uniform());
  run_.model_summary = model_.summary();
  run_.optimizer = optimizer_->name();
  run_.num_params = model_.num_params();
  run_.shapes = step_gemms(model_, batch, micro);
}

double StepTimer::step(Shard shard, StepTimes& phases) {
  const int64_t features = model_.input_size(), classes = model_.output_size();
  const BatchSource source = [&](int64_t, int64_t n, Tensor& inputs, int32_t* labels) {
    std::copy(samples_.begin(), samples_.begin() + n * features, inputs.data<float>());
    for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>(i % classes);
  };
  // As training: the next step's batch is prefetched during this one (on a GPU its upload
  // overlaps this step's compute), so the data phase is what training's is.
  const NextBatch next{next_step_ + 1, shard, source};
  const auto start = Clock::now();
  StepResult result = step_.compute_gradients(next_step_, config_.train().batch_size(), shard,
                                              source, false, &next);
  const double lr =
      lr_at(config_.optimizer().schedule(), config_.optimizer().lr(), next_step_, total_steps_);
  // As in training: a step whose fp16 gradients overflowed is not applied (the scaler has
  // already lowered its scale).
  if (!result.overflow) step_.apply(static_cast<float>(lr), result.times);
  // A GPU queues the optimizer and returns: the step ends when it has run (the CPU: at once), and
  // only then are its phases all read.
  device_.synchronize();
  step_.read_times(result.times);
  ++next_step_;
  phases.add(result.times);
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void StepTimer::run(int64_t count, bool measure) {
  const Shard shard = shard_of(config_.train().batch_size(), comm_.rank(), comm_.size());
  const LossScaler* scaler = loss_scaling_.scaler();
  const int64_t skipped_before = scaler ? scaler->skipped_steps() : 0;
  if (measure) start_meters(meters_);
  for (int64_t i = 0; i < count; ++i) {
    StepTimes phases;
    const double seconds = step(shard, phases);
    if (!measure) continue;
    step_times_.push_back(seconds);
    run_.phase_sum.add(phases);
  }
  if (!measure) return;
  add_energy(run_.energy, stop_meters(meters_));
  if (scaler) run_.loss_scale_skipped += scaler->skipped_steps() - skipped_before;
}

StepRun StepTimer::result() const {
  StepRun run = run_;
  run.p50 = percentile(step_times_, 0.5);
  run.p95 = percentile(step_times_, 0.95);
  run.p99 = percentile(step_times_, 0.99);
  if (const LossScaler* scaler = loss_scaling_.scaler()) run.loss_scale = scaler->scale();
  return run;
}

nlohmann::json phase_ms_json(const StepTimes& sum, double steps) {
  return {{"data", sum.data_s / steps * 1e3},         {"forward", sum.forward_s / steps * 1e3},
          {"backward", sum.backward_s / steps * 1e3}, {"grad_sync", sum.sync_s / steps * 1e3},
          {"grad_norm", sum.norm_s / steps * 1e3},    {"optimizer", sum.optimizer_s / steps * 1e3}};
}

}  // namespace dpt
