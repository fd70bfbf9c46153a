// Launch helpers for the element-wise kernels (.cu files only): a grid size for grid-stride loops
// and the check after each launch.
#pragma once

#include <algorithm>
#include <cstdint>

#include "devices/cuda/cuda_check.h"

namespace dpt {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n items (at least 1, at most 65536).
inline unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(blocks, 65536)));
}

// Throws dpt::Error naming the kernel when its launch failed (bad configuration, no kernel image
// for this GPU). Errors during the kernel's run surface at the next synchronizing call, or here
// at a later launch, with cuda_error_hint's note that an earlier kernel failed.
#define CUDA_CHECK_LAUNCH(kernel)                                                            \
  do {                                                                                       \
    const cudaError_t dpt_launch_status = cudaGetLastError();                                \
    DPT_CHECK(dpt_launch_status == cudaSuccess)                                              \
        << "CUDA launch of " << kernel << " failed: " << cudaGetErrorName(dpt_launch_status) \
        << " (" << cudaGetErrorString(dpt_launch_status) << ")"                              \
        << ::dpt::cuda_error_hint(dpt_launch_status);                                        \
  } while (0)

}  // namespace dpt
