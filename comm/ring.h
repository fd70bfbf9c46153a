// Bandwidth-optimal collectives over a Transport: ring all-reduce (reduce-scatter then
// all-gather; each rank sends and receives 2(n-1)/n of the buffer, the lower bound), ring
// reduce-scatter and all-gather, pipelined chain broadcast, and a dissemination barrier.
// Each step is split into chunks that are sent while the previous chunk is reduced.
// All ranks end with identical bits: every element is reduced once, on one rank, then copied.
// When a wait passes `deadline` the call throws CommTimeout naming the peer it was waiting for.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm/transport.h"

namespace dpt {

// Thrown by the algorithms when the deadline passes; the communicator turns it into
// dpt::Error(kComm) with the collective's name, sequence number and the missing ranks.
class CommTimeout : public std::runtime_error {
 public:
  CommTimeout(int waiting_for, const std::string& what)
      : std::runtime_error(what), waiting_for_(waiting_for) {}
  // The peer whose message did not arrive.
  int waiting_for() const { return waiting_for_; }

 private:
  int waiting_for_;
};

struct RingOptions {
  std::size_t chunk_bytes = 1 << 20;  // pipelining granularity
  int tag = 0;                        // base tag; the algorithms use tags [tag, tag + 4)
  // Reduction scratch kept between calls (not owned); null: a fresh buffer per call, whose
  // allocation and zero-fill cost ~10 % at 1-2 MiB.
  std::vector<char>* scratch = nullptr;
};

// In place: data holds count elements on every rank; afterwards op over ranks. kAvg gives the
// average itself (each rank divides the block it owns before the all-gather): do not call
// finish_average() again. count may be 0 or smaller than size. World of one: no messages.
void ring_all_reduce(Transport& transport, void* data, std::size_t count, DType dtype, ReduceOp op,
                     Clock::time_point deadline, const RingOptions& options = {});
// data holds size * count elements; afterwards rank r's block [r*count, (r+1)*count) holds the
// reduction of that block over ranks (other blocks are scratch); kAvg divides it, as above.
void ring_reduce_scatter(Transport& transport, void* data, std::size_t count, DType dtype,
                         ReduceOp op, Clock::time_point deadline, const RingOptions& options = {});
// data holds size * count elements with this rank's block filled; afterwards all blocks.
void ring_all_gather(Transport& transport, void* data, std::size_t count, DType dtype,
                     Clock::time_point deadline, const RingOptions& options = {});
void chain_broadcast(Transport& transport, void* data, std::size_t count, DType dtype, int root,
                     Clock::time_point deadline, const RingOptions& options = {});
void dissemination_barrier(Transport& transport, Clock::time_point deadline,
                           const RingOptions& options = {});

}  // namespace dpt
