// A conformance suite for any Communicator, header-only and free of gtest, so the same checks run
// on the thread world (tests/unit/comm/thread_world_test.cpp) and under mpirun
// (tests/mpi/mpi_conformance.cpp). Every rank calls run_suite() on its own communicator and makes
// the same calls in the same order. Inputs are generated from (seed, rank, index), so each rank
// regenerates every other rank's input and computes the exact expected result on its own.
// Wrong values are recorded in a Report, not thrown, so they do not desynchronise the ranks;
// exceptions from the communicator propagate to the caller (which should abort the world).
// The 16-bit float references here are written independently of comm/reduce.h.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "comm/communicator.h"

namespace dpt::conformance {

// ---- Independent references for bfloat16 and float16 ------------------------------------------

struct Format16 {
  int mantissa_bits;
  int exponent_bits;
};
constexpr Format16 kBf16Format{7, 8};
constexpr Format16 kF16Format{10, 5};

// The value of a 16-bit pattern, exactly.
inline double decode16(uint16_t bits, Format16 f) {
  const int bias = (1 << (f.exponent_bits - 1)) - 1;
  const int exponent = (bits >> f.mantissa_bits) & ((1 << f.exponent_bits) - 1);
  const int mantissa = bits & ((1 << f.mantissa_bits) - 1);
  const double sign = (bits & 0x8000u) ? -1.0 : 1.0;
  if (exponent == (1 << f.exponent_bits) - 1) {
    return mantissa != 0 ? std::nan("") : sign * INFINITY;
  }
  if (exponent == 0) return sign * std::ldexp(mantissa, 1 - bias - f.mantissa_bits);
  return sign * std::ldexp((1 << f.mantissa_bits) + mantissa, exponent - bias - f.mantissa_bits);
}

// `x` rounded to the nearest 16-bit value, ties to even, overflow to infinity, NaN to the quiet
// NaN. Works in double: x / quantum is exact, and nearbyint rounds ties to even.
inline uint16_t round16(double x, Format16 f) {
  const int p = f.mantissa_bits, bias = (1 << (f.exponent_bits - 1)) - 1, emin = 1 - bias;
  const uint16_t sign = std::signbit(x) ? 0x8000u : 0u;
  const uint16_t inf = static_cast<uint16_t>(((1u << f.exponent_bits) - 1) << p);
  if (std::isnan(x)) return static_cast<uint16_t>(sign | inf | (1u << (p - 1)));
  const double a = std::fabs(x);
  if (std::isinf(a)) return sign | inf;
  const int e = a == 0 ? emin : std::max(std::ilogb(a), emin);
  const double r = std::nearbyint(a / std::ldexp(1.0, e - p)) * std::ldexp(1.0, e - p);
  if (r == 0) return sign;
  const int er = std::ilogb(r);
  if (er > bias) return sign | inf;
  if (er < emin)
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(r / std::ldexp(1.0, emin - p)));
  const auto mantissa = static_cast<uint16_t>(r / std::ldexp(1.0, er - p) - (1 << p));
  return static_cast<uint16_t>(sign | ((er + bias) << p) | mantissa);
}

// ---- Elements as 64-bit patterns ---------------------------------------------------------------

inline bool is_float(DType dtype) { return dtype != DType::kI32 && dtype != DType::kI64; }

inline uint64_t float_pattern(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}
inline uint64_t double_pattern(double v) {
  uint64_t b;
  std::memcpy(&b, &v, 8);
  return b;
}

// The pattern of `value` in `dtype` (floats round through float to the 16-bit formats).
inline uint64_t encode(DType dtype, double value) {
  switch (dtype) {
    case DType::kF32:
      return float_pattern(static_cast<float>(value));
    case DType::kF64:
      return double_pattern(value);
    case DType::kBF16:
      return round16(static_cast<float>(value), kBf16Format);
    case DType::kF16:
      return round16(static_cast<float>(value), kF16Format);
    case DType::kI32:
      return static_cast<uint32_t>(static_cast<int32_t>(value));
    case DType::kI64:
      return static_cast<uint64_t>(static_cast<int64_t>(value));
  }
  return 0;
}

// The value of a float pattern (integers: their signed value).
inline double decode(DType dtype, uint64_t bits) {
  switch (dtype) {
    case DType::kF32: {
      float v;
      const auto b = static_cast<uint32_t>(bits);
      std::memcpy(&v, &b, 4);
      return v;
    }
    case DType::kF64: {
      double v;
      std::memcpy(&v, &bits, 8);
      return v;
    }
    case DType::kBF16:
      return decode16(static_cast<uint16_t>(bits), kBf16Format);
    case DType::kF16:
      return decode16(static_cast<uint16_t>(bits), kF16Format);
    case DType::kI32:
      return static_cast<int32_t>(static_cast<uint32_t>(bits));
    case DType::kI64:
      return static_cast<double>(static_cast<int64_t>(bits));
  }
  return 0;
}

// Element i of a buffer as a 64-bit pattern and back (little-endian hosts, as all ours are).
inline uint64_t load(DType dtype, const void* data, std::size_t i) {
  uint64_t bits = 0;
  std::memcpy(&bits, static_cast<const char*>(data) + i * dtype_size(dtype), dtype_size(dtype));
  return bits;
}

inline void store(DType dtype, void* data, std::size_t i, uint64_t bits) {
  std::memcpy(static_cast<char*>(data) + i * dtype_size(dtype), &bits, dtype_size(dtype));
}

