// NcclLibrary (comm/nccl_library.h): dlopen and dlsym of each entry point.
#include "comm/nccl_library.h"

#include <dlfcn.h>

#include "devices/error.h"

namespace dpt {
namespace {

template <typename Fn>
void resolve(void* library, const std::string& soname, const char* symbol, Fn& fn) {
  dlerror();
  void* address = dlsym(library, symbol);
  const char* error = dlerror();
  DPT_CHECK_AS(ErrorKind::kConfig, address != nullptr && error == nullptr)
      << "comm.backend: \"nccl\": " << soname << " has no symbol " << symbol << " ("
      << (error ? error : "null") << ")";
  fn = reinterpret_cast<Fn>(address);
}

}  // namespace

NcclLibrary::NcclLibrary() {
  std::string errors;
  const std::string toolkit_copy = std::string(DPT_NCCL_LIBRARY_DIR) + "/libnccl.so.2";
  for (const std::string& soname : {std::string("libnccl.so.2"), toolkit_copy}) {
    library_ = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (library_ != nullptr) {
      soname_ = soname;
      break;
    }
    const char* error = dlerror();
    errors += (errors.empty() ? "" : "; ") + (error ? std::string(error) : soname);
  }
  DPT_CHECK_AS(ErrorKind::kConfig, library_ != nullptr)
      << "comm.backend: \"nccl\": cannot load NCCL (" << errors
      << "); install libnccl2 or add its directory to the loader path";
  try {
    resolve(library_, soname_, "ncclGetVersion", get_version);
    resolve(library_, soname_, "ncclGetUniqueId", get_unique_id);
    resolve(library_, soname_, "ncclCommInitRankConfig", comm_init_rank_config);
    resolve(library_, soname_, "ncclCommGetAsyncError", comm_get_async_error);
    resolve(library_, soname_, "ncclCommAbort", comm_abort);
    resolve(library_, soname_, "ncclCommFinalize", comm_finalize);
    resolve(library_, soname_, "ncclCommDestroy", comm_destroy);
    resolve(library_, soname_, "ncclAllReduce", all_reduce);
    resolve(library_, soname_, "ncclBroadcast", broadcast);
    resolve(library_, soname_, "ncclAllGather", all_gather);
    resolve(library_, soname_, "ncclReduceScatter", reduce_scatter);
    resolve(library_, soname_, "ncclGetErrorString", error_string);
    resolve(library_, soname_, "ncclGetLastError", last_error);
  } catch (...) {
    dlclose(library_);
    throw;
  }
  DPT_CHECK_AS(ErrorKind::kConfig, get_version(&version_) == ncclSuccess)
      << "comm.backend: \"nccl\": ncclGetVersion failed in " << soname_;
  // ncclCommInitRankConfig and ncclCommGetAsyncError's non-blocking mode: NCCL 2.14 on.
  DPT_CHECK_AS(ErrorKind::kConfig, version_ >= 21400)
      << "comm.backend: \"nccl\": " << version() << " is too old (dpt needs NCCL 2.14 or newer)";
}

NcclLibrary::~NcclLibrary() {
  if (library_ != nullptr) dlclose(library_);
}

std::string NcclLibrary::version() const {
  // NCCL_VERSION: X*1000+Y*100+Z up to 2.8, X*10000+Y*100+Z from 2.9 on.
  const int v = version_;
  const bool wide = v >= 20900;
  const int major = wide ? v / 10000 : v / 1000;
  const int minor = wide ? v / 100 % 100 : v / 100 % 10;
  return "NCCL " + std::to_string(major) + "." + std::to_string(minor) + "." +
         std::to_string(v % 100) + " (" + soname_ + ")";
}

std::string NcclLibrary::describe(ncclResult_t result, ncclComm_t comm) const {
  std::string text = error_string(result);
  const char* last = comm != nullptr ? last_error(comm) : nullptr;
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

ncclRedOp_t nccl_reduce_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kMax:
      return ncclMax;
    case ReduceOp::kMin:
      return ncclMin;
    case ReduceOp::kAvg:
      return ncclAvg;  // floats: each input times 1/n, then summed; integers: sum / n
    default:
      return ncclSum;
  }
}

}  // namespace dpt
