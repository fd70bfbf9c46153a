// CUDA_CHECK: turns a CUDA runtime error code into a dpt::Error (kInternal) whose one-line
// message names the call site, the failing expression and the runtime's text for the code, and,
// for the sticky errors of a failed kernel, says that this call only saw what an earlier one did.
#pragma once

#include <cuda_runtime_api.h>

#include "devices/error.h"

namespace dpt {

// "" or, for an error that leaves the process's CUDA context unusable (the runtime documents
// these as "any further CUDA work will return the same error": a kernel's illegal address,
// assert, ...), a note saying so. Such an error is reported by whichever call comes next (often
// a synchronize or the next launch check), not by the kernel that caused it.
inline const char* cuda_error_hint(cudaError_t status) {
  switch (status) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchFailure:
    case cudaErrorTensorMemoryLeak:
      return "; a kernel queued earlier on this GPU failed (this call only reports it), and "
             "every later CUDA call of this process fails the same way";
    case cudaErrorContained:
    case cudaErrorExternalDevice:
      return "; the GPU reported a fatal error (hardware or an external device), and every later "
             "CUDA call of this process fails the same way";
    default:
      return "";
  }
}

// Returns `status` after clearing the thread's last error that a failed call set, which the next
// launch check (CUDA_CHECK_LAUNCH) would otherwise report as its own: for calls whose failure is
// reported by the caller, and for cleanup that cannot throw (destructors, error paths), where it
// is dropped. Sticky errors (an illegal address) stay: every later call reports them anyway.
inline cudaError_t cuda_clear_error(cudaError_t status) {
  if (status != cudaSuccess) cudaGetLastError();
  return status;
}

}  // namespace dpt

// A failed call's code is also the thread's last error, which a later launch check
// (CUDA_CHECK_LAUNCH's cudaGetLastError) would report as its own: it is cleared here (sticky
// errors, e.g. an illegal address, stay: every later call reports them anyway).
#define CUDA_CHECK(expr)                                                                           \
  do {                                                                                             \
    const cudaError_t dpt_cuda_status = ::dpt::cuda_clear_error(expr);                             \
    DPT_CHECK(dpt_cuda_status == cudaSuccess)                                                      \
        << "CUDA error at " << __FILE__ << ":" << __LINE__ << ": " << #expr << ": "                \
        << cudaGetErrorName(dpt_cuda_status) << " (" << cudaGetErrorString(dpt_cuda_status) << ")" \
        << ::dpt::cuda_error_hint(dpt_cuda_status);                                                \
  } while (0)
