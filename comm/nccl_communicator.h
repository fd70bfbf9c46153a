// The "nccl" backend: NVIDIA's collectives on the worker's CUDA device. Buffers are device
// memory (device_memory() is true), or host memory, which is staged through device scratch (the
// trainer's few-byte sums and checks). One NCCL communicator per worker, created after the worker's
// GPU is set, non-blocking (ncclCommInitRankConfig with blocking = 0); its unique id is broadcast
// over MPI_COMM_WORLD (bootstrap only: no data moves over MPI). Collectives run on a dedicated
// high-priority stream that waits for the device's compute stream (cudaEvent), so a bucket's
// all-reduce started on GradSync's thread runs while backward keeps queueing kernels; each call
// returns when its result is in place. Before the data moves, ranks compare what they were asked
// (comm/collective_check.h's header, one small all_gather). Every wait is polled against
// comm.timeout_s and ncclCommGetAsyncError (comm/nccl_watchdog.h); a timeout or NCCL error calls
// ncclCommAbort and throws kComm naming the collective, its sequence number and the rank.
// Averages are an ncclSum divided by the world size on the host, and all_reduce's float max/min a
// gather reduced on the host, so both give the host backends' bits (NaN propagates); both run at
// every world size, one rank too. reduce_scatter's float max/min is NCCL's (fmaxf: a NaN operand
// is dropped); nothing in dpt calls it.
// NCCL refuses two ranks on one GPU (ncclInvalidUsage, "Duplicate GPU detected"); the device
// choice (launch/gpu_assignment.h) never starts them. Without MPI the world is one process (no
// bootstrap).
// Built from nccl_communicator.cpp with DPT_WITH_CUDA and NCCL's header, from
// nccl_communicator_none.cpp otherwise (which throws kConfig).
#pragma once

#include <memory>
#include <string>

#include "comm/communicator.h"
#include "devices/device.h"

namespace dpt {

// Throws kConfig naming comm.backend when `device` is not a CUDA device (or null), when this
// build has no NCCL/CUDA support, or when libnccl.so.2 cannot be loaded; kComm when the
// communicator cannot be created within options.timeout_s.
std::unique_ptr<Communicator> make_nccl_communicator(const CommOptions& options, Device* device);

// Whether this build has the nccl backend (DPT_WITH_CUDA and nccl.h at build time). Says nothing
// about NCCL or a GPU being present at run time.
bool nccl_built();

// "NCCL 2.28.9 (libnccl.so.2)": loads NCCL (needs no GPU) and reports its version. Throws kConfig
// as make_nccl_communicator does when the build has no backend or the library cannot be loaded.
std::string nccl_version();

}  // namespace dpt
