// The all-reduces dpt bench comm times (launch/bench_comm.h): dpt's algorithms on the mpi
// backend, a plain MPI_Allreduce and the --backend communicator, each made as one BenchCall
// (launch/bench_comm_timing.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "launch/bench_comm.h"
#include "launch/bench_comm_timing.h"

namespace dpt {

struct AlgorithmInfo {
  std::string key;    // --algorithms and JSON name ("backend" for --backend)
  std::string title;  // table heading
};

// --algorithms in table order; without it every algorithm, or with --backend only MPI_Allreduce
// (the backend's column is added by the caller). Throws kConfig naming an unknown algorithm.
std::vector<AlgorithmInfo> chosen_algorithms(const std::vector<std::string>& keys, bool backend);

// The GPU of --backend nccl: node-local rank k uses GPU k (as training's device selection); null
// for any other backend. Throws kConfig naming the rank when that GPU is not usable.
std::shared_ptr<Device> backend_device(const BenchCommArgs& args, const WorldInfo& world);

// The --backend communicator (collective: every rank), as make_communicator builds it from
// comm { backend plugin_path chunk_bytes ring_threshold_bytes } on `device` (may be null).
std::shared_ptr<Communicator> make_backend(const BenchCommArgs& args, Device* device);

// An in-place float32 sum all-reduce on `comm`, which the call keeps alive.
AllReduce all_reduce_of(std::shared_ptr<Communicator> comm);

// The all-reduce `info` names, on `max_count` floats. dpt's communicators are made here
// (collective: every rank, in the same order) and kept alive by the returned call. "auto" runs
// on a buffer from the communicator's allocate_shared, as training's gradient buffer does.
// "mpi" calls MPI_Allreduce directly on MPI_COMM_WORLD, as a user of MPI would.
BenchCall make_all_reduce(const AlgorithmInfo& info, const CommOptions& base,
                          std::size_t max_count);

}  // namespace dpt
