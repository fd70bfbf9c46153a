// Straggler detection across ranks (always on with more than one worker): each rank records how
// long every step computed (its step time minus the time it waited for its peers in collectives)
// and how long it waited. Every `every_steps` steps the ranks all-gather their window means; the
// slowest rank's compute time over the median says who holds the others up, and by how much. At
// the end, each rank's mean and p99 step time over the whole run. The trainer passes the host's
// step time and the step's sync phase as its device spent it (StepTimes; on a GPU the compute
// stream's wait for the gradient sync, from timing events).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "comm/communicator.h"

namespace dpt {

// One window's per-rank means, identical on every rank.
struct RankWindow {
  int64_t first_step = 0, last_step = 0;  // steps (first_step, last_step]
  std::vector<double> compute_ms;         // per rank: mean compute time per step
  std::vector<double> wait_ms;            // per rank: mean time waiting for peers per step
  int slowest = 0;                        // rank with the largest compute_ms
  double ratio = 1.0;                     // compute_ms[slowest] / median of compute_ms
  bool straggler = false;                 // ratio > threshold
};

// Whole-run statistics of one rank.
struct RankStats {
  double mean_ms = 0, p99_ms = 0, wait_mean_ms = 0;
};

class StragglerMonitor {
 public:
  // every_steps 0 disables the windows (final_stats still works).
  StragglerMonitor(Communicator& comm, int64_t every_steps, double threshold);
  // After each step on every rank: this rank's step time and the part of it spent waiting.
  // Every every_steps-th call is a collective and returns the window.
  std::optional<RankWindow> record(int64_t step, double step_s, double wait_s);
  // A collective: every rank's statistics over all recorded steps, by rank.
  std::vector<RankStats> final_stats();

 private:
  Communicator& comm_;
  int64_t every_steps_;
  double threshold_;
  int64_t window_first_ = -1;
  double window_compute_ = 0, window_wait_ = 0;
  int64_t window_steps_ = 0;
  std::vector<float> compute_ms_;  // every step's, for the final p99
  double total_wait_ms_ = 0;
};

// The window from gathered {compute_ms, wait_ms} pairs, rank-major (exposed for tests).
RankWindow make_window(const std::vector<double>& gathered, double threshold);

}  // namespace dpt
