// launch/comm_probe.h. Rank r's element i is (i + 7r) mod 251: small integers, exact in float32
// sums over thousands of ranks, and a block at the wrong offset reads wrong.
#include "launch/comm_probe.h"

#include <algorithm>
#include <chrono>

#include "devices/error.h"

namespace dpt {
namespace {

using Clock = std::chrono::steady_clock;

float value_at(std::size_t i, int rank) {
  return static_cast<float>((i + 7 * static_cast<std::size_t>(rank)) % 251);
}

// One call after a barrier; returns its seconds and counts wrong elements into `wrong`.
double timed_call(Communicator& comm, std::vector<float>& work, std::size_t count,
                  const std::vector<float>& expected, int64_t& wrong) {
  for (std::size_t i = 0; i < count; ++i) work[i] = value_at(i, comm.rank());
  comm.barrier();
  const auto start = Clock::now();
  comm.all_reduce(work.data(), work.data(), count, DType::kF32, ReduceOp::kSum);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (std::size_t i = 0; i < count; ++i) wrong += work[i] != expected[i % 251];
  return seconds;
}

}  // namespace

std::vector<AllReduceTiming> measure_all_reduce(Communicator& comm, uint64_t min_bytes,
                                                uint64_t max_bytes, double seconds_per_size) {
  DPT_CHECK(min_bytes >= 4 && min_bytes <= max_bytes) << "measure_all_reduce: bad size range";
  const int n = comm.size();
  std::vector<float> expected(251, 0.0f);
  for (std::size_t j = 0; j < expected.size(); ++j) {
    for (int r = 0; r < n; ++r) expected[j] += value_at(j, r);
  }
  std::vector<float> work(max_bytes / sizeof(float));
  std::vector<AllReduceTiming> rows;
  for (uint64_t bytes = min_bytes; bytes <= max_bytes; bytes *= 2) {
    const std::size_t count = bytes / sizeof(float);
    int64_t wrong = 0;
    // One untimed call, then a count that fits the budget by the slowest rank's first timing.
    double first = timed_call(comm, work, count, expected, wrong);
    comm.all_reduce(&first, &first, 1, DType::kF64, ReduceOp::kMax);
    const auto calls = std::clamp<int64_t>(static_cast<int64_t>(seconds_per_size / first), 5, 1000);
    std::vector<double> seconds(static_cast<std::size_t>(calls));
    for (double& s : seconds) s = timed_call(comm, work, count, expected, wrong);
    comm.all_reduce(seconds.data(), seconds.data(), seconds.size(), DType::kF64, ReduceOp::kMax);
    comm.all_reduce(&wrong, &wrong, 1, DType::kI64, ReduceOp::kSum);
    DPT_CHECK_AS(ErrorKind::kComm, wrong == 0)
        << "all-reduce of " << bytes << " bytes on backend " << comm.backend() << " gave " << wrong
        << " wrong elements over all ranks";
    std::nth_element(seconds.begin(), seconds.begin() + calls / 2, seconds.end());
    const double time = seconds[static_cast<std::size_t>(calls / 2)];
    const double algbw = static_cast<double>(bytes) / time / 1e9;
    rows.push_back({bytes, calls, time * 1e6, algbw, algbw * 2.0 * (n - 1) / n});
  }
  return rows;
}

}  // namespace dpt
