// The measuring half of dpt bench comm (launch/bench_comm.h): known inputs, timed and checked
// in-place all-reduces per size (every rank, MPI_Barrier before each call, the slowest rank's
// time), the memcpy bound, and the statistics the table prints.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "devices/device.h"

namespace dpt {

using AllReduce = std::function<void(float* data, std::size_t count)>;

// One timed all-reduce. With `device` (a backend whose buffers are device memory, e.g. nccl) the
// input is copied to `device_buffer` before the barrier and the result back after the timed
// call, so the copies are not timed.
// With `host_buffer` (memory from Communicator::allocate_shared, as training's gradient buffer)
// the call runs there instead of on the common work buffer; `memory` keeps it alive.
struct BenchCall {
  AllReduce run;
  Device* device = nullptr;
  float* device_buffer = nullptr;
  float* host_buffer = nullptr;
  std::shared_ptr<void> memory;
};

// Rank r's element i is (i + 131 r) mod 1021: small integers, so float32 sums over up to 16000
// ranks are exact, and with a prime period a block that lands at the wrong offset reads wrong.
constexpr std::size_t kPeriod = 1021;

inline float input_value(std::size_t i, int rank) {
  return static_cast<float>((i + 131 * static_cast<std::size_t>(rank)) % kPeriod);
}

// One size, every call checked against the exact sums `expected` (kPeriod values; throws kComm
// on every rank naming names[k] when any rank saw a wrong element). Runs each call `warmup`
// untimed and its share of `iters` timed calls, in passes over the calls. Returns per call the
// timed seconds, max over ranks.
std::vector<std::vector<double>> time_size(const std::vector<BenchCall>& calls,
                                           const std::vector<std::string>& names,
                                           const std::vector<float>& input,
                                           std::vector<float>& work, std::size_t count,
                                           int64_t warmup, int64_t iters,
                                           const std::vector<float>& expected);

// Best over `reps` of the slowest rank's time to memcpy `bytes`; ranks with copy == false only
// join the barriers.
double time_memcpy(char* dst, const char* src, std::size_t bytes, bool copy, int reps);

double median(std::vector<double> values);

// Default calls per size: about 1 GiB per algorithm, between 10 and 1000 calls.
int64_t default_iters(uint64_t bytes);

}  // namespace dpt
