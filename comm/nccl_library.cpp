// NcclLibrary (comm/nccl_library.h): dlopen and dlsym of each entry point.
#include "comm/nccl_library.h"

#include <dlfcn.h>

#include "comm/nccl_communicator.h"
#include "devices/error.h"

namespace dpt {

NcclLibrary::NcclLibrary()
    : library_({"libnccl.so.2", std::string(DPT_NCCL_LIBRARY_DIR) + "/libnccl.so.2"},
               RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE, "comm.backend: \"nccl\": NCCL",
               "install libnccl2 or add its directory to the loader path") {
  library_.resolve("ncclGetVersion", get_version);
  library_.resolve("ncclGetUniqueId", get_unique_id);
  library_.resolve("ncclCommInitRankConfig", comm_init_rank_config);
  library_.resolve("ncclCommGetAsyncError", comm_get_async_error);
  library_.resolve("ncclCommAbort", comm_abort);
  library_.resolve("ncclCommFinalize", comm_finalize);
  library_.resolve("ncclCommDestroy", comm_destroy);
  library_.resolve("ncclAllReduce", all_reduce);
  library_.resolve("ncclBroadcast", broadcast);
  library_.resolve("ncclAllGather", all_gather);
  library_.resolve("ncclReduceScatter", reduce_scatter);
  library_.resolve("ncclGetErrorString", error_string);
  library_.resolve("ncclGetLastError", last_error);
  DPT_CHECK_AS(ErrorKind::kConfig, get_version(&version_) == ncclSuccess)
      << "comm.backend: \"nccl\": ncclGetVersion failed in " << library_.soname();
  // ncclCommInitRankConfig and ncclCommGetAsyncError's non-blocking mode: NCCL 2.14 on.
  DPT_CHECK_AS(ErrorKind::kConfig, version_ >= 21400)
      << "comm.backend: \"nccl\": " << version() << " is too old (dpt needs NCCL 2.14 or newer)";
}

std::string NcclLibrary::version() const {
  // NCCL_VERSION: X*1000+Y*100+Z up to 2.8, X*10000+Y*100+Z from 2.9 on.
  const int v = version_;
  const bool wide = v >= 20900;
  const int major = wide ? v / 10000 : v / 1000;
  const int minor = wide ? v / 100 % 100 : v / 100 % 10;
  return "NCCL " + std::to_string(major) + "." + std::to_string(minor) + "." +
         std::to_string(v % 100) + " (" + library_.soname() + ")";
}

std::string NcclLibrary::describe(ncclResult_t result, ncclComm_t comm) const {
  std::string text = error_string(result);
  // ncclGetLastError ignores its argument (NCCL 2.28: "comm is currently unused and can be set
  // to NULL"), so a failed init, with no communicator yet, still gets NCCL's detail.
  const char* last = last_error(comm);
  if (last != nullptr && last[0] != '\0') text += std::string(" (") + last + ")";
  return text;
}

ncclDataType_t nccl_dtype(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return ncclFloat32;
    case DType::kF64:
      return ncclFloat64;
    case DType::kBF16:
      return ncclBfloat16;
    case DType::kF16:
      return ncclFloat16;
    case DType::kI32:
      return ncclInt32;
    case DType::kI64:
      return ncclInt64;
  }
  return ncclFloat32;
}

ncclRedOp_t nccl_reduce_op(ReduceOp op, DType dtype, int size) {
  switch (op) {
    case ReduceOp::kMax:
      return ncclMax;
    case ReduceOp::kMin:
      return ncclMin;
    case ReduceOp::kAvg:
      // Elsewhere a sum: the caller divides it on the host.
      return nccl_average_is_exact(dtype, size) ? ncclAvg : ncclSum;
    default:
      return ncclSum;
  }
}

}  // namespace dpt
