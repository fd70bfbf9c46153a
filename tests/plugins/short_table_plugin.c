/* A plug-in of the right major version whose table is shorter than ABI 1.0's (an older or broken
 * build): the loader must refuse it, naming both sizes (tests/unit/comm/plugin_library_test.cpp).
 * Written in C, which also proves comm/plugin_abi.h is a plain C header. */
#include "comm/plugin_abi.h"

static const dpt_coll_plugin_v1_t kTable = {DPT_COLL_ABI_VERSION_MAJOR,
                                            0,
                                            24,
                                            "short",
                                            "0",
                                            NULL,
                                            NULL,
                                            NULL,
                                            NULL,
                                            NULL,
                                            NULL,
                                            NULL,
                                            NULL,
                                            NULL};

__attribute__((visibility("default"))) const dpt_coll_plugin_v1_t* dpt_coll_plugin_v1(void) {
  return &kTable;
}
