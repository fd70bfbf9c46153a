// A plug-in of the right major version whose table is shorter than ABI 1.0's (an older or broken
// build): the loader must refuse it, naming both sizes (tests/unit/comm/plugin_library_test.cpp).
#include "comm/plugin_abi.h"

namespace {
const dpt_coll_plugin_v1_t kTable = {DPT_COLL_ABI_VERSION_MAJOR,
                                     0,
                                     24,
                                     "short",
                                     "0",
                                     nullptr,
                                     nullptr,
                                     nullptr,
                                     nullptr,
                                     nullptr,
                                     nullptr,
                                     nullptr,
                                     nullptr,
                                     nullptr};
}  // namespace

extern "C" __attribute__((visibility("default"))) const dpt_coll_plugin_v1_t* dpt_coll_plugin_v1(
    void) {
  return &kTable;
}
