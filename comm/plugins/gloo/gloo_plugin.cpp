// libdpt_gloo.so: the reference implementation of dpt's collectives plug-in ABI
// (comm/plugin_abi.h) on Gloo (Debian's libgloo-dev) over its TCP transport. dpt loads it with
// comm { backend: "plugin" plugin_path: ".../libdpt_gloo.so" }. Rendezvous: every rank creates
// one TCP pair per peer and the pairs' addresses are exchanged with the one all-gather dpt's
// bootstrap callback provides (gloo_mesh.h), so no store or extra port is needed.
// Collectives are Gloo's allreduce (ring), broadcast, allgather and barrier; Gloo has no
// reduce-scatter for unbound buffers, so it is an all-reduce of the whole buffer and a copy.
// Gloo signals failures with exceptions; each entry point turns them into a status code and keeps
// the message for last_error(). Only dpt_coll_plugin_v1 is exported (-fvisibility=hidden).
#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/config.h>
#include <gloo/transport/tcp/device.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "comm/plugin_abi.h"
#include "comm/plugins/gloo/gloo_mesh.h"
#include "comm/plugins/gloo/gloo_reduce.h"

struct dpt_coll_comm {
  int rank = 0;
  int size = 1;
  std::chrono::milliseconds timeout{0};
  std::shared_ptr<dpt_gloo::MeshContext> context;  // null for a world of one
  std::atomic<bool> aborted{false};
  uint32_t tag = 0;  // one per collective, so no message can match another collective's
  std::string error;
};

