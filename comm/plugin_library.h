// PluginLibrary: one loaded collectives plug-in (comm/plugin_abi.h): dlopen of comm.plugin_path,
// lookup of the entry point, and the ABI checks (major version, table size, every function
// present). Kept apart from the communicator so the checks are testable without MPI
// (tests/unit/comm/plugin_library_test.cpp). Used by comm/plugin_communicator.cpp.
#pragma once

#include <string>

#include "comm/plugin_abi.h"

namespace dpt {

class PluginLibrary {
 public:
  // Loads `path` (as dlopen finds it: a name without '/' is searched on the library path).
  // Throws kConfig naming comm.plugin_path for a file that cannot be loaded (with dlerror's
  // text), a missing entry point, another ABI major version (both versions named), a table
  // smaller than this ABI's or a missing function.
  explicit PluginLibrary(const std::string& path);
  ~PluginLibrary();
  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;

  // The plug-in's function table (valid while this object lives).
  const dpt_coll_plugin_v1_t& table() const { return *table_; }
  const std::string& path() const { return path_; }
  // "gloo 1.0 (...)": the table's name and version.
  std::string description() const;

 private:
  std::string path_;
  void* handle_ = nullptr;
  const dpt_coll_plugin_v1_t* table_ = nullptr;
};

// The text of a dpt_coll_status_t ("timeout", ...), or "status <code>" for an unknown code.
std::string plugin_status_name(int status);

}  // namespace dpt
