// The shared-memory all-reduce (comm/shm_all_reduce.h).
#include "comm/shm_all_reduce.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "comm/reduce.h"
#include "comm/ring.h"
#include "devices/error.h"

namespace dpt {
namespace {

constexpr std::size_t kLine = 64;

std::size_t round_up(std::size_t bytes) { return (bytes + kLine - 1) / kLine * kLine; }

// A counter alone on its cache line, so polling one does not disturb the others.
struct alignas(kLine) Counter {
  std::atomic<uint64_t> value;
};

enum Which { kArrived = 0, kReduced = 1, kCopied = 2 };

// Rank `rank`'s share [begin, begin + count) of `total` elements split n ways (the first
// total % n shares get one more).
struct Share {
  std::size_t begin, count;
};
Share share_of(std::size_t total, int n, int rank) {
  const std::size_t base = total / n, extra = total % n, r = static_cast<std::size_t>(rank);
  return {r * base + std::min(r, extra), base + (r < extra ? 1 : 0)};
}

// How long a wait has lasted decides how it polls: back to back, then yielding the CPU (ranks may
// outnumber cores), then napping.
void pause(Clock::duration waited) {
  if (waited < std::chrono::microseconds(50)) return;
  if (waited < std::chrono::milliseconds(2)) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

}  // namespace

struct ShmAllReduce::Region {
  Counter counters[3];  // indexed by Which
  alignas(kLine) HeaderWords header;
};

static_assert(sizeof(std::atomic<uint64_t>) == sizeof(uint64_t) &&
                  std::atomic<uint64_t>::is_always_lock_free,
              "shared-memory counters must be plain lock-free words");

std::size_t ShmAllReduce::chunk_for(std::size_t chunk_bytes) {
  constexpr std::size_t kMax = std::size_t{64} << 10;
  return chunk_bytes == 0 ? kMax : std::clamp<std::size_t>(chunk_bytes, kLine, kMax);
}

std::size_t ShmAllReduce::region_bytes(std::size_t chunk_bytes) {
  return round_up(sizeof(Region)) + 2 * round_up(chunk_bytes);
}

ShmAllReduce::ShmAllReduce(std::vector<char*> regions, int rank, std::size_t chunk_bytes,
                           std::function<void()> on_wait)
    : regions_(std::move(regions)),
      rank_(rank),
      chunk_bytes_(chunk_bytes),
      on_wait_(std::move(on_wait)) {
  DPT_CHECK(rank >= 0 && rank < size())
      << "shared-memory all-reduce: rank " << rank << " outside a world of " << size();
  DPT_CHECK(chunk_bytes >= kLine) << "shared-memory all-reduce: chunk of " << chunk_bytes
                                  << " bytes is below " << kLine;
  for (char* region : regions_) {
    DPT_CHECK(reinterpret_cast<uintptr_t>(region) % kLine == 0)
        << "shared-memory all-reduce: region not 64-byte aligned";
  }
}

ShmAllReduce::Region& ShmAllReduce::region(int rank) const {
  return *reinterpret_cast<Region*>(regions_[static_cast<std::size_t>(rank)]);
}

void ShmAllReduce::wait_for(int which, uint64_t round, Clock::time_point deadline) const {
  const Clock::time_point start = Clock::now();
  for (int peer = 0; peer < size(); ++peer) {
    if (peer == rank_) continue;
    const std::atomic<uint64_t>& counter = region(peer).counters[which].value;
    for (unsigned polls = 1; counter.load(std::memory_order_acquire) < round; ++polls) {
      if (polls % 64 != 0) continue;
      if (on_wait_) on_wait_();
      const Clock::time_point now = Clock::now();
      if (now >= deadline) {
        throw CommTimeout(
            peer, "shared-memory all-reduce: timed out waiting for rank " + std::to_string(peer));
      }
      pause(now - start);
    }
  }
}

void ShmAllReduce::run(const void* send, void* recv, std::size_t count, DType dtype, ReduceOp op,
                       const CollectiveHeader& header, Clock::time_point deadline) {
  const int n = size();
  const std::size_t element = dtype_size(dtype);
  const std::size_t chunk = std::max<std::size_t>(1, chunk_bytes_ / element);
  const std::size_t rounds = std::max<std::size_t>(1, (count + chunk - 1) / chunk);
  const HeaderWords mine = encode_header(header);
  auto input = [&](int rank) { return regions_[rank] + round_up(sizeof(Region)); };
  auto result = [&](int rank) { return input(rank) + round_up(chunk_bytes_); };
  const char* in = static_cast<const char*>(send);
  char* out = static_cast<char*>(recv);
  Region& own = region(rank_);

  for (std::size_t r = 0; r < rounds; ++r) {
    const uint64_t round = ++round_;
    const std::size_t begin = r * chunk, length = std::min(chunk, count - std::min(count, begin));
    // 1. Publish this rank's input (everyone reduced the previous round: step 3 waited for it).
    own.header = mine;
    if (length > 0) std::memcpy(input(rank_), in + begin * element, length * element);
    own.counters[kArrived].value.store(round, std::memory_order_release);

    // 2. Compare headers, then reduce this rank's share once everyone has copied the last one.
    wait_for(kArrived, round, deadline);
    for (int peer = 0; peer < n; ++peer) {
      if (peer != rank_) check_header(header, rank_, region(peer).header, peer);
    }
    wait_for(kCopied, round - 1, deadline);
    const Share share = share_of(length, n, rank_);
    if (share.count > 0) {
      const std::size_t offset = share.begin * element, bytes = share.count * element;
      std::memcpy(result(rank_), input(0) + offset, bytes);
      for (int peer = 1; peer < n; ++peer) {
        reduce_into(result(rank_), input(peer) + offset, share.count, dtype, op);
      }
      if (op == ReduceOp::kAvg) finish_average(result(rank_), share.count, dtype, n);
    }
    own.counters[kReduced].value.store(round, std::memory_order_release);

    // 3. Gather every share.
    wait_for(kReduced, round, deadline);
    for (int peer = 0; peer < n; ++peer) {
      const Share theirs = share_of(length, n, peer);
      if (theirs.count == 0) continue;
      std::memcpy(out + (begin + theirs.begin) * element, result(peer), theirs.count * element);
    }
    own.counters[kCopied].value.store(round, std::memory_order_release);
  }
}

void ShmAllReduce::check(const CollectiveHeader& header, Clock::time_point deadline) {
  run(nullptr, nullptr, 0, DType::kF32, ReduceOp::kSum, header, deadline);
}

}  // namespace dpt
