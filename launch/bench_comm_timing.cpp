// Timed, checked all-reduces for dpt bench comm (launch/bench_comm_timing.h).
#include "launch/bench_comm_timing.h"

#include <fmt/core.h>
#include <mpi.h>

#include <algorithm>
#include <cstring>

#include "comm/mpi_check.h"
#include "devices/error.h"

namespace dpt {
namespace {

using Clock = std::chrono::steady_clock;

struct Mismatch {
  std::size_t wrong = 0;
  std::size_t first = 0;
  float got = 0, expected = 0;
};

// Compares data[i] with the exact sum expected[i mod kPeriod], element by element.
void check_sum(const float* data, std::size_t count, const std::vector<float>& expected,
               Mismatch& mismatch) {
  std::size_t j = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (data[i] != expected[j] && mismatch.wrong++ == 0) {
      mismatch.first = i;
      mismatch.got = data[i];
      mismatch.expected = expected[j];
    }
    if (++j == kPeriod) j = 0;
  }
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Per call, the slowest rank's seconds.
std::vector<double> max_over_ranks(std::vector<double> seconds) {
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, seconds.data(), static_cast<int>(seconds.size()),
                          MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD))
      << "bench comm: collecting times";
  return seconds;
}

// Throws kComm on every rank when any rank saw a wrong element of `name`'s results.
void require_exact(const Mismatch& mismatch, const char* name, std::size_t bytes) {
  unsigned long long wrong = mismatch.wrong, total = 0;
  MPI_CHECK(MPI_Allreduce(&wrong, &total, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD))
      << "bench comm: collecting checks";
  if (total == 0) return;
  DPT_THROW(ErrorKind::kComm) << name << " all-reduce of " << bytes
                              << " bytes gave wrong sums: " << total
                              << " wrong elements over all ranks and calls; here " << wrong
                              << (wrong > 0
                                      ? fmt::format(", first at {}: got {}, expected {}",
                                                    mismatch.first, mismatch.got, mismatch.expected)
                                      : std::string());
}

// Passes over the algorithms per size: a busy spell on a shared host then lands on several of
// them instead of all of one. Within a pass each algorithm runs back to back (warmup, then its
// share of the calls): interleaving single calls disturbed the measurement here (a call right
// after an MPI_Iallreduce ran up to 1.7x slower).
constexpr int64_t kPasses = 3;

}  // namespace

std::vector<std::vector<double>> time_size(const std::vector<BenchCall>& calls,
                                           const std::vector<std::string>& names,
                                           const std::vector<float>& input,
                                           std::vector<float>& work, std::size_t count,
                                           int64_t warmup, int64_t iters,
                                           const std::vector<float>& expected) {
  std::vector<std::vector<double>> seconds(calls.size());
  std::vector<Mismatch> mismatches(calls.size());
  for (int64_t pass = 0; pass < kPasses; ++pass) {
    const int64_t timed = iters / kPasses + (pass < iters % kPasses ? 1 : 0);
    for (std::size_t k = 0; k < calls.size(); ++k) {
      for (int64_t call = 0; call < warmup + timed; ++call) {
        const BenchCall& bench = calls[k];
        const std::size_t bytes = count * sizeof(float);
        float* host = bench.host_buffer != nullptr ? bench.host_buffer : work.data();
        if (bench.device != nullptr) {
          bench.device->copy_from_host(bench.device_buffer, input.data(), bytes);
        } else {
          std::memcpy(host, input.data(), bytes);
        }
        MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)) << "bench comm: barrier";
        const Clock::time_point start = Clock::now();
        bench.run(bench.device != nullptr ? bench.device_buffer : host, count);
        const double elapsed = seconds_since(start);
        if (call >= warmup) seconds[k].push_back(elapsed);
        if (bench.device != nullptr) bench.device->copy_to_host(host, bench.device_buffer, bytes);
        check_sum(host, count, expected, mismatches[k]);
      }
    }
  }
  for (std::size_t k = 0; k < calls.size(); ++k) {
    require_exact(mismatches[k], names[k].c_str(), count * sizeof(float));
    seconds[k] = max_over_ranks(std::move(seconds[k]));
  }
  return seconds;
}

double time_memcpy(char* dst, const char* src, std::size_t bytes, bool copy, int reps) {
  std::vector<double> seconds;
  for (int rep = 0; rep < reps; ++rep) {
    MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)) << "bench comm: barrier";
    const Clock::time_point start = Clock::now();
    if (copy) std::memcpy(dst, src, bytes);
    seconds.push_back(copy ? seconds_since(start) : 0.0);
  }
  seconds = max_over_ranks(std::move(seconds));
  return *std::min_element(seconds.begin(), seconds.end());
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

// The default run takes about 30 s with 2 ranks on an idle 2-CPU host.
int64_t default_iters(uint64_t bytes) {
  return std::clamp<int64_t>(static_cast<int64_t>((uint64_t{1} << 30) / bytes), 10, 1000);
}

}  // namespace dpt
