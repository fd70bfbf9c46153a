// All-reduce time per message size on the job's own Communicator (whatever comm.backend built:
// MPI today, NCCL or a vendor plug-in later), for `dpt bench report`. Every result is checked
// against the exact sum; times are the slowest rank's, median over calls. `dpt bench comm` is the
// deeper tool (every algorithm side by side, MPI_Allreduce as the reference).
#pragma once

#include <cstdint>
#include <vector>

#include "comm/communicator.h"

namespace dpt {

struct AllReduceTiming {
  uint64_t bytes = 0;
  int64_t calls = 0;
  double time_us = 0;    // median over calls of the slowest rank
  double algbw_gbs = 0;  // bytes / time
  double busbw_gbs = 0;  // algbw * 2(n-1)/n, as nccl-tests
};

// Float32 sum all-reduce at min_bytes, 2*min_bytes, ... up to max_bytes, about `seconds_per_size`
// of calls each (at least 5). Collective: every rank calls it with the same arguments. Throws
// kComm when a result is wrong on any rank.
std::vector<AllReduceTiming> measure_all_reduce(Communicator& comm, uint64_t min_bytes,
                                                uint64_t max_bytes, double seconds_per_size = 0.5);

}  // namespace dpt
