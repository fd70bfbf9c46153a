// All-reduce through memory that every rank of one node maps (an MPI shared-memory window, or
// plain memory in the thread world): no messages, no rendezvous. Each rank owns one region of
// region_bytes(): two progress counters on their own cache lines, its collective header, an
// input area and a result area.
//
// Buffers every rank maps (add_shared_buffer: the gradient buffer from
// Communicator::allocate_shared), reduced in place, take no copies at all: after every rank has
// arrived, each reduces its share of the elements, reading every rank's buffer in rank order, and
// writes the result into every rank's buffer; each returns once every rank has written (reduced).
//
// Other buffers go in rounds (a chunk of at most chunk_bytes of the message):
//   1. copy the peers' shares of this chunk of `send` and the header into the own input area;
//      arrived = round
//   2. wait until every rank arrived; compare every header (a mismatch is refused by name before
//      any output is written); reduce this rank's share of the chunk, reading its own `send` and
//      the peers' inputs in rank order, into the own result area; reduced = round
//   3. copy the own result share into `recv`, wait until every rank reduced, copy theirs
// A rank overwrites its input only after everyone has reduced the previous round (step 3 waited),
// and its result only after everyone has arrived at the next round, i.e. copied the previous one.
// Every element is reduced once, by one rank, in rank order 0..n-1: all ranks end with the same
// bits, independent of chunk_bytes and of the path.
// Waits poll the counters against the collective's deadline (spin, then yield, then nap) and
// throw CommTimeout naming the rank that did not come, so a hung or dead peer gives an error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "comm/collective_check.h"
#include "comm/transport.h"

namespace dpt {

class ShmAllReduce {
 public:
  // The chunk used for comm.chunk_bytes: 1 MiB for 0 (automatic), else at most 4 MiB and at
  // least 64 bytes. 1 MiB rounds ran 1.2-2x faster than 64 KiB ones at 64 KiB-8 MiB messages here
  // (fewer waits in lockstep); 1, 2 and 4 MiB measured alike.
  static std::size_t chunk_for(std::size_t chunk_bytes);
  // Bytes of one rank's region for a given chunk size.
  static std::size_t region_bytes(std::size_t chunk_bytes);

  // regions[j]: rank j's region as mapped in this process (each region_bytes(chunk_bytes),
  // 64-byte aligned). Zeroes this rank's own region: every rank must construct its ShmAllReduce
  // before any rank calls run() (a barrier after construction does it).
  // `on_wait`, when set, is called now and then while waiting and may throw (the thread world's
  // abort).
  ShmAllReduce(std::vector<char*> regions, int rank, std::size_t chunk_bytes,
               std::function<void()> on_wait = {});

  int size() const { return static_cast<int>(regions_.size()); }

  // Registers a buffer that every rank maps: bases[j] is rank j's buffer as mapped in this
  // process, `bytes` long each. Forgotten once `alive` expires. Every rank registers the same
  // buffers (Communicator::allocate_shared does it collectively).
  void add_shared_buffer(std::vector<char*> bases, std::size_t bytes, std::weak_ptr<void> alive);
  // Whether an in-place all-reduce of [data, data + bytes) takes the path without copies.
  bool shares(const void* data, std::size_t bytes) const;

  // recv = op over ranks of send (count elements; send == recv allowed; kAvg: the average).
  // `header` carries the sequence number; every rank must call with the same header, and with a
  // registered buffer (in place, at the same offset) or none: a mismatch is refused by name.
  void run(const void* send, void* recv, std::size_t count, DType dtype, ReduceOp op,
           const CollectiveHeader& header, Clock::time_point deadline);
  // Only the header comparison (one round without data); returns once every rank has arrived,
  // so it is also a barrier. Throws dpt::Error(kComm) naming both calls on a mismatch.
  void check(const CollectiveHeader& header, Clock::time_point deadline);

 private:
  struct Region;
  struct SharedBuffer {
    std::vector<char*> bases;
    std::size_t bytes;
    std::weak_ptr<void> alive;
  };
  Region& region(int rank) const;
  void wait_for(int which, uint64_t round, Clock::time_point deadline) const;
  // The registered buffer holding [data, data + bytes) and the offset of data in it, or null.
  const SharedBuffer* find_shared(const void* data, std::size_t bytes, std::size_t& offset) const;
  // Marks this rank arrived at `round` (header and path word already published), waits for the
  // others and compares their headers and path words.
  void arrive(uint64_t round, const CollectiveHeader& header, Clock::time_point deadline);
  void run_shared(const SharedBuffer& buffer, std::size_t offset, std::size_t count, DType dtype,
                  ReduceOp op, const CollectiveHeader& header, Clock::time_point deadline);

  std::vector<char*> regions_;
  int rank_;
  std::size_t chunk_bytes_;
  std::function<void()> on_wait_;
  uint64_t round_ = 0;  // rounds run so far, the same on every rank
  std::vector<SharedBuffer> shared_;
  std::vector<char> block_;  // the path without copies: one block of results
};

}  // namespace dpt
