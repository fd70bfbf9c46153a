// NCCL loaded at run time with dlopen (libnccl.so.2, then the copy next to the toolkit dpt was
// built against), so the dpt binary has no link-time dependency on NCCL and starts on machines
// without it or without the NVIDIA driver. Only the entry points the "nccl" backend calls are
// resolved; the types come from nccl.h. Loading needs no GPU. Compiled only with DPT_WITH_CUDA.
#pragma once

#include <nccl.h>

#include <string>

#include "devices/dynamic_library.h"

#include "comm/communicator.h"

namespace dpt {

class NcclLibrary {
 public:
  // Loads the library and resolves every entry point. Throws dpt::Error (kConfig) naming
  // comm.backend and dlerror()'s text when it cannot.
  NcclLibrary();
  NcclLibrary(const NcclLibrary&) = delete;
  NcclLibrary& operator=(const NcclLibrary&) = delete;

  int version_code() const { return version_; }  // NCCL_VERSION_CODE of the loaded library
  std::string version() const;                   // e.g. "NCCL 2.28.9 (libnccl.so.2)"

  decltype(&ncclGetVersion) get_version = nullptr;
  decltype(&ncclGetUniqueId) get_unique_id = nullptr;
  decltype(&ncclCommInitRankConfig) comm_init_rank_config = nullptr;
  decltype(&ncclCommGetAsyncError) comm_get_async_error = nullptr;
  decltype(&ncclCommAbort) comm_abort = nullptr;
  decltype(&ncclCommFinalize) comm_finalize = nullptr;
  decltype(&ncclCommDestroy) comm_destroy = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclBroadcast) broadcast = nullptr;
  decltype(&ncclAllGather) all_gather = nullptr;
  decltype(&ncclReduceScatter) reduce_scatter = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;
  decltype(&ncclGetLastError) last_error = nullptr;

  // "unhandled system error (last: <ncclGetLastError>)" for a result code.
  std::string describe(ncclResult_t result, ncclComm_t comm) const;

 private:
  DynamicLibrary library_;
  int version_ = 0;
};

// NCCL's type for a dtype (all six have one) and the op NCCL runs for a ReduceOp on `dtype` in a
// world of `size`. kAvg maps to ncclAvg where that is exactly sum / n (nccl_average_is_exact,
// comm/nccl_communicator.h), else to ncclSum, which the caller divides by the world size on the
// host.
ncclDataType_t nccl_dtype(DType dtype);
ncclRedOp_t nccl_reduce_op(ReduceOp op, DType dtype, int size);

}  // namespace dpt
