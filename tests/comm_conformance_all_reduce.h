// The all-reduce checks of the communicator conformance suite (tests/comm_conformance.h), and
// what every check shares: the Report that records wrong values, the suite's options and the
// comparison of a result against the reduction of every rank's input
// (tests/comm_conformance_values.h).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm_conformance_values.h"

namespace dpt::conformance {

// ---- Report ------------------------------------------------------------------------------------

// One rank's checks and failures (at most kMaxKept messages are kept; all are counted).
struct Report {
  static constexpr std::size_t kMaxKept = 40;
  int rank = 0;
  long checks = 0;
  long failed = 0;
  std::vector<std::string> failures;

  bool expect(bool ok, const std::string& what) {
    ++checks;
    if (!ok) {
      ++failed;
      if (failures.size() < kMaxKept) {
        failures.push_back("rank " + std::to_string(rank) + ": " + what);
      }
    }
    return ok;
  }
};

// ---- The checks --------------------------------------------------------------------------------

constexpr DType kAllDTypes[] = {DType::kF32, DType::kF64, DType::kBF16,
                                DType::kF16, DType::kI32, DType::kI64};
constexpr ReduceOp kAllOps[] = {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin};

struct SuiteOptions {
  uint64_t seed = 1;
  bool large = true;           // include (1 << 20) + 3 element cases
  bool barrier_timing = true;  // a sleeping rank must delay the others' barrier
};

// Checks `result` (count elements) against the reduction over ranks of inputs at
// [offset, offset + count); reports the first wrong element and how many were wrong.
inline void check_reduced(Report& report, const std::string& what, int world, DType dtype,
                          ReduceOp op, Pattern pattern, uint64_t seed, const void* result,
                          std::size_t count, std::size_t offset) {
  std::size_t wrong = 0, first = 0;
  Expected first_expected;
  uint64_t first_got = 0;
  std::vector<uint64_t> values(static_cast<std::size_t>(world));
  for (std::size_t i = 0; i < count; ++i) {
    for (int r = 0; r < world; ++r) values[r] = input(dtype, pattern, seed, r, offset + i);
    const Expected expected = expected_reduction(dtype, op, pattern, values);
    const uint64_t got = load(dtype, result, i);
    if (!matches(dtype, expected, got)) {
      if (wrong++ == 0) {
        first = i;
        first_expected = expected;
        first_got = got;
      }
    }
  }
  std::ostringstream text;
  if (wrong > 0) {
    text << what << ": " << wrong << " of " << count << " elements wrong; element " << first
         << " is " << show(dtype, first_got) << ", expected ";
    if (first_expected.exact) {
      text << show(dtype, first_expected.bits);
    } else {
      text << first_expected.value << " +- " << first_expected.tolerance;
    }
  }
  report.expect(wrong == 0, text.str());
}

// True when `value` is the same on every rank (compared through all_gather).
inline bool same_everywhere(Communicator& comm, uint64_t value) {
  std::vector<int64_t> all(static_cast<std::size_t>(comm.size()));
  const auto mine = static_cast<int64_t>(value);
  comm.all_gather(&mine, all.data(), 1, DType::kI64);
  return std::all_of(all.begin(), all.end(), [&](int64_t v) { return v == mine; });
}

inline std::string label(const char* kind, std::size_t count, DType dtype, const char* extra) {
  std::ostringstream text;
  text << kind << "(count=" << count << ", " << dtype_name(dtype) << extra << ")";
  return text.str();
}

// One all_reduce, in place or out of place, checked against the inputs' reduction. Results that
// are not exact (rounded float sums) must at least be the same bits on every rank.
inline void all_reduce_case(Communicator& comm, Report& report, std::size_t count, DType dtype,
                            ReduceOp op, Pattern pattern, bool in_place, uint64_t seed) {
  const std::string what =
      label("all_reduce", count, dtype,
            (std::string(", ") + reduce_op_name(op) + (in_place ? ", in place" : "") +
             (pattern == Pattern::kRandom ? ", random" : ", small ints"))
                .c_str());
  const std::vector<char> send = make_input(dtype, pattern, seed, comm.rank(), count);
  std::vector<char> recv(send.size(), static_cast<char>(0xA5));
  if (in_place) {
    recv = send;
    comm.all_reduce(recv.data(), recv.data(), count, dtype, op);
  } else {
    comm.all_reduce(send.data(), recv.data(), count, dtype, op);
    report.expect(send == make_input(dtype, pattern, seed, comm.rank(), count),
                  what + ": the send buffer changed");
  }
  check_reduced(report, what, comm.size(), dtype, op, pattern, seed, recv.data(), count, 0);
  if (pattern == Pattern::kRandom && is_float(dtype) &&
      (op == ReduceOp::kSum || op == ReduceOp::kAvg)) {
    report.expect(same_everywhere(comm, fingerprint(recv.data(), recv.size())),
                  what + ": ranks got different bits");
  }
}

inline void check_all_reduce(Communicator& comm, Report& report, const SuiteOptions& options) {
  const std::size_t n = static_cast<std::size_t>(comm.size());
  std::vector<std::size_t> counts = {0, 1, n - 1, n + 1, 1000};
  std::sort(counts.begin(), counts.end());
  counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
  uint64_t seed = options.seed * 1000;
  for (std::size_t count : counts) {
    for (DType dtype : kAllDTypes) {
      for (ReduceOp op : kAllOps) {
        for (Pattern pattern : {Pattern::kSmallInt, Pattern::kRandom}) {
          for (bool in_place : {false, true}) {
            all_reduce_case(comm, report, count, dtype, op, pattern, in_place, ++seed);
          }
        }
      }
    }
  }
  if (!options.large) return;
  const std::size_t large = (1u << 20) + 3;
  all_reduce_case(comm, report, large, DType::kF32, ReduceOp::kSum, Pattern::kRandom, true, ++seed);
  all_reduce_case(comm, report, large, DType::kF32, ReduceOp::kAvg, Pattern::kSmallInt, false,
                  ++seed);
  all_reduce_case(comm, report, large, DType::kBF16, ReduceOp::kSum, Pattern::kSmallInt, true,
                  ++seed);
  all_reduce_case(comm, report, large, DType::kI64, ReduceOp::kMax, Pattern::kRandom, false,
                  ++seed);
}

// In-place all-reduces on memory from allocate_shared (the gradient buffer's path without copies,
// where the backend has one): every dtype and op at small counts and one large float sum, at an
// odd element offset into the buffer, with sentinels around the range that must stay untouched.
// Plain all-reduces in between check that both paths keep the sequence. Nothing to check (the
// backend has no shared memory) when allocate_shared gives null on this rank, as on every other.
inline void check_all_reduce_shared(Communicator& comm, Report& report,
                                    const SuiteOptions& options) {
  const std::size_t large = options.large ? (1u << 20) + 3 : 1000;
  const std::size_t bytes = (large + 64) * 8;
  const std::shared_ptr<void> memory = comm.allocate_shared(bytes);
  const bool shared = memory != nullptr;
  report.expect(same_everywhere(comm, shared ? 1 : 0),
                "allocate_shared: some ranks got memory and some did not");
  if (!shared) return;
  char* base = static_cast<char*>(memory.get());
  uint64_t seed = options.seed * 5000;
  auto run = [&](std::size_t count, DType dtype, ReduceOp op, Pattern pattern) {
    const std::size_t element = dtype_size(dtype), offset = 3 * element;
    const std::vector<char> input = make_input(dtype, pattern, ++seed, comm.rank(), count);
    std::memset(base, 0x5A, bytes);
    if (count > 0) std::memcpy(base + offset, input.data(), input.size());
    comm.all_reduce(base + offset, base + offset, count, dtype, op);
    const std::string what =
        label("all_reduce", count, dtype,
              (std::string(", ") + reduce_op_name(op) + ", allocate_shared buffer").c_str());
    check_reduced(report, what, comm.size(), dtype, op, pattern, seed, base + offset, count, 0);
    const std::size_t end = offset + count * element;
    const bool untouched = std::all_of(base, base + offset, [](char c) { return c == 0x5A; }) &&
                           std::all_of(base + end, base + bytes, [](char c) { return c == 0x5A; });
    report.expect(untouched, what + ": bytes outside the range changed");
    if (is_float(dtype) && (op == ReduceOp::kSum || op == ReduceOp::kAvg)) {
      report.expect(same_everywhere(comm, fingerprint(base + offset, count * element)),
                    what + ": ranks got different bits");
    }
    // The same call on a buffer of its own: the same values where the result is exact (other
    // algorithms may add rounded floats in another order).
    std::vector<char> plain = make_input(dtype, pattern, seed, comm.rank(), count);
    comm.all_reduce(plain.data(), plain.data(), count, dtype, op);
    const bool exact = pattern == Pattern::kSmallInt || !is_float(dtype) || op == ReduceOp::kMax ||
                       op == ReduceOp::kMin;
    report.expect(
        !exact || count == 0 || std::memcmp(plain.data(), base + offset, plain.size()) == 0,
        what + ": differs from the same all_reduce on a buffer of its own");
  };
  const std::size_t n = static_cast<std::size_t>(comm.size());
  for (std::size_t count : {std::size_t{0}, std::size_t{1}, n + 1, std::size_t{1000}}) {
    for (DType dtype : kAllDTypes) {
      for (ReduceOp op : kAllOps) {
        run(count, dtype, op, Pattern::kRandom);
        run(count, dtype, op, Pattern::kSmallInt);
      }
    }
  }
  run(large, DType::kF32, ReduceOp::kSum, Pattern::kRandom);
  run(large, DType::kBF16, ReduceOp::kAvg, Pattern::kSmallInt);
}

// Max and min propagate NaN: element i holds NaN on rank i % size (and on every rank at the
// last element); every result element that saw a NaN is NaN on every rank.
inline void check_nan_propagation(Communicator& comm, Report& report) {
  const int n = comm.size();
  const std::size_t count = 2 * static_cast<std::size_t>(n) + 1;
  for (DType dtype : {DType::kF32, DType::kF64, DType::kBF16, DType::kF16}) {
    for (ReduceOp op : {ReduceOp::kMax, ReduceOp::kMin}) {
      std::vector<char> data(count * dtype_size(dtype));
      for (std::size_t i = 0; i < count; ++i) {
        const bool nan = i == count - 1 ||
                         (i < static_cast<std::size_t>(n) && static_cast<int>(i) == comm.rank());
        store(dtype, data.data(), i, encode(dtype, nan ? std::nan("") : comm.rank() + 0.5));
      }
      comm.all_reduce(data.data(), data.data(), count, dtype, op);
      std::size_t wrong = 0;
      for (std::size_t i = 0; i < count; ++i) {
        const double got = decode(dtype, load(dtype, data.data(), i));
        const double want = op == ReduceOp::kMax ? n - 0.5 : 0.5;
        const bool nan_expected = i < static_cast<std::size_t>(n) || i == count - 1;
        const bool ok = nan_expected ? std::isnan(got) : got == want;
        if (!ok) ++wrong;
      }
      report.expect(wrong == 0,
                    label("all_reduce", count, dtype,
                          (std::string(", ") + reduce_op_name(op) + ", NaN inputs").c_str()) +
                        ": " + std::to_string(wrong) + " elements lost or invented a NaN");
    }
  }
}

// Integer sums wrap modulo 2^bits: every rank adds INT_MAX (and INT_MIN to the second element).
inline void check_wraparound(Communicator& comm, Report& report) {
  const int n = comm.size();
  int32_t small[2] = {INT32_MAX, INT32_MIN};
  int64_t wide[2] = {INT64_MAX, INT64_MIN};
  comm.all_reduce(small, small, 2, DType::kI32, ReduceOp::kSum);
  comm.all_reduce(wide, wide, 2, DType::kI64, ReduceOp::kSum);
  const auto expect32 = [n](uint32_t v) {
    return static_cast<int32_t>(v * static_cast<uint32_t>(n));
  };
  const auto expect64 = [n](uint64_t v) {
    return static_cast<int64_t>(v * static_cast<uint64_t>(n));
  };
  report.expect(small[0] == expect32(INT32_MAX) && small[1] == expect32(0x80000000u),
                "all_reduce int32 sum does not wrap: got " + std::to_string(small[0]) + ", " +
                    std::to_string(small[1]));
  report.expect(wide[0] == expect64(INT64_MAX) && wide[1] == expect64(0x8000000000000000ull),
                "all_reduce int64 sum does not wrap: got " + std::to_string(wide[0]) + ", " +
                    std::to_string(wide[1]));
}

}  // namespace dpt::conformance
