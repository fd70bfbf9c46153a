// The timed training step of `dpt bench step`: one device's model, optimizer and TrainStep on
// synthetic data of the config's shapes, run in blocks of steps so that two precisions can take
// turns (on a shared machine both then see the same background load and their ratio means
// something), with step-time percentiles, the phase split and energy of the measured steps. Any
// Device: on a GPU each step ends with a synchronize, so a step's time is its whole work and its
// phases (the device's PhaseClock) include its optimizer. With device.precision FP16 the step
// scales its loss as `dpt train` does (launch/loss_scaling.h): the unscale-and-check pass is
// timed, and a step whose gradients overflowed applies no update.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "core/config.pb.h"
#include "core/gemm.h"
#include "core/model.h"
#include "devices/device.h"
#include "devices/energy.h"
#include "launch/loss_scaling.h"
#include "launch/stats.h"
#include "launch/train_step.h"
#include "optim/optimizer.h"

namespace dpt {

struct StepRun {
  std::string model_summary, optimizer;
  int64_t num_params = 0;
  std::vector<GemmShape> shapes;     // the step's GEMMs
  double p50 = 0, p95 = 0, p99 = 0;  // seconds per step over the measured steps
  StepTimes phase_sum;               // summed over the measured steps
  std::vector<EnergyResult> energy;
  // fp16 loss scaling (device.precision FP16; both 0 otherwise): the scale after the measured
  // steps, and how many of them it skipped for inf/NaN gradients (no optimizer update).
  double loss_scale = 0;
  int64_t loss_scale_skipped = 0;
};

class StepTimer {
 public:
  // A fresh model of `config` on `device` (not owned; must outlive this); `total_steps` sizes the
  // LR schedule.
  StepTimer(const proto::Config& config, Device& device, Communicator& comm, int64_t total_steps);
  // Runs `count` steps with equal shares; when `measure`, records their times, phases and energy.
  void run(int64_t count, bool measure);
  // Runs one step computing `shard` of the global batch, recording nothing; returns its seconds
  // and adds its phases to `phases`.
  double step(Shard shard, StepTimes& phases);
  // p50/p99 over every measured step so far (at least one).
  StepRun result() const;
  // The model's flat parameters (tests check which steps updated them).
  const Tensor& params() const { return model_.params(); }

 private:
  const proto::Config& config_;
  Device& device_;
  Model model_;
  std::unique_ptr<Optimizer> optimizer_;
  LossScaling loss_scaling_;  // before step_, which holds its scaler
  TrainStep step_;
  Communicator& comm_;
  int64_t total_steps_;
  std::vector<std::unique_ptr<EnergyMeter>> meters_;
  std::vector<float> samples_;
  int64_t next_step_ = 0;
  std::vector<double> step_times_;
  StepRun run_;
};

// {"data", "forward", "backward", "grad_sync", "grad_norm", "optimizer"}: milliseconds per step of
// `sum`, phase times summed over `steps` steps (the JSON of both benches).
nlohmann::json phase_ms_json(const StepTimes& sum, double steps);

}  // namespace dpt
