// The first usable GPU for tests of the nccl backend: null, with the reason set, where this build
// has no nccl backend, libnccl.so.2 cannot be loaded (a GPU machine without NCCL) or there is no
// usable GPU; the test then skips with GTEST_SKIP and that reason.
#pragma once

#include <memory>
#include <string>

#include "comm/nccl_communicator.h"
#include "devices/error.h"
#include "first_gpu.h"

namespace dpt::testing {

inline std::unique_ptr<Device> first_nccl_gpu(std::string& reason) {
  if (!nccl_built()) {
    reason = "this build has no nccl backend";
    return nullptr;
  }
  try {
    nccl_version();
  } catch (const Error& error) {
    reason = std::string("NCCL cannot be loaded: ") + error.what();
    return nullptr;
  }
  return first_gpu(reason);
}

}  // namespace dpt::testing
