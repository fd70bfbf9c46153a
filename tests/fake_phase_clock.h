// A PhaseClock whose laps take set durations, for CPU-only tests of code that reports a device's
// phase times (launch/train_step.h and what consumes its StepTimes): every lap(phase) charges
// seconds[phase] whatever the host did meanwhile, so a test can tell the device's times from
// host laps. FakeGpu (fake_gpu.h) hands one out; CpuWithFakeClock is a CPU device that computes
// as usual but times with one, so a whole training step or run can be checked.
#pragma once

#include <vector>

#include "devices/cpu_device.h"
#include "devices/device.h"

namespace dpt {

class FakePhaseClock : public PhaseClock {
 public:
  // `seconds`: the duration of one lap of each phase (missing phases: 0); read while lapping, so
  // a test may change it between steps. Must outlive the clock.
  explicit FakePhaseClock(const std::vector<double>& seconds) : seconds_(seconds) {}
  void lap(int phase) override {
    if (phase < 0 || phase >= kMaxPhases) return;  // kUncharged
    ++laps[phase];
    if (phase < static_cast<int>(seconds_.size())) pending_[phase] += seconds_[phase];
  }
  void read(double* seconds) override {
    for (int phase = 0; phase < kMaxPhases; ++phase) {
      seconds[phase] += pending_[phase];
      pending_[phase] = 0;
    }
  }
  int laps[kMaxPhases] = {};  // per phase, since construction

 private:
  const std::vector<double>& seconds_;
  double pending_[kMaxPhases] = {};
};

// A CpuDevice (one thread, oneDNN) whose phase clock is a FakePhaseClock over `phase_seconds`.
class CpuWithFakeClock : public CpuDevice {
 public:
  explicit CpuWithFakeClock(std::vector<double> seconds)
      : CpuDevice(CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn}),
        phase_seconds(std::move(seconds)) {}
  std::unique_ptr<PhaseClock> create_phase_clock() override {
    return std::make_unique<FakePhaseClock>(phase_seconds);
  }
  std::vector<double> phase_seconds;
};

}  // namespace dpt
