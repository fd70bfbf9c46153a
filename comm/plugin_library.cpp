// PluginLibrary (comm/plugin_library.h). The object is opened with RTLD_NODELETE: a vendor
// library may keep threads or thread-local state alive past its last call, so it stays mapped.
#include "comm/plugin_library.h"

#include <dlfcn.h>

#include "devices/error.h"

namespace dpt {
namespace {

std::string dl_error() {
  const char* text = dlerror();
  return text != nullptr ? text : "no reason given";
}

}  // namespace

PluginLibrary::PluginLibrary(const std::string& path) : path_(path) {
  DPT_CHECK_AS(ErrorKind::kConfig, !path.empty())
      << "comm.plugin_path: required with comm.backend \"plugin\"";
  dlerror();
  handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  DPT_CHECK_AS(ErrorKind::kConfig, handle_ != nullptr)
      << "comm.plugin_path: cannot load \"" << path << "\": " << dl_error();
  dlerror();
  void* entry = dlsym(handle_, DPT_COLL_PLUGIN_SYMBOL);
  if (entry == nullptr) {
    const std::string reason = dl_error();
    dlclose(handle_);
    DPT_THROW(ErrorKind::kConfig) << "comm.plugin_path: \"" << path << "\" has no symbol "
                                  << DPT_COLL_PLUGIN_SYMBOL
                                  << " (not a dpt collectives plug-in, or one for another ABI "
                                     "major version than "
                                  << DPT_COLL_ABI_VERSION_MAJOR << "): " << reason;
  }
  table_ = reinterpret_cast<dpt_coll_plugin_v1_fn>(entry)();
  std::string problem;
  if (table_ == nullptr) {
    problem = std::string(DPT_COLL_PLUGIN_SYMBOL) + "() returned no table";
  } else if (table_->abi_major != DPT_COLL_ABI_VERSION_MAJOR) {
    problem = "plug-in ABI version mismatch: the plug-in was built for " +
              std::to_string(table_->abi_major) + "." + std::to_string(table_->abi_minor) +
              ", this dpt speaks " + std::to_string(DPT_COLL_ABI_VERSION_MAJOR) + "." +
              std::to_string(DPT_COLL_ABI_VERSION_MINOR) + " (major versions must match)";
  } else if (table_->struct_size < sizeof(dpt_coll_plugin_v1_t)) {
    problem = "its function table has " + std::to_string(table_->struct_size) + " bytes, ABI " +
              std::to_string(DPT_COLL_ABI_VERSION_MAJOR) + "." +
              std::to_string(DPT_COLL_ABI_VERSION_MINOR) + " needs " +
              std::to_string(sizeof(dpt_coll_plugin_v1_t));
  } else {
    const std::pair<const char*, bool> required[] = {
        {"name", table_->name != nullptr},
        {"version", table_->version != nullptr},
        {"init", table_->init != nullptr},
        {"all_reduce", table_->all_reduce != nullptr},
        {"broadcast", table_->broadcast != nullptr},
        {"all_gather", table_->all_gather != nullptr},
        {"reduce_scatter", table_->reduce_scatter != nullptr},
        {"barrier", table_->barrier != nullptr},
        {"abort", table_->abort != nullptr},
        {"destroy", table_->destroy != nullptr},
        {"last_error", table_->last_error != nullptr}};
    for (const auto& [field, present] : required) {
      if (!present) {
        problem = std::string("its function table has no ") + field;
        break;
      }
    }
  }
  if (!problem.empty()) {
    dlclose(handle_);
    DPT_THROW(ErrorKind::kConfig) << "comm.plugin_path: \"" << path << "\": " << problem;
  }
}

PluginLibrary::~PluginLibrary() { dlclose(handle_); }

std::string PluginLibrary::description() const {
  return std::string(table_->name) + " (" + table_->version + ")";
}

std::string plugin_status_name(int status) {
  switch (status) {
    case DPT_COLL_OK:
      return "ok";
    case DPT_COLL_ERR_INVALID:
      return "invalid argument";
    case DPT_COLL_ERR_UNSUPPORTED:
      return "unsupported";
    case DPT_COLL_ERR_TIMEOUT:
      return "timed out";
    case DPT_COLL_ERR_REMOTE:
      return "peer failed";
    case DPT_COLL_ERR_ABORTED:
      return "aborted";
    case DPT_COLL_ERR_BOOTSTRAP:
      return "bootstrap failed";
    case DPT_COLL_ERR_INTERNAL:
      return "internal error";
    default:
      return "status " + std::to_string(status);
  }
}

}  // namespace dpt
