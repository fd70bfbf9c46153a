// The first usable GPU as a Device for tests that need one: null, with the reason set, where
// there is none (the test then skips with GTEST_SKIP and that reason).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "devices/cuda_support.h"

namespace dpt::testing {

inline std::unique_ptr<Device> first_gpu(std::string& reason) {
  const GpuProbe probe = probe_gpus();
  const std::vector<GpuInfo> usable = usable_gpus(probe);
  if (usable.empty()) {
    reason = "no usable GPU: " + probe.reason;
    return nullptr;
  }
  return make_cuda_device(usable.front().index);
}

}  // namespace dpt::testing