inline std::string show(DType dtype, uint64_t bits) {
  std::ostringstream text;
  if (dtype == DType::kI64) {
    text << static_cast<int64_t>(bits);
  } else {
    text << decode(dtype, bits) << " (0x" << std::hex << bits << ")";
  }
  return text.str();
}

// ---- Inputs ------------------------------------------------------------------------------------

inline uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// kSmallInt: integers in [-8, 8], so float sums over a few ranks are exact in every dtype.
// kRandom: floats uniform in [-1, 1) (sums round, and depend on order); integers use every bit,
// so sums wrap around.
enum class Pattern { kSmallInt, kRandom };

inline uint64_t input(DType dtype, Pattern pattern, uint64_t seed, int rank, std::size_t i) {
  const uint64_t h = mix(mix(seed ^ (static_cast<uint64_t>(rank) << 40)) + i);
  if (pattern == Pattern::kSmallInt) return encode(dtype, static_cast<double>(h % 17) - 8.0);
  if (dtype == DType::kI32) return h & 0xFFFFFFFFull;
  if (dtype == DType::kI64) return h;
  return encode(dtype, static_cast<double>(h >> 11) * 0x1p-52 - 1.0);
}

// count elements of `rank`'s input, starting at element `offset`.
inline std::vector<char> make_input(DType dtype, Pattern pattern, uint64_t seed, int rank,
                                    std::size_t count, std::size_t offset = 0) {
  std::vector<char> data(count * dtype_size(dtype));
  for (std::size_t i = 0; i < count; ++i) {
    store(dtype, data.data(), i, input(dtype, pattern, seed, rank, offset + i));
  }
  return data;
}

// FNV-1a over the bytes.
inline uint64_t fingerprint(const void* data, std::size_t bytes) {
  uint64_t h = 0xCBF29CE484222325ull;
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  return h;
}

// ---- Expected reductions -----------------------------------------------------------------------

// Unit roundoff of each float dtype.
inline double roundoff(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 0x1p-24;
    case DType::kF64:
      return 0x1p-53;
    case DType::kBF16:
      return 0x1p-8;
    case DType::kF16:
      return 0x1p-11;
    default:
      return 0;
  }
}

// What one result element must be: exact bits (`exact`), or for rounded float sums a value
// within `tolerance` of `value`.
struct Expected {
  bool exact = true;
  uint64_t bits = 0;
  double value = 0;
  double tolerance = 0;
};

// The reduction over `values` (one pattern per rank) that a correct all_reduce produces.
inline Expected expected_reduction(DType dtype, ReduceOp op, Pattern pattern,
                                   const std::vector<uint64_t>& values) {
  const int n = static_cast<int>(values.size());
  Expected result;
  if (!is_float(dtype)) {
    const bool wide = dtype == DType::kI64;
    auto as_signed = [wide](uint64_t b) {
      return wide ? static_cast<int64_t>(b) : static_cast<int64_t>(static_cast<int32_t>(b));
    };
    uint64_t sum = 0;
    int64_t best = as_signed(values[0]);
    for (uint64_t v : values) {
      sum += v;
      if (op == ReduceOp::kMax) best = std::max(best, as_signed(v));
      if (op == ReduceOp::kMin) best = std::min(best, as_signed(v));
    }
    if (!wide) sum &= 0xFFFFFFFFull;
    int64_t out = best;
    if (op == ReduceOp::kSum) out = as_signed(sum);
    if (op == ReduceOp::kAvg) out = as_signed(sum) / n;  // truncates toward zero
    result.bits = wide ? static_cast<uint64_t>(out) : static_cast<uint32_t>(out);
    return result;
  }
  double sum = 0, sum_abs = 0, best = decode(dtype, values[0]);
  bool nan = false;
  for (uint64_t v : values) {
    const double x = decode(dtype, v);
    nan = nan || std::isnan(x);
    sum += x;
    sum_abs += std::fabs(x);
    if (op == ReduceOp::kMax) best = std::max(best, x);
    if (op == ReduceOp::kMin) best = std::min(best, x);
  }
  if (nan) {
    result.value = std::nan("");
    return result;
  }
  if (op == ReduceOp::kMax || op == ReduceOp::kMin) {
    result.bits = encode(dtype, best);
    return result;
  }
  if (pattern == Pattern::kSmallInt) {  // the sum is exact; the average divides it once
    if (op == ReduceOp::kSum) {
      result.bits = encode(dtype, sum);
    } else if (dtype == DType::kF64) {
      result.bits = encode(dtype, sum / n);
    } else {
      result.bits = encode(dtype, static_cast<float>(sum) / static_cast<float>(n));
    }
    return result;
  }
  result.exact = false;
  result.value = op == ReduceOp::kAvg ? sum / n : sum;
  result.tolerance = 2.0 * n * roundoff(dtype) * sum_abs;
  return result;
}

inline bool matches(DType dtype, const Expected& expected, uint64_t got) {
  const double value = decode(dtype, got);
  if (!is_float(dtype)) return got == expected.bits;
  if (std::isnan(expected.value)) return std::isnan(value);
  if (expected.exact) return value == decode(dtype, expected.bits) && !std::isnan(value);
  return std::fabs(value - expected.value) <= expected.tolerance;
}

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

// reduce_scatter: rank r gets the reduction of block r of everyone's send buffer.
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
