// The measurements behind `dpt tune`, taken by running the real training step (launch/train_step)
// on this worker's device: memory from the device's allocation counters
// (Device::memory_counters), time from the clock around whole optimizer steps. Memory and timing
// use synthetic inputs of the config's shapes (as `dpt bench step` does); the LR range test uses
// the training set in the trainer's order. Collective under mpirun: each answer is the worst
// rank's (most bytes, slowest median step).
#pragma once

#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "core/config.pb.h"
#include "core/dataset.h"
#include "core/model.h"
#include "launch/train_step.h"
#include "launch/tuner.h"
#include "optim/optimizer.h"

namespace dpt {

struct ProbeStep;  // tune_probe.cpp: a training run's model, optimizer, loss scaling and step

class StepProbe : public TuneProbe {
 public:
  // `config` validated; `train_set` is read by the LR range test only. Nothing is owned: all must
  // outlive the probe. `device` should be idle: its peak counter is reset by every measurement.
  StepProbe(const proto::Config& config, Device& device, Communicator& comm,
            const Dataset& train_set);
  ~StepProbe() override;
  int64_t peak_bytes(int64_t batch, int64_t eval_batch) override;
  BatchTiming time_steps(int64_t batch) override;
  void start_lr_test(int64_t global_batch, int64_t micro) override;
  double lr_test_step(double lr) override;

 private:
  // The config with train.batch_size = global_batch and train.micro_batch_size = micro.
  proto::Config config_at(int64_t global_batch, int64_t micro) const;
  // Fills rows [0, n) of `inputs` and labels[0, n) from the synthetic block, starting at `row`.
  void synthetic(int64_t row, int64_t n, Tensor& inputs, int32_t* labels) const;
  // synthetic() as the BatchSource a TrainStep loads from.
  BatchSource synthetic_source() const;
  double worst(double value);

  const proto::Config& config_;
  Device& device_;
  Communicator& comm_;
  const Dataset& train_set_;
  std::vector<float> block_;  // synthetic input rows, reused cyclically
  // The LR range test in progress.
  proto::Config lr_config_;
  std::unique_ptr<ProbeStep> lr_probe_;
  std::vector<int64_t> order_;
  int64_t lr_step_ = 0;
};

}  // namespace dpt
