// CUDA_CHECK: turns a CUDA runtime error code into a dpt::Error (kInternal) whose one-line
// message names the call site, the failing expression and the runtime's text for the code.
#pragma once

#include <cuda_runtime_api.h>

#include "devices/error.h"

#define CUDA_CHECK(expr)                                                                    \
  do {                                                                                      \
    const cudaError_t dpt_cuda_status = (expr);                                             \
    DPT_CHECK(dpt_cuda_status == cudaSuccess)                                               \
        << "CUDA error at " << __FILE__ << ":" << __LINE__ << ": " << #expr << ": "         \
        << cudaGetErrorName(dpt_cuda_status) << " (" << cudaGetErrorString(dpt_cuda_status) \
        << ")";                                                                             \
  } while (0)
