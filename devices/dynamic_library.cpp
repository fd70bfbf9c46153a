// DynamicLibrary (devices/dynamic_library.h): dlopen of each candidate, dlsym with dlerror.
#include "devices/dynamic_library.h"

#include <dlfcn.h>

#include "devices/error.h"

namespace dpt {

DynamicLibrary::DynamicLibrary(const std::vector<std::string>& candidates, int flags,
                               const std::string& what, const std::string& hint)
    : what_(what) {
  std::string errors;
  for (const std::string& candidate : candidates) {
    handle_ = dlopen(candidate.c_str(), flags);
    if (handle_ != nullptr) {
      soname_ = candidate;
      return;
    }
    const char* error = dlerror();
    errors += (errors.empty() ? "" : "; ") + (error ? std::string(error) : candidate);
  }
  DPT_THROW(ErrorKind::kConfig) << what << ": cannot load (" << errors << "); " << hint;
}

DynamicLibrary::~DynamicLibrary() {
  if (handle_ != nullptr) dlclose(handle_);
}

void* DynamicLibrary::address(const char* symbol) const {
  dlerror();
  void* address = dlsym(handle_, symbol);
  const char* error = dlerror();
  DPT_CHECK_AS(ErrorKind::kConfig, address != nullptr && error == nullptr)
      << what_ << ": " << soname_ << " has no symbol " << symbol << " (" << (error ? error : "null")
      << ")";
  return address;
}

}  // namespace dpt
