// All-reduce through memory that every rank of one node maps (an MPI shared-memory window, or
// plain memory in the thread world): no messages, no rendezvous. Each rank owns one region of
// region_bytes(): three progress counters on their own cache lines, its collective header, an
// input area and a result area. Per round (a chunk of at most chunk_bytes of the message):
//   1. copy this chunk of `send` and the header into the own input area; arrived = round
//   2. wait until every rank arrived; compare every header (a mismatch is refused by name before
//      any output is written); reduce this rank's share of the chunk, reading every rank's input
//      in rank order, into the own result area; reduced = round
//   3. wait until every rank reduced; copy every rank's result share into `recv`; copied = round
// A rank overwrites its input only after everyone has reduced the previous round, and its result
// only after everyone has copied it, so two rounds never mix. Every element is reduced once, by
// one rank, in rank order 0..n-1: all ranks end with the same bits, independent of chunk_bytes.
// Waits poll the counters against the collective's deadline (spin, then yield, then nap) and
// throw CommTimeout naming the rank that did not come, so a hung or dead peer gives an error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "comm/collective_check.h"
#include "comm/transport.h"

namespace dpt {

class ShmAllReduce {
 public:
  // The chunk used for comm.chunk_bytes: 64 KiB for 0 (automatic), else at most 64 KiB, so one
  // round's inputs and results stay in the cores' caches (larger chunks measured slower here),
  // and at least 64 bytes.
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

  // recv = op over ranks of send (count elements; send == recv allowed; kAvg: the average).
  // `header` carries the sequence number; every rank must call with the same header.
  void run(const void* send, void* recv, std::size_t count, DType dtype, ReduceOp op,
           const CollectiveHeader& header, Clock::time_point deadline);
  // Only the header comparison (one round without data); returns once every rank has arrived,
  // so it is also a barrier. Throws dpt::Error(kComm) naming both calls on a mismatch.
  void check(const CollectiveHeader& header, Clock::time_point deadline);

 private:
  struct Region;
  Region& region(int rank) const;
  void wait_for(int which, uint64_t round, Clock::time_point deadline) const;

  std::vector<char*> regions_;
  int rank_;
  std::size_t chunk_bytes_;
  std::function<void()> on_wait_;
  uint64_t round_ = 0;  // rounds run so far, the same on every rank
};

}  // namespace dpt
