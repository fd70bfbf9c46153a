// A conformance suite for any Communicator, header-only and free of gtest, so the same checks run
// on the thread world (tests/unit/comm/thread_world_test.cpp) and under mpirun
// (tests/mpi/mpi_conformance.cpp). Every rank calls run_suite() on its own communicator and makes
// the same calls in the same order. Inputs are generated from (seed, rank, index), so each rank
// regenerates every other rank's input and computes the exact expected result on its own.
// Wrong values are recorded in a Report, not thrown, so they do not desynchronise the ranks;
// exceptions from the communicator propagate to the caller (which should abort the world).
// This header has the checks of broadcast, all_gather, reduce_scatter, barrier and a mixed
// sequence, and run_suite; tests/comm_conformance_all_reduce.h the all-reduce checks, the Report
// and SuiteOptions; tests/comm_conformance_values.h the inputs and expected results (its 16-bit
// float references are written independently of comm/reduce.h).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "comm/communicator.h"
#include "comm_conformance_all_reduce.h"
#include "comm_conformance_values.h"

namespace dpt::conformance {

// broadcast from every root: afterwards every rank holds the root's bits.
inline void check_broadcast(Communicator& comm, Report& report, const SuiteOptions& options) {
  uint64_t seed = options.seed * 2000;
  std::vector<std::size_t> counts = {0, 1, 1000};
  for (int root = 0; root < comm.size(); ++root) {
    for (std::size_t count : counts) {
      for (DType dtype : kAllDTypes) {
        ++seed;
        std::vector<char> buffer = make_input(dtype, Pattern::kRandom, seed, comm.rank(), count);
        comm.broadcast(buffer.data(), count, dtype, root);
        report.expect(buffer == make_input(dtype, Pattern::kRandom, seed, root, count),
                      label("broadcast", count, dtype, (", root=" + std::to_string(root)).c_str()) +
                          ": not the root's data");
      }
    }
  }
  if (!options.large) return;
  const std::size_t large = (1u << 20) + 3;
  const int root = comm.size() - 1;
  std::vector<char> buffer = make_input(DType::kF32, Pattern::kRandom, ++seed, comm.rank(), large);
  comm.broadcast(buffer.data(), large, DType::kF32, root);
  report.expect(buffer == make_input(DType::kF32, Pattern::kRandom, seed, root, large),
                label("broadcast", large, DType::kF32, "") + ": not the root's data");
}

// all_gather out of place and in place (send == recv + rank * count).
inline void check_all_gather(Communicator& comm, Report& report, const SuiteOptions& options) {
  const int n = comm.size(), rank = comm.rank();
  uint64_t seed = options.seed * 3000;
  for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1000}}) {
    for (DType dtype : kAllDTypes) {
      for (bool in_place : {false, true}) {
        ++seed;
        const std::size_t bytes = count * dtype_size(dtype);
        const std::vector<char> send = make_input(dtype, Pattern::kRandom, seed, rank, count);
        std::vector<char> recv(bytes * n, static_cast<char>(0x5A));
        if (in_place) {
          std::copy(send.begin(), send.end(), recv.begin() + rank * bytes);
          comm.all_gather(recv.data() + rank * bytes, recv.data(), count, dtype);
        } else {
          comm.all_gather(send.data(), recv.data(), count, dtype);
        }
        std::vector<char> expected;
        for (int r = 0; r < n; ++r) {
          const std::vector<char> block = make_input(dtype, Pattern::kRandom, seed, r, count);
          expected.insert(expected.end(), block.begin(), block.end());
        }
        report.expect(recv == expected,
                      label("all_gather", count, dtype, in_place ? ", in place" : "") +
                          ": blocks not in rank order");
      }
    }
  }
}

