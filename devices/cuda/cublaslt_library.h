// cuBLASLt loaded at run time with dlopen (libcublasLt.so.13 by soname, then from the toolkit's
// library directory), so the dpt binary has no link-time dependency on it and starts on machines
// without the CUDA toolkit. Only the entry points dpt calls are resolved; the types come from
// cublasLt.h. One instance per CudaDevice, which creates its cublasLtHandle_t through it. Loading
// needs no GPU or driver. Opened with RTLD_NODELETE, as libnccl: the 0.5 GB library (with its own
// static CUDA runtime) is loaded once per process, not again for every probe and device.
#pragma once

#include <cublasLt.h>

#include <string>

#include "devices/dynamic_library.h"

namespace dpt {

class CublasLtLibrary {
 public:
  // Loads the library (by soname, then from the toolkit directory dpt was built against) and
  // resolves every entry point. Throws dpt::Error (kConfig) with dlerror()'s text when it cannot.
  CublasLtLibrary();
  CublasLtLibrary(const CublasLtLibrary&) = delete;
  CublasLtLibrary& operator=(const CublasLtLibrary&) = delete;

  std::string version() const;  // e.g. "cuBLASLt 13.0.0 (libcublasLt.so.13)"

  decltype(&cublasLtCreate) create = nullptr;
  decltype(&cublasLtDestroy) destroy = nullptr;
  decltype(&cublasLtGetVersion) get_version = nullptr;
  decltype(&cublasLtGetStatusString) status_string = nullptr;
  decltype(&cublasLtMatmulDescCreate) desc_create = nullptr;
  decltype(&cublasLtMatmulDescDestroy) desc_destroy = nullptr;
  decltype(&cublasLtMatmulDescSetAttribute) desc_set = nullptr;
  decltype(&cublasLtMatrixLayoutCreate) layout_create = nullptr;
  decltype(&cublasLtMatrixLayoutDestroy) layout_destroy = nullptr;
  decltype(&cublasLtMatmulPreferenceCreate) preference_create = nullptr;
  decltype(&cublasLtMatmulPreferenceDestroy) preference_destroy = nullptr;
  decltype(&cublasLtMatmulPreferenceSetAttribute) preference_set = nullptr;
  decltype(&cublasLtMatmulAlgoGetHeuristic) heuristic = nullptr;
  decltype(&cublasLtMatmul) matmul = nullptr;

  // Throws dpt::Error (kInternal) when status is not CUBLAS_STATUS_SUCCESS, naming `what`.
  void check(cublasStatus_t status, const char* what) const;

 private:
  DynamicLibrary library_;
};

}  // namespace dpt
