// A shared object without dpt_coll_plugin_v1: the loader must refuse it, naming the symbol
// (tests/unit/comm/plugin_library_test.cpp).
extern "C" __attribute__((visibility("default"))) int not_a_dpt_plugin(void) { return 0; }
