// A shared library loaded at run time (dlopen) and closed with its owner, so dpt starts on
// machines without it and says why when it is needed: the first of several candidate names that
// loads (a soname on the loader path, then a copy at a known directory), and its symbols looked
// up with errors that name the library. Used for cuBLASLt and NCCL.
#pragma once

#include <string>
#include <vector>

namespace dpt {

class DynamicLibrary {
 public:
  // Loads the first candidate that dlopen accepts (`flags`: RTLD_NOW | ...). None: throws
  // dpt::Error(kConfig) "`what`: cannot load (<each dlerror>); `hint`".
  DynamicLibrary(const std::vector<std::string>& candidates, int flags, const std::string& what,
                 const std::string& hint);
  ~DynamicLibrary();
  DynamicLibrary(const DynamicLibrary&) = delete;
  DynamicLibrary& operator=(const DynamicLibrary&) = delete;

  // The candidate that loaded.
  const std::string& soname() const { return soname_; }

  // Sets `fn` to the address of `symbol`; throws dpt::Error(kConfig) "`what`: <soname> has no
  // symbol <symbol> (<dlerror>)" when it is missing.
  template <typename Fn>
  void resolve(const char* symbol, Fn& fn) const {
    fn = reinterpret_cast<Fn>(address(symbol));
  }

 private:
  void* address(const char* symbol) const;

  void* handle_ = nullptr;
  std::string soname_;
  std::string what_;
};

}  // namespace dpt
