// StragglerMonitor: window means all-gathered as float64 pairs; the median is robust to the one
// slow rank it is meant to find.
#include "launch/straggler.h"

#include <algorithm>
#include <cmath>

namespace dpt {

RankWindow make_window(const std::vector<double>& gathered, double threshold) {
  RankWindow window;
  const std::size_t n = gathered.size() / 2;
  for (std::size_t r = 0; r < n; ++r) {
    window.compute_ms.push_back(gathered[2 * r]);
    window.wait_ms.push_back(gathered[2 * r + 1]);
  }
  if (n == 0) return window;
  std::vector<double> sorted = window.compute_ms;
  std::sort(sorted.begin(), sorted.end());
  // Lower median: with two ranks it is the faster one, so a slow rank of two is still seen.
  const double median = sorted[(n - 1) / 2];
  window.slowest =
      static_cast<int>(std::max_element(window.compute_ms.begin(), window.compute_ms.end()) -
                       window.compute_ms.begin());
  window.ratio = median > 0 ? window.compute_ms[window.slowest] / median : 1.0;
  window.straggler = n > 1 && window.ratio > threshold;
  return window;
}

StragglerMonitor::StragglerMonitor(Communicator& comm, int64_t every_steps, double threshold)
    : comm_(comm), every_steps_(every_steps), threshold_(threshold) {}

std::optional<RankWindow> StragglerMonitor::record(int64_t step, double step_s, double wait_s) {
  const double compute = std::max(0.0, step_s - wait_s) * 1e3, wait = wait_s * 1e3;
  compute_ms_.push_back(static_cast<float>(compute));
  total_wait_ms_ += wait;
  if (window_first_ < 0) window_first_ = step - 1;
  window_compute_ += compute;
  window_wait_ += wait;
  ++window_steps_;
  if (every_steps_ <= 0 || step % every_steps_ != 0) return std::nullopt;
  std::vector<double> mine = {window_compute_ / window_steps_, window_wait_ / window_steps_};
  std::vector<double> all(2 * static_cast<std::size_t>(comm_.size()));
  comm_.all_gather(mine.data(), all.data(), 2, DType::kF64);
  RankWindow window = make_window(all, threshold_);
  window.first_step = window_first_;
  window.last_step = step;
  window_first_ = -1;
  window_compute_ = window_wait_ = 0;
  window_steps_ = 0;
  return window;
}

std::vector<RankStats> StragglerMonitor::final_stats() {
  double mine[3] = {0, 0, 0};
  if (!compute_ms_.empty()) {
    std::vector<float> sorted = compute_ms_;
    std::sort(sorted.begin(), sorted.end());
    double sum = 0;
    for (float v : sorted) sum += v;
    const std::size_t n = sorted.size();
    mine[0] = sum / static_cast<double>(n);
    // Nearest-rank p99.
    const std::size_t rank = static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(n)));
    mine[1] = sorted[std::max<std::size_t>(rank, 1) - 1];
    mine[2] = total_wait_ms_ / static_cast<double>(n);
  }
  std::vector<double> all(3 * static_cast<std::size_t>(comm_.size()));
  comm_.all_gather(mine, all.data(), 3, DType::kF64);
  std::vector<RankStats> stats;
  for (int r = 0; r < comm_.size(); ++r) {
    stats.push_back({all[3 * r], all[3 * r + 1], all[3 * r + 2]});
  }
  return stats;
}

}  // namespace dpt
