// The host PhaseClock (devices/device.h): the CPU device's, and every device's whose work is done
// when its call returns. An interval is the steady_clock time between two laps, charged at once,
// so read() always hands over everything lapped so far.
#include <chrono>

#include "devices/device.h"
#include "devices/error.h"

namespace dpt {
namespace {

class HostPhaseClock : public PhaseClock {
 public:
  void lap(int phase) override {
    DPT_CHECK(phase >= kUncharged && phase < kMaxPhases) << "PhaseClock: no phase " << phase;
    const auto now = Clock::now();
    if (phase != kUncharged) seconds_[phase] += std::chrono::duration<double>(now - mark_).count();
    mark_ = now;
  }
  void read(double* seconds) override {
    for (int phase = 0; phase < kMaxPhases; ++phase) {
      seconds[phase] += seconds_[phase];
      seconds_[phase] = 0;
    }
  }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point mark_ = Clock::now();
  double seconds_[kMaxPhases] = {};
};

}  // namespace

std::unique_ptr<PhaseClock> make_host_phase_clock() { return std::make_unique<HostPhaseClock>(); }

}  // namespace dpt