namespace {

#define DPT_GLOO_STR2(x) #x
#define DPT_GLOO_STR(x) DPT_GLOO_STR2(x)

thread_local std::string init_error;

int fail(dpt_coll_comm* comm, int status, const std::string& message) {
  comm->error = message;
  return status;
}

// Runs `body` (which talks to Gloo) and maps what it throws to a status.
template <typename Body>
int guarded(dpt_coll_comm* comm, const char* what, Body body) {
  if (comm == nullptr) return DPT_COLL_ERR_INVALID;
  if (comm->aborted.load())
    return fail(comm, DPT_COLL_ERR_ABORTED, std::string(what) + ": aborted");
  try {
    body();
    return DPT_COLL_OK;
  } catch (const gloo::IoException& error) {
    const std::string text = error.what();
    const int status = comm->aborted.load()                          ? DPT_COLL_ERR_ABORTED
                       : text.find("Timed out") != std::string::npos ? DPT_COLL_ERR_TIMEOUT
                                                                     : DPT_COLL_ERR_REMOTE;
    return fail(comm, status, std::string(what) + ": gloo: " + text);
  } catch (const std::exception& error) {
    return fail(comm, comm->aborted.load() ? DPT_COLL_ERR_ABORTED : DPT_COLL_ERR_INTERNAL,
                std::string(what) + ": gloo: " + error.what());
  }
}

// Gloo's typed options want an element type only for its size; the reduction does the typing.
template <typename T>
void run_all_reduce(dpt_coll_comm* comm, const void* send, void* recv, std::size_t count,
                    const dpt_gloo::ReduceFn& reduce) {
  gloo::AllreduceOptions options(comm->context);
  if (send != recv) options.setInput(static_cast<T*>(const_cast<void*>(send)), count);
  options.setOutput(static_cast<T*>(recv), count);
  options.setReduceFunction(reduce);
  options.setTag(comm->tag++);
  options.setTimeout(comm->timeout);
  gloo::allreduce(options);
}

int all_reduce(dpt_coll_comm* comm, const void* send, void* recv, size_t count,
               dpt_coll_dtype_t dtype, dpt_coll_op_t op) {
  const std::size_t bytes = dpt_gloo::dtype_bytes(dtype);
  const dpt_gloo::ReduceFn reduce = dpt_gloo::reduce_function(dtype, op);
  if (comm == nullptr || bytes == 0 || !reduce || (count > 0 && (!send || !recv))) {
    return comm ? fail(comm, DPT_COLL_ERR_INVALID, "all_reduce: bad dtype, op or buffer")
                : DPT_COLL_ERR_INVALID;
  }
  return guarded(comm, "all_reduce", [&] {
    if (count == 0) return;
    if (comm->size == 1) {
      if (send != recv) std::memmove(recv, send, count * bytes);
      return;
    }
    if (bytes == 2) run_all_reduce<uint16_t>(comm, send, recv, count, reduce);
    if (bytes == 4) run_all_reduce<uint32_t>(comm, send, recv, count, reduce);
    if (bytes == 8) run_all_reduce<uint64_t>(comm, send, recv, count, reduce);
  });
}

int broadcast(dpt_coll_comm* comm, void* buffer, size_t count, dpt_coll_dtype_t dtype, int root) {
  const std::size_t bytes = dpt_gloo::dtype_bytes(dtype);
  if (comm == nullptr || bytes == 0 || root < 0 || root >= comm->size || (count > 0 && !buffer)) {
    return comm ? fail(comm, DPT_COLL_ERR_INVALID, "broadcast: bad dtype, root or buffer")
                : DPT_COLL_ERR_INVALID;
  }
  return guarded(comm, "broadcast", [&] {
    if (count == 0 || comm->size == 1) return;
    gloo::BroadcastOptions options(comm->context);
    options.setOutput(static_cast<char*>(buffer), count * bytes);
    options.setRoot(root);
    options.setTag(comm->tag++);
    options.setTimeout(comm->timeout);
    gloo::broadcast(options);
  });
}

int all_gather(dpt_coll_comm* comm, const void* send, void* recv, size_t count,
               dpt_coll_dtype_t dtype) {
  const std::size_t bytes = dpt_gloo::dtype_bytes(dtype);
  if (comm == nullptr || bytes == 0 || (count > 0 && (!send || !recv))) {
    return comm ? fail(comm, DPT_COLL_ERR_INVALID, "all_gather: bad dtype or buffer")
                : DPT_COLL_ERR_INVALID;
  }
  return guarded(comm, "all_gather", [&] {
    if (count == 0) return;
    const std::size_t block = count * bytes;
    char* out = static_cast<char*>(recv);
    char* mine = out + static_cast<std::size_t>(comm->rank) * block;
    if (send != mine) std::memmove(mine, send, block);
    if (comm->size == 1) return;
    gloo::AllgatherOptions options(comm->context);
    options.setOutput(out, block * static_cast<std::size_t>(comm->size));  // in place: own block
    options.setTag(comm->tag++);
    options.setTimeout(comm->timeout);
    gloo::allgather(options);
  });
}

int reduce_scatter(dpt_coll_comm* comm, const void* send, void* recv, size_t count,
                   dpt_coll_dtype_t dtype, dpt_coll_op_t op) {
  const std::size_t bytes = dpt_gloo::dtype_bytes(dtype);
  const dpt_gloo::ReduceFn reduce = dpt_gloo::reduce_function(dtype, op);
  if (comm == nullptr || bytes == 0 || !reduce || (count > 0 && (!send || !recv))) {
    return comm ? fail(comm, DPT_COLL_ERR_INVALID, "reduce_scatter: bad dtype, op or buffer")
                : DPT_COLL_ERR_INVALID;
  }
  if (count == 0) return guarded(comm, "reduce_scatter", [] {});
  const std::size_t total = count * static_cast<std::size_t>(comm->size);
  std::vector<char> whole(total * bytes);
  const int status = all_reduce(comm, send, whole.data(), total, dtype, op);
  if (status != DPT_COLL_OK) return status;
  std::memcpy(recv, whole.data() + static_cast<std::size_t>(comm->rank) * count * bytes,
              count * bytes);
  return DPT_COLL_OK;
}

int barrier(dpt_coll_comm* comm) {
  return guarded(comm, "barrier", [&] {
    if (comm->size == 1) return;
    gloo::BarrierOptions options(comm->context);
    options.setTag(comm->tag++);
    options.setTimeout(comm->timeout);
    gloo::barrier(options);
  });
}

int abort_comm(dpt_coll_comm* comm) {
  if (comm == nullptr) return DPT_COLL_ERR_INVALID;
  if (comm->aborted.exchange(true)) return DPT_COLL_OK;
  try {
    if (comm->context) comm->context->closeConnections();
  } catch (const std::exception&) {  // best effort: the process is about to exit
  }
  return DPT_COLL_OK;
}

void destroy(dpt_coll_comm* comm) { delete comm; }

const char* last_error(const dpt_coll_comm* comm) {
  return comm == nullptr ? init_error.c_str() : comm->error.c_str();
}

int init(const dpt_coll_init_args_t* args, dpt_coll_comm** out) {
  init_error.clear();
  if (out == nullptr || args == nullptr || args->size < 1 || args->rank < 0 ||
      args->rank >= args->size || !(args->timeout_s > 0) || args->allgather == nullptr) {
    init_error = "init: bad arguments (rank, size, timeout_s or allgather)";
    return DPT_COLL_ERR_INVALID;
  }
  *out = nullptr;
  auto comm = std::make_unique<dpt_coll_comm>();
  comm->rank = args->rank;
  comm->size = args->size;
  comm->timeout = std::chrono::milliseconds(static_cast<int64_t>(args->timeout_s * 1000.0));
  try {
    if (comm->size > 1) {
      // Gloo binds to the address this host's name resolves to.
      std::shared_ptr<gloo::transport::Device> device =
          gloo::transport::tcp::CreateDevice(gloo::transport::tcp::attr());
      comm->context = std::make_shared<dpt_gloo::MeshContext>(comm->rank, comm->size);
      comm->context->setTimeout(comm->timeout);
      comm->context->connect(device, args->allgather, args->allgather_state);
    }
  } catch (const dpt_gloo::BootstrapError& error) {
    init_error = std::string("init: ") + error.what();
    return DPT_COLL_ERR_BOOTSTRAP;
  } catch (const gloo::IoException& error) {
    init_error = std::string("init: connecting to the peers: gloo: ") + error.what();
    return std::strstr(error.what(), "Timed out") ? DPT_COLL_ERR_TIMEOUT : DPT_COLL_ERR_REMOTE;
  } catch (const std::exception& error) {
    init_error = std::string("init: gloo: ") + error.what();
    return DPT_COLL_ERR_INTERNAL;
  }
  *out = comm.release();
  return DPT_COLL_OK;
}

const dpt_coll_plugin_v1_t kPlugin = {
    DPT_COLL_ABI_VERSION_MAJOR,
    DPT_COLL_ABI_VERSION_MINOR,
    sizeof(dpt_coll_plugin_v1_t),
    "gloo",
    "dpt gloo plug-in 1.0 on Gloo " DPT_GLOO_STR(GLOO_VERSION_MAJOR) "." DPT_GLOO_STR(
        GLOO_VERSION_MINOR) "." DPT_GLOO_STR(GLOO_VERSION_PATCH) " (TCP)",
    init,
    all_reduce,
    broadcast,
    all_gather,
    reduce_scatter,
    barrier,
    abort_comm,
    destroy,
    last_error,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const dpt_coll_plugin_v1_t* dpt_coll_plugin_v1(
    void) {
  return &kPlugin;
}
