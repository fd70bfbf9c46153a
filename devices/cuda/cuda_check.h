// CUDA_CHECK: turns a CUDA runtime error code into a dpt::Error (kInternal) whose one-line
// message names the call site, the failing expression and the runtime's text for the code.
#pragma once

#include <cuda_runtime_api.h>

#include "devices/error.h"

// A failed call's code is also the thread's last error, which a later launch check
// (CUDA_CHECK_LAUNCH's cudaGetLastError) would report as its own: it is cleared here (sticky
// errors, e.g. an illegal address, stay: every later call reports them anyway).
#define CUDA_CHECK(expr)                                                                    \
  do {                                                                                      \
    const cudaError_t dpt_cuda_status = (expr);                                             \
    if (dpt_cuda_status != cudaSuccess) cudaGetLastError();                                 \
    DPT_CHECK(dpt_cuda_status == cudaSuccess)                                               \
        << "CUDA error at " << __FILE__ << ":" << __LINE__ << ": " << #expr << ": "         \
        << cudaGetErrorName(dpt_cuda_status) << " (" << cudaGetErrorString(dpt_cuda_status) \
        << ")";                                                                             \
  } while (0)
