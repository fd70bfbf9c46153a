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
// Averages are ncclAvg where that equals sum / n (nccl_average_is_exact, below), else an ncclSum
// divided by the world size on the host; all_reduce's float max/min is a gather reduced on the
// host. So both give the host backends' bits (NaN propagates); both run at every world size, one
// rank too. reduce_scatter's float max/min is NCCL's (fmaxf: a NaN operand
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

// Whether ncclAvg gives the host backends' average, sum / n: float32, float64 or bf16 and a world
// size that is a power of two. ncclAvg multiplies each input by 1/n in its own type before summing
// (NCCL's PreMulSum; bf16's 1/3 is 0.334); by 2^-k that is exact and commutes with the sum's
// rounding, except where x / n falls below the type's normal range (|x| < 2^-126 * n) or a sum
// overflows where the average does not (near 3.4e38: ncclAvg stays finite). fp16 is left out:
// its range makes both plausible (two ranks' 40000 sum to inf, average to 40000 under ncclAvg).
// fp16, integers and other sizes: ncclSum, divided on the host. (ncclAvg also keeps NCCL off its
// NVLS algorithms, which take sum and min/max only: averages are on no hot path.)
inline bool nccl_average_is_exact(DType dtype, int size) {
  const bool wide_float = dtype == DType::kF32 || dtype == DType::kF64 || dtype == DType::kBF16;
  return wide_float && size > 0 && (size & (size - 1)) == 0;
}

}  // namespace dpt
