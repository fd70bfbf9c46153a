// The timing loop of `dpt bench inference`, reusable for any forward pass: functions that each
// run one forward of a given batch are called in turn, call by call, untimed warm-up first, then
// timed until both a count and a duration are reached; each gets the median and 99th percentile
// of its calls. Alternating call by call means load from other processes on a shared machine
// hits every candidate alike, so their ratios stay meaningful. Asserts nothing about time.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace dpt {

struct TimingOptions {
  int64_t warmup = 3;         // untimed calls of each candidate first
  int64_t min_calls = 10;     // timed calls of each candidate, at least
  double min_seconds = 1.0;   // and at least this long in all
  int64_t max_calls = 20000;  // but never more calls of each than this
};

struct Timing {
  std::vector<double> seconds;  // every timed call, in order
  double p50() const;
  double p99() const;
};

using Forward = std::function<void(int64_t batch)>;

// Times each candidate's forward(batch), alternating: warm-up rounds, then rounds of one timed
// call of each candidate until `options` is satisfied. Returns one Timing per candidate.
std::vector<Timing> time_alternating(const std::vector<Forward>& candidates, int64_t batch,
                                     const TimingOptions& options);

}  // namespace dpt
