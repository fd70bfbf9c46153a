// comm/nccl_communicator.h for builds without CUDA or without NCCL's header: no "nccl" backend.
#include "comm/nccl_communicator.h"

#include "devices/error.h"

namespace dpt {

std::unique_ptr<Communicator> make_nccl_communicator(const CommOptions&, Device*) {
  DPT_THROW(ErrorKind::kConfig) << "comm.backend: \"nccl\": this build has no NCCL/CUDA support "
                                   "(built with DPT_WITH_NCCL=OFF; it needs DPT_WITH_CUDA and "
                                   "nccl.h)";
}

bool nccl_built() { return false; }

std::string nccl_version() {
  make_nccl_communicator({}, nullptr);  // throws
  return "";
}

}  // namespace dpt
