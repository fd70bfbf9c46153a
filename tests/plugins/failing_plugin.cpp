// A plug-in whose calls fail on purpose, to test how the "plugin" backend reports plug-in errors
// (tests/mpi/plugin_errors_test.cpp): init all-gathers every rank's number through dpt's bootstrap
// and fails when timeout_s is 13; all_reduce of bf16 is unsupported, barrier times out, broadcast
// reports a failed peer, everything else succeeds without moving data.
#include <string>
#include <vector>

#include "comm/plugin_abi.h"

struct dpt_coll_comm {
  std::string error;
  std::vector<int> ranks;  // what the bootstrap all-gather returned
};

namespace {

thread_local std::string init_error;

int init(const dpt_coll_init_args_t* args, dpt_coll_comm_t** out) {
  auto* comm = new dpt_coll_comm;
  comm->ranks.assign(static_cast<std::size_t>(args->size), -1);
  if (args->allgather(args->allgather_state, &args->rank, sizeof(int), comm->ranks.data()) != 0) {
    init_error = "the bootstrap failed";
    delete comm;
    return DPT_COLL_ERR_BOOTSTRAP;
  }
  for (int r = 0; r < args->size; ++r) {
    if (comm->ranks[static_cast<std::size_t>(r)] != r) {
      init_error = "bootstrap all-gather out of rank order";
      delete comm;
      return DPT_COLL_ERR_INTERNAL;
    }
  }
  if (args->timeout_s == 13) {
    init_error = "unlucky timeout";
    delete comm;
    return DPT_COLL_ERR_INVALID;
  }
  *out = comm;
  return DPT_COLL_OK;
}

int all_reduce(dpt_coll_comm_t* comm, const void*, void*, size_t, dpt_coll_dtype_t dtype,
               dpt_coll_op_t) {
  if (dtype != DPT_COLL_BF16) return DPT_COLL_OK;
  comm->error = "bf16 is not supported by this library";
  return DPT_COLL_ERR_UNSUPPORTED;
}
int broadcast(dpt_coll_comm_t* comm, void*, size_t, dpt_coll_dtype_t, int) {
  comm->error = "connection reset by rank 1";
  return DPT_COLL_ERR_REMOTE;
}
int all_gather(dpt_coll_comm_t*, const void*, void*, size_t, dpt_coll_dtype_t) {
  return DPT_COLL_OK;
}
int reduce_scatter(dpt_coll_comm_t*, const void*, void*, size_t, dpt_coll_dtype_t, dpt_coll_op_t) {
  return DPT_COLL_OK;
}
int barrier(dpt_coll_comm_t* comm) {
  comm->error = "waited 1000 ms";
  return DPT_COLL_ERR_TIMEOUT;
}
int abort_comm(dpt_coll_comm_t*) { return DPT_COLL_OK; }
void destroy(dpt_coll_comm_t* comm) { delete comm; }
const char* last_error(const dpt_coll_comm_t* comm) {
  return comm == nullptr ? init_error.c_str() : comm->error.c_str();
}

const dpt_coll_plugin_v1_t kTable = {DPT_COLL_ABI_VERSION_MAJOR,
                                     DPT_COLL_ABI_VERSION_MINOR,
                                     sizeof(dpt_coll_plugin_v1_t),
                                     "failing",
                                     "test",
                                     init,
                                     all_reduce,
                                     broadcast,
                                     all_gather,
                                     reduce_scatter,
                                     barrier,
                                     abort_comm,
                                     destroy,
                                     last_error};

}  // namespace

extern "C" __attribute__((visibility("default"))) const dpt_coll_plugin_v1_t* dpt_coll_plugin_v1(
    void) {
  return &kTable;
}
