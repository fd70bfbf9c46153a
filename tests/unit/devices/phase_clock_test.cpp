// The host PhaseClock (the CPU device's): each lap charges the host time since the previous lap
// to its phase, kUncharged charges nothing, read() adds and forgets, a bad phase is refused; and
// FakePhaseClock, the stand-in other tests time GPUs with, charges its set durations.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "devices/cpu_device.h"
#include "devices/error.h"
#include "fake_gpu.h"

namespace dpt {
namespace {

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

TEST(HostPhaseClock, ChargesTheHostTimeBetweenLapsToTheLappedPhase) {
  CpuDevice device(CpuDeviceOptions{1});
  std::unique_ptr<PhaseClock> clock = device.create_phase_clock();
  // Each lap is bracketed by the test's own steady_clock readings: a lap's interval lies within
  // [after the opening lap returned, before the closing lap was called] and within [before the
  // opening lap was called, after the closing lap returned], whatever a loaded machine adds to
  // the sleeps, so the bounds below hold without slack.
  using Clock = std::chrono::steady_clock;
  std::vector<Clock::time_point> before, after;
  auto lap = [&](int phase) {
    before.push_back(Clock::now());
    clock->lap(phase);
    after.push_back(Clock::now());
  };
  auto between = [](Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
  };
  lap(PhaseClock::kUncharged);  // 0
  sleep_ms(30);
  lap(2);  // 1
  sleep_ms(30);
  lap(PhaseClock::kUncharged);  // 2: the gap before it is nobody's
  sleep_ms(10);
  lap(0);  // 3
  sleep_ms(10);
  lap(2);  // 4: phases add up
  double seconds[PhaseClock::kMaxPhases] = {};
  seconds[1] = 5.0;  // read() adds, it does not overwrite
  clock->read(seconds);
  // Phase 2: laps 0-1 and 3-4 (at least the 30 + 10 ms slept), never the gap 1-2.
  EXPECT_GE(seconds[2], between(after[0], before[1]) + between(after[3], before[4]));
  EXPECT_GE(seconds[2], 0.040);
  EXPECT_LE(seconds[2], between(before[0], after[1]) + between(before[3], after[4]));
  EXPECT_GE(seconds[0], between(after[2], before[3]));
  EXPECT_GE(seconds[0], 0.010);
  EXPECT_LE(seconds[0], between(before[2], after[3]));
  EXPECT_EQ(seconds[1], 5.0);
  for (int phase = 3; phase < PhaseClock::kMaxPhases; ++phase) EXPECT_EQ(seconds[phase], 0.0);
  // Read once: a second read adds nothing.
  double again[PhaseClock::kMaxPhases] = {};
  clock->read(again);
  for (double s : again) EXPECT_EQ(s, 0.0);
}

TEST(HostPhaseClock, RefusesAPhaseOutOfRange) {
  std::unique_ptr<PhaseClock> clock = make_host_phase_clock();
  EXPECT_THROW(clock->lap(PhaseClock::kMaxPhases), Error);
  EXPECT_THROW(clock->lap(-2), Error);
}

TEST(FakePhaseClock, ChargesTheSetDurationsNotTheHostTime) {
  FakeGpu gpu;
  gpu.phase_seconds = {0.5, 0.25};
  std::unique_ptr<PhaseClock> clock = gpu.create_phase_clock();
  clock->lap(PhaseClock::kUncharged);
  sleep_ms(5);
  clock->lap(0);
  clock->lap(1);
  clock->lap(1);
  clock->lap(3);  // no duration set: 0
  double seconds[PhaseClock::kMaxPhases] = {};
  clock->read(seconds);
  EXPECT_EQ(seconds[0], 0.5);
  EXPECT_EQ(seconds[1], 0.5);
  EXPECT_EQ(seconds[3], 0.0);
}

}  // namespace
}  // namespace dpt
