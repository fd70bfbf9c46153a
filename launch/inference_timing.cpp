// The forward-pass timing loop (see inference_timing.h), on the steady clock.
#include "launch/inference_timing.h"

#include "launch/stats.h"

#include <algorithm>
#include <chrono>

namespace dpt {

double Timing::p50() const { return percentile(seconds, 0.5); }
double Timing::p99() const { return percentile(seconds, 0.99); }

std::vector<Timing> time_alternating(const std::vector<Forward>& candidates, int64_t batch,
                                     const TimingOptions& options) {
  using Clock = std::chrono::steady_clock;
  std::vector<Timing> timings(candidates.size());
  for (int64_t i = 0; i < options.warmup; ++i) {
    for (const Forward& forward : candidates) forward(batch);
  }
  const auto begin = Clock::now();
  for (int64_t calls = 1; calls <= options.max_calls; ++calls) {
    for (std::size_t c = 0; c < candidates.size(); ++c) {
      const auto start = Clock::now();
      candidates[c](batch);
      timings[c].seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
    if (calls >= options.min_calls && elapsed >= options.min_seconds) break;
  }
  return timings;
}

}  // namespace dpt
