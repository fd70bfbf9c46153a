// launch/bench_balance.h.
#include "launch/bench_balance.h"

#include <fmt/core.h>

#include <string>
#include <vector>

#include "launch/balance.h"
#include "launch/bench_step_timer.h"

namespace dpt {
namespace {

// Each step's time on the slowest rank (steps end together, but each rank's clock sees its own).
std::vector<double> slowest_per_step(Communicator& comm, std::vector<double> times) {
  comm.all_reduce(times.data(), times.data(), times.size(), DType::kF64, ReduceOp::kMax);
  return times;
}

std::string joined(const std::vector<int64_t>& values) {
  std::string text;
  for (int64_t v : values) text += (text.empty() ? "" : ", ") + std::to_string(v);
  return text;
}

}  // namespace

nlohmann::json compare_balance(Communicator& comm, const proto::Config& config, int64_t batch,
                               int64_t warmup, int64_t steps, const StepTimes& equal_phases,
                               const OneStep& one_step) {
  const std::vector<int64_t> equal = equal_shares(batch, comm.size());
  const double mine[2] = {static_cast<double>(equal[static_cast<std::size_t>(comm.rank())]) *
                              static_cast<double>(steps),
                          per_sample_seconds(equal_phases)};
  std::vector<double> measured(2 * static_cast<std::size_t>(comm.size()));
  comm.all_gather(mine, measured.data(), 2, DType::kF64);
  std::vector<double> rates;
  for (int r = 0; r < comm.size(); ++r) rates.push_back(measured[2 * r] / measured[2 * r + 1]);
  const std::vector<int64_t> shares = apportion(batch, rates);
  const Shard equal_shard = shard_in(equal, comm.rank()), balanced = shard_in(shares, comm.rank());
  StepTimes unused;
  for (int64_t i = 0; i < warmup; ++i) one_step(balanced, unused);
  std::vector<double> equal_times, balanced_times;
  for (int64_t i = 0; i < steps; ++i) {
    equal_times.push_back(one_step(equal_shard, unused));
    balanced_times.push_back(one_step(balanced, unused));
  }
  const std::vector<double> a = slowest_per_step(comm, equal_times);
  const std::vector<double> b = slowest_per_step(comm, balanced_times);
  const double a50 = percentile(a, 0.5), b50 = percentile(b, 0.5);
  const proto::FaultInjection& fault = config.fault_injection();
  const bool simulated = fault.kind() == proto::FAULT_SLOW_SAMPLES && fault.rank() >= 0;
  nlohmann::json json = {{"samples_per_s", rates},
                         {"equal",
                          {{"shares", equal},
                           {"step_time_p50_ms", a50 * 1e3},
                           {"step_time_p99_ms", percentile(a, 0.99) * 1e3}}},
                         {"throughput",
                          {{"shares", shares},
                           {"step_time_p50_ms", b50 * 1e3},
                           {"step_time_p99_ms", percentile(b, 0.99) * 1e3}}},
                         {"equal_over_throughput", a50 / b50},
                         {"simulated_slow_rank", nullptr}};
  if (simulated) {
    json["simulated_slow_rank"] = {{"rank", fault.rank()},
                                   {"us_per_sample", fault.slow_us_per_sample()}};
  }
  if (comm.rank() != 0) return json;
  fmt::print("balance over {} ranks{} (step time: the slowest rank's, p50, steps alternating)\n",
             comm.size(),
             simulated ? fmt::format(", simulated: rank {} sleeps {} us per sample", fault.rank(),
                                     fault.slow_us_per_sample())
                       : "");
  std::string rate_text;
  for (double rate : rates) {
    rate_text += (rate_text.empty() ? "" : ", ") + fmt::format("{:.0f}", rate);
  }
  fmt::print("  samples/s per rank (with equal shares)   {}\n", rate_text);
  fmt::print("  equal shares      {:<22} {:>10.2f} ms\n", joined(equal), a50 * 1e3);
  fmt::print("  throughput shares {:<22} {:>10.2f} ms   equal / throughput {:.2f}\n",
             joined(shares), b50 * 1e3, a50 / b50);
  return json;
}

}  // namespace dpt
