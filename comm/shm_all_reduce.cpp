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

enum Which { kArrived = 0, kReduced = 1 };

// Rank `rank`'s share [begin, begin + count) of `total` elements split n ways (the first
// total % n shares get one more).
struct Share {
  std::size_t begin, count;
};
Share share_of(std::size_t total, int n, int rank) {
  const std::size_t base = total / n, extra = total % n, r = static_cast<std::size_t>(rank);
  return {r * base + std::min(r, extra), base + (r < extra ? 1 : 0)};
}

// A spin-wait hint: lets the sibling hardware thread run (the two vCPUs here may be one core).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long a wait has lasted decides how it polls: back to back, then yielding the CPU (ranks may
// outnumber cores), then napping.
void pause(Clock::duration waited) {
  if (waited < std::chrono::microseconds(50)) return cpu_relax();
  if (waited < std::chrono::milliseconds(2)) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

}  // namespace

struct ShmAllReduce::Region {
  Counter counters[2];  // indexed by Which
  alignas(kLine) HeaderWords header;
  uint64_t path;  // 0: the rounds with copies; else 1 + the offset in a registered buffer
};

static_assert(sizeof(std::atomic<uint64_t>) == sizeof(uint64_t) &&
                  std::atomic<uint64_t>::is_always_lock_free,
              "shared-memory counters must be plain lock-free words");

