// dpt bench comm: float32 sum all-reduce per message size with dpt's ring, dpt's native path
// (MPI_Iallreduce, polled), dpt's auto choice, any comm.backend by name (--backend, e.g. a
// collectives plug-in, or nccl with one GPU per rank) and a plain blocking MPI_Allreduce, next to
// the memory copy bandwidth that bounds them. Every result is checked. Needs mpirun -np >= 2.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "launch/world.h"

namespace dpt {

struct BenchCommArgs {
  uint64_t min_bytes = 4 << 10;    // first message size; sizes double up to max_bytes
  uint64_t max_bytes = 128 << 20;  // last message size (and the memcpy buffer)
  int64_t iters = 0;               // timed calls per size and algorithm; 0: scaled by size
  int64_t warmup = -1;             // untimed calls before each pass; -1: scaled by size
  uint64_t chunk_bytes = CommOptions{}.chunk_bytes;                  // for dpt's algorithms
  uint64_t threshold_bytes = CommOptions{}.ring_threshold_bytes;     // for dpt auto across nodes
  uint64_t shm_threshold_bytes = CommOptions{}.shm_threshold_bytes;  // for dpt auto on one node
  std::vector<std::string>
      algorithms;           // subset of ring, mpi, native, auto-plain, auto; empty: all (with
                            // --backend: mpi only)
  std::string backend;      // a comm.backend to time as well ("plugin", "mpi", ...)
  std::string plugin_path;  // comm.plugin_path for --backend plugin
  std::string json;         // write results here too when not empty
};

// Every rank of `world` must call it. Only rank 0 prints and writes the JSON. Throws kConfig for
// a world of one and kComm when any all-reduce result is wrong.
int run_bench_comm(const BenchCommArgs& args, const WorldInfo& world);

}  // namespace dpt
