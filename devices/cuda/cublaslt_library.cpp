// CublasLtLibrary: dlopen and dlsym of each entry point.
#include "devices/cuda/cublaslt_library.h"

#include <dlfcn.h>

#include "devices/error.h"

namespace dpt {

CublasLtLibrary::CublasLtLibrary()
    : library_({"libcublasLt.so.13", std::string(DPT_CUDA_LIBRARY_DIR) + "/libcublasLt.so.13"},
               RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE, "cuBLASLt",
               "install the CUDA toolkit's cuBLAS or add its lib64 to the loader path") {
  library_.resolve("cublasLtCreate", create);
  library_.resolve("cublasLtDestroy", destroy);
  library_.resolve("cublasLtGetVersion", get_version);
  library_.resolve("cublasLtGetStatusString", status_string);
  library_.resolve("cublasLtMatmulDescCreate", desc_create);
  library_.resolve("cublasLtMatmulDescDestroy", desc_destroy);
  library_.resolve("cublasLtMatmulDescSetAttribute", desc_set);
  library_.resolve("cublasLtMatrixLayoutCreate", layout_create);
  library_.resolve("cublasLtMatrixLayoutDestroy", layout_destroy);
  library_.resolve("cublasLtMatmulPreferenceCreate", preference_create);
  library_.resolve("cublasLtMatmulPreferenceDestroy", preference_destroy);
  library_.resolve("cublasLtMatmulPreferenceSetAttribute", preference_set);
  library_.resolve("cublasLtMatmulAlgoGetHeuristic", heuristic);
  library_.resolve("cublasLtMatmul", matmul);
}

std::string CublasLtLibrary::version() const {
  const std::size_t v = get_version();
  return "cuBLASLt " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
         std::to_string(v % 100) + " (" + library_.soname() + ")";
}

void CublasLtLibrary::check(cublasStatus_t status, const char* what) const {
  DPT_CHECK(status == CUBLAS_STATUS_SUCCESS)
      << "cuBLASLt: " << what
      << " failed: " << (status_string ? status_string(status) : "unknown status") << " ("
      << int(status) << ")";
}

}  // namespace dpt