// reduce_scatter: rank r gets the reduction of block r of everyone's send buffer, out of place
// and in place (recv = send + rank * count).
inline void check_reduce_scatter(Communicator& comm, Report& report, const SuiteOptions& options) {
  const int n = comm.size(), rank = comm.rank();
  uint64_t seed = options.seed * 4000;
  const std::size_t counts[] = {0, 1, static_cast<std::size_t>(n) + 1, 1000};
  for (std::size_t count : counts) {
    for (DType dtype : kAllDTypes) {
      for (ReduceOp op : kAllOps) {
        ++seed;
        const Pattern pattern = is_float(dtype) ? Pattern::kSmallInt : Pattern::kRandom;
        const std::vector<char> send = make_input(dtype, pattern, seed, rank, count * n);
        std::vector<char> recv(count * dtype_size(dtype), static_cast<char>(0xA5));
        comm.reduce_scatter(send.data(), recv.data(), count, dtype, op);
        const std::string what =
            label("reduce_scatter", count, dtype, (std::string(", ") + reduce_op_name(op)).c_str());
        check_reduced(report, what, n, dtype, op, pattern, seed, recv.data(), count,
                      static_cast<std::size_t>(rank) * count);
        report.expect(send == make_input(dtype, pattern, seed, rank, count * n),
                      what + ": the send buffer changed");
        // In place, NCCL's form: recv is this rank's block of send (send + rank * count).
        std::vector<char> data = send;
        char* mine = data.data() + static_cast<std::size_t>(rank) * count * dtype_size(dtype);
        comm.reduce_scatter(data.data(), mine, count, dtype, op);
        check_reduced(report, what + ", in place", n, dtype, op, pattern, seed, mine, count,
                      static_cast<std::size_t>(rank) * count);
      }
    }
  }
}

// barrier: the last rank sleeps before entering; no rank may leave before the last one entered.
// Entry and exit times are steady_clock readings, which on Linux (CLOCK_MONOTONIC) are one clock
// for every process of the machine the suite runs on, so the check needs no slack for load.
inline void check_barrier(Communicator& comm, Report& report, const SuiteOptions& options) {
  for (int i = 0; i < 3; ++i) comm.barrier();
  if (!options.barrier_timing || comm.size() == 1) return;
  auto now_ns = [] {
    return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::steady_clock::now().time_since_epoch())
                                    .count());
  };
  const int n = comm.size();
  if (comm.rank() == n - 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const int64_t entered = now_ns();
  comm.barrier();
  const int64_t left = now_ns();
  std::vector<int64_t> entries(static_cast<std::size_t>(n));
  comm.all_gather(&entered, entries.data(), 1, DType::kI64);
  const auto last = std::max_element(entries.begin(), entries.end());
  report.expect(left >= *last, "barrier: left " + std::to_string((*last - left) / 1000) +
                                   " us before rank " + std::to_string(last - entries.begin()) +
                                   " entered it");
}

// Many small mixed collectives back to back: messages of one collective must never be matched
// by the next one, whatever the ranks' relative speed.
inline void check_sequence(Communicator& comm, Report& report) {
  const int n = comm.size(), rank = comm.rank();
  long wrong = 0;
  for (int i = 0; i < 60; ++i) {
    int64_t value[3] = {rank + i, i * 1000 + rank, -rank};
    comm.all_reduce(value, value, 3, DType::kI64, ReduceOp::kSum);
    const int64_t ranks = static_cast<int64_t>(n) * (n - 1) / 2;
    wrong += value[0] != ranks + static_cast<int64_t>(n) * i;
    wrong += value[1] != static_cast<int64_t>(n) * i * 1000 + ranks;
    wrong += value[2] != -ranks;
    int32_t root_value = rank == i % n ? i : -1;
    comm.broadcast(&root_value, 1, DType::kI32, i % n);
    wrong += root_value != i;
    if (i % 7 == 0) comm.barrier();
    float mine = static_cast<float>(rank * i), all[8] = {};
    if (n <= 8) {
      comm.all_gather(&mine, all, 1, DType::kF32);
      for (int r = 0; r < n; ++r) wrong += all[r] != static_cast<float>(r * i);
    }
  }
  report.expect(wrong == 0,
                "60 rounds of mixed small collectives: " + std::to_string(wrong) + " wrong values");
}

// The whole suite. Every rank must call it with the same options.
inline void run_suite(Communicator& comm, Report& report, const SuiteOptions& options = {}) {
  report.rank = comm.rank();
  check_sequence(comm, report);
  check_all_reduce(comm, report, options);
  check_all_reduce_shared(comm, report, options);
  check_nan_propagation(comm, report);
  check_wraparound(comm, report);
  check_broadcast(comm, report, options);
  check_all_gather(comm, report, options);
  check_reduce_scatter(comm, report, options);
  check_barrier(comm, report, options);
}

}  // namespace dpt::conformance
