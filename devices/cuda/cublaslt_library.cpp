// CublasLtLibrary: dlopen and dlsym of each entry point.
#include "devices/cuda/cublaslt_library.h"

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
      << soname << ": no symbol " << symbol << " (" << (error ? error : "null") << ")";
  fn = reinterpret_cast<Fn>(address);
}

}  // namespace

CublasLtLibrary::CublasLtLibrary() {
  std::string errors;
  const std::string toolkit_copy = std::string(DPT_CUDA_LIBRARY_DIR) + "/libcublasLt.so.13";
  for (const std::string& soname : {std::string("libcublasLt.so.13"), toolkit_copy}) {
    library_ = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library_ != nullptr) {
      soname_ = soname;
      break;
    }
    const char* error = dlerror();
    errors += (errors.empty() ? "" : "; ") + (error ? std::string(error) : soname);
  }
  DPT_CHECK_AS(ErrorKind::kConfig, library_ != nullptr)
      << "cuBLASLt: cannot load the library (" << errors
      << "); install the CUDA toolkit's cuBLAS or add its lib64 to the loader path";
  try {
    resolve(library_, soname_, "cublasLtCreate", create);
    resolve(library_, soname_, "cublasLtDestroy", destroy);
    resolve(library_, soname_, "cublasLtGetVersion", get_version);
    resolve(library_, soname_, "cublasLtGetStatusString", status_string);
    resolve(library_, soname_, "cublasLtMatmulDescCreate", desc_create);
    resolve(library_, soname_, "cublasLtMatmulDescDestroy", desc_destroy);
    resolve(library_, soname_, "cublasLtMatmulDescSetAttribute", desc_set);
    resolve(library_, soname_, "cublasLtMatrixLayoutCreate", layout_create);
    resolve(library_, soname_, "cublasLtMatrixLayoutDestroy", layout_destroy);
    resolve(library_, soname_, "cublasLtMatmulPreferenceCreate", preference_create);
    resolve(library_, soname_, "cublasLtMatmulPreferenceDestroy", preference_destroy);
    resolve(library_, soname_, "cublasLtMatmulPreferenceSetAttribute", preference_set);
    resolve(library_, soname_, "cublasLtMatmulAlgoGetHeuristic", heuristic);
    resolve(library_, soname_, "cublasLtMatmul", matmul);
  } catch (...) {
    dlclose(library_);
    throw;
  }
}

CublasLtLibrary::~CublasLtLibrary() {
  if (library_ != nullptr) dlclose(library_);
}

std::string CublasLtLibrary::version() const {
  const std::size_t v = get_version();
  return "cuBLASLt " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
         std::to_string(v % 100) + " (" + soname_ + ")";
}

void CublasLtLibrary::check(cublasStatus_t status, const char* what) const {
  DPT_CHECK(status == CUBLAS_STATUS_SUCCESS)
      << "cuBLASLt: " << what
      << " failed: " << (status_string ? status_string(status) : "unknown status") << " ("
      << int(status) << ")";
}

}  // namespace dpt
