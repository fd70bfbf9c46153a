// Balancer: measured rows and seconds all-gathered as float64 pairs; shares by largest
// remainder, computed by the same code from the same numbers on every rank.
#include "launch/balance.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "devices/error.h"

namespace dpt {
namespace {

template <typename T>
std::string join(const std::vector<T>& values, const char* format) {
  std::string text;
  for (const T& value : values) {
    text += (text.empty() ? "" : ", ") + fmt::format(fmt::runtime(format), value);
  }
  return text;
}

}  // namespace

std::vector<int64_t> apportion(int64_t total, const std::vector<double>& weights) {
  const std::size_t n = weights.size();
  DPT_CHECK(n > 0 && total >= 0) << "balance: cannot split " << total << " rows between " << n
                                 << " ranks";
  double sum = 0;
  for (std::size_t r = 0; r < n; ++r) {
    DPT_CHECK(std::isfinite(weights[r]) && weights[r] > 0)
        << "balance: rank " << r << " has weight " << weights[r]
        << " (samples/s must be finite and > 0)";
    sum += weights[r];
  }
  DPT_CHECK(std::isfinite(sum)) << "balance: the ranks' weights sum to " << sum;
  std::vector<int64_t> counts(n);
  std::vector<double> remainders(n);
  int64_t assigned = 0;
  for (std::size_t r = 0; r < n; ++r) {
    const double quota = static_cast<double>(total) * (weights[r] / sum);
    counts[r] = std::min(total, static_cast<int64_t>(std::floor(quota)));
    remainders[r] = quota - static_cast<double>(counts[r]);
    assigned += counts[r];
  }
  // The rows that rounding down left over go to the largest remainders (ties: the lower rank).
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return remainders[a] > remainders[b]; });
  // (The floors never sum past total: the quotas sum to total within far less than one row.)
  for (std::size_t i = 0; assigned < total; ++i, ++assigned) ++counts[order[i % n]];
  // Every rank computes at least one row when there are enough: a rank with none takes one from
  // the rank with the most (which has at least two, since total >= n).
  if (total >= static_cast<int64_t>(n)) {
    for (std::size_t r = 0; r < n; ++r) {
      if (counts[r] > 0) continue;
      const auto most = std::max_element(counts.begin(), counts.end());
      --*most;
      counts[r] = 1;
    }
  }
  return counts;
}

std::vector<int64_t> equal_shares(int64_t batch, int world) {
  std::vector<int64_t> counts;
  for (int r = 0; r < world; ++r) {
    const Shard shard = shard_of(batch, r, world);
    counts.push_back(shard.end - shard.begin);
  }
  return counts;
}

Shard shard_in(const std::vector<int64_t>& counts, int rank) {
  const int64_t begin = std::accumulate(counts.begin(), counts.begin() + rank, int64_t{0});
  return {begin, begin + counts[static_cast<std::size_t>(rank)]};
}

std::string describe(const BalanceDecision& d) {
  const int64_t batch = std::accumulate(d.shares.begin(), d.shares.end(), int64_t{0});
  return fmt::format(
      "balance: steps {}-{} measured {} samples/s per rank; shares {} of {} rows{}",
      d.first_step + 1, d.last_step, join(d.samples_per_s, "{:.0f}"), join(d.shares, "{}"), batch,
      d.previous == d.shares ? " (unchanged)" : " (were " + join(d.previous, "{}") + ")");
}

Balancer::Balancer(const proto::CommConfig& config, int world, int64_t batch, int64_t first_step,
                   const std::vector<int64_t>& restored)
    : enabled_(config.balance() == proto::BALANCE_THROUGHPUT && world > 1),
      world_(world),
      batch_(batch),
      rebalance_every_(config.rebalance_every_steps()) {
  set_shares(equal_shares(batch, world));
  if (!enabled_) {
    if (!restored.empty() && world > 1) {
      notes_.push_back("balance: not using the checkpoint's shares " + join(restored, "{}") +
                       " (comm.balance is BALANCE_EQUAL)");
    }
    return;
  }
  measure_after_ = first_step + config.balance_warmup_steps();
  decide_at_ = measure_after_ + config.balance_steps();
  if (restored.empty()) return;
  const bool fits =
      restored.size() == static_cast<std::size_t>(world) &&
      std::accumulate(restored.begin(), restored.end(), int64_t{0}) == batch &&
      std::all_of(restored.begin(), restored.end(), [](int64_t rows) { return rows > 0; });
  if (!fits) {
    notes_.push_back(fmt::format(
        "balance: the checkpoint's shares {} are for {} workers, this run has {}; measuring again",
        join(restored, "{}"), restored.size(), world));
    return;
  }
  set_shares(restored);
  balanced_ = true;
  decide_at_ = rebalance_every_ > 0 ? measure_after_ + rebalance_every_ : -1;
  notes_.push_back("balance: continuing with the checkpoint's shares " + join(restored, "{}") +
                   " of " + std::to_string(batch) + " rows");
}

void Balancer::set_shares(std::vector<int64_t> shares) {
  shares_ = std::move(shares);
  offsets_.assign(1, 0);
  for (int64_t rows : shares_) offsets_.push_back(offsets_.back() + rows);
}

Shard Balancer::shard(int64_t rows, int rank) const {
  const auto r = static_cast<std::size_t>(rank);
  if (rows == batch_) return {offsets_[r], offsets_[r + 1]};
  if (!balanced_) return shard_of(rows, rank, world_);
  return shard_in(apportion(rows, std::vector<double>(shares_.begin(), shares_.end())), rank);
}

std::optional<BalanceDecision> Balancer::record(Communicator& comm, int64_t step, double seconds,
                                                int64_t rows) {
  if (decide_at_ < 0) return std::nullopt;
  if (step > measure_after_) {
    seconds_ += seconds;
    rows_ += static_cast<double>(rows);
  }
  if (step != decide_at_) return std::nullopt;
  const double mine[2] = {rows_, seconds_};
  std::vector<double> all(2 * static_cast<std::size_t>(world_));
  comm.all_gather(mine, all.data(), 2, DType::kF64);
  BalanceDecision decision;
  decision.first_step = measure_after_;
  decision.last_step = step;
  decision.previous = shares_;
  for (int r = 0; r < world_; ++r) {
    const double measured_rows = all[2 * r], measured_s = all[2 * r + 1];
    DPT_CHECK(measured_rows > 0 && measured_s > 0 && std::isfinite(measured_s))
        << "balance: rank " << r << " computed " << measured_rows << " rows in " << measured_s
        << " s over steps " << measure_after_ + 1 << "-" << step
        << "; its speed cannot be measured";
    decision.samples_per_s.push_back(measured_rows / measured_s);
  }
  set_shares(apportion(batch_, decision.samples_per_s));
  decision.shares = shares_;
  balanced_ = true;
  seconds_ = rows_ = 0;
  measure_after_ = step;
  decide_at_ = rebalance_every_ > 0 ? step + rebalance_every_ : -1;
  return decision;
}

}  // namespace dpt
