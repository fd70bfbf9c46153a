// A plug-in whose table claims ABI 2.3: the loader must refuse it, naming both versions
// (tests/unit/comm/plugin_library_test.cpp). Its functions are never called.
#include "comm/plugin_abi.h"

namespace {
const dpt_coll_plugin_v1_t kTable = {2,        3,       sizeof(dpt_coll_plugin_v1_t),
                                     "future", "2.3",   nullptr,
                                     nullptr,  nullptr, nullptr,
                                     nullptr,  nullptr, nullptr,
                                     nullptr,  nullptr};
}  // namespace

extern "C" __attribute__((visibility("default"))) const dpt_coll_plugin_v1_t* dpt_coll_plugin_v1(
    void) {
  return &kTable;
}