std::size_t ShmAllReduce::chunk_for(std::size_t chunk_bytes) {
  constexpr std::size_t kAutomatic = std::size_t{1} << 20, kMax = std::size_t{4} << 20;
  return chunk_bytes == 0 ? kAutomatic : std::clamp<std::size_t>(chunk_bytes, kLine, kMax);
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

void ShmAllReduce::add_shared_buffer(std::vector<char*> bases, std::size_t bytes,
                                     std::weak_ptr<void> alive) {
  DPT_CHECK(static_cast<int>(bases.size()) == size())
      << "shared-memory all-reduce: " << bases.size() << " buffer bases for " << size() << " ranks";
  shared_.erase(std::remove_if(shared_.begin(), shared_.end(),
                               [](const SharedBuffer& b) { return b.alive.expired(); }),
                shared_.end());
  shared_.push_back({std::move(bases), bytes, std::move(alive)});
}

const ShmAllReduce::SharedBuffer* ShmAllReduce::find_shared(const void* data, std::size_t bytes,
                                                            std::size_t& offset) const {
  const auto address = reinterpret_cast<uintptr_t>(data);
  for (const SharedBuffer& buffer : shared_) {
    const auto base = reinterpret_cast<uintptr_t>(buffer.bases[static_cast<std::size_t>(rank_)]);
    if (address < base || address - base > buffer.bytes || bytes > buffer.bytes - (address - base))
      continue;
    if (buffer.alive.expired()) continue;
    offset = address - base;
    return &buffer;
  }
  return nullptr;
}

bool ShmAllReduce::shares(const void* data, std::size_t bytes) const {
  std::size_t offset = 0;
  return find_shared(data, bytes, offset) != nullptr;
}

void ShmAllReduce::arrive(uint64_t round, const CollectiveHeader& header,
                          Clock::time_point deadline) {
  Region& own = region(rank_);
  own.counters[kArrived].value.store(round, std::memory_order_release);
  wait_for(kArrived, round, deadline);
  for (int peer = 0; peer < size(); ++peer) {
    if (peer == rank_) continue;
    const Region& theirs = region(peer);
    check_header(header, rank_, theirs.header, peer);
    if (theirs.path == own.path) continue;
    auto path = [](uint64_t word) {
      return word == 0 ? std::string("a buffer of its own")
                       : "its shared buffer at byte offset " + std::to_string(word - 1);
    };
    DPT_THROW(ErrorKind::kComm) << collective_label(header) << ": rank " << peer << " reduces "
                                << path(theirs.path) << " but rank " << rank_ << " "
                                << path(own.path)
                                << " (every rank or none must pass its allocate_shared buffer)";
  }
}

void ShmAllReduce::run_shared(const SharedBuffer& buffer, std::size_t offset, std::size_t count,
                              DType dtype, ReduceOp op, const CollectiveHeader& header,
                              Clock::time_point deadline) {
  const int n = size();
  const std::size_t element = dtype_size(dtype);
  const uint64_t round = ++round_;
  Region& own = region(rank_);
  own.header = encode_header(header);
  own.path = 1 + offset;
  arrive(round, header, deadline);

  // Reduce this rank's share block by block into a cache-sized buffer, then store the block
  // into every rank's buffer. Only this rank touches its share of any buffer until everyone has
  // reduced.
  const Share share = share_of(count, n, rank_);
  const std::size_t block = std::max<std::size_t>(1, (std::size_t{32} << 10) / element);
  block_.resize(block * element);
  for (std::size_t done = 0; done < share.count && n > 1; done += block) {
    const std::size_t length = std::min(block, share.count - done);
    const std::size_t at = offset + (share.begin + done) * element;
    auto source = [&](int j) { return buffer.bases[static_cast<std::size_t>(j)] + at; };
    reduce_pair(block_.data(), source(0), source(1), length, dtype, op);
    for (int peer = 2; peer < n; ++peer) {
      reduce_into(block_.data(), source(peer), length, dtype, op);
    }
    if (op == ReduceOp::kAvg) finish_average(block_.data(), length, dtype, n);
    for (int j = 0; j < n; ++j) std::memcpy(source(j), block_.data(), length * element);
  }
  own.counters[kReduced].value.store(round, std::memory_order_release);
  wait_for(kReduced, round, deadline);
}

void ShmAllReduce::run(const void* send, void* recv, std::size_t count, DType dtype, ReduceOp op,
                       const CollectiveHeader& header, Clock::time_point deadline) {
  std::size_t offset = 0;
  const SharedBuffer* shared =
      send == recv ? find_shared(recv, count * dtype_size(dtype), offset) : nullptr;
  if (shared != nullptr) return run_shared(*shared, offset, count, dtype, op, header, deadline);
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
    // 1. Publish the peers' shares of this chunk (everyone reduced the previous round: step 3
    //    waited for it). This rank reads its own share from `send` itself.
    own.header = mine;
    own.path = 0;
    for (int peer = 0; peer < n; ++peer) {
      const Share theirs = share_of(length, n, peer);
      if (peer == rank_ || theirs.count == 0) continue;
      std::memcpy(input(rank_) + theirs.begin * element, in + (begin + theirs.begin) * element,
                  theirs.count * element);
    }

    // 2. Compare headers, then reduce this rank's share into its result area. Every peer that
    //    arrived has copied the previous round's results, so the area is free again.
    arrive(round, header, deadline);
    const Share share = share_of(length, n, rank_);
    if (share.count > 0) {
      const std::size_t offset = share.begin * element;
      auto source = [&](int j) -> const char* {
        return j == rank_ ? in + begin * element + offset : input(j) + offset;
      };
      if (n == 1) {
        std::memcpy(result(rank_), source(0), share.count * element);
      } else {
        reduce_pair(result(rank_), source(0), source(1), share.count, dtype, op);
      }
      for (int peer = 2; peer < n; ++peer) {
        reduce_into(result(rank_), source(peer), share.count, dtype, op);
      }
      if (op == ReduceOp::kAvg) finish_average(result(rank_), share.count, dtype, n);
    }
    own.counters[kReduced].value.store(round, std::memory_order_release);

    // 3. Gather every share: the own one while it is still in cache and the peers finish theirs
    //    (`send` may be `recv`: its share was read in step 2), then the peers'.
    auto gather = [&](int j) {
      const Share theirs = share_of(length, n, j);
      if (theirs.count == 0) return;
      std::memcpy(out + (begin + theirs.begin) * element, result(j), theirs.count * element);
    };
    gather(rank_);
    wait_for(kReduced, round, deadline);
    for (int peer = 0; peer < n; ++peer) {
      if (peer != rank_) gather(peer);
    }
  }
}

void ShmAllReduce::check(const CollectiveHeader& header, Clock::time_point deadline) {
  run(nullptr, nullptr, 0, DType::kF32, ReduceOp::kSum, header, deadline);
}

}  // namespace dpt
