// The Communicator interface: the one collective layer through which workers average gradients.
// Call shape follows NCCL: (send, recv, count, dtype, op); in place when send == recv. Every rank
// must make the same calls in the same order with the same counts and dtypes.
// Every collective is bounded in time: when it does not complete within the timeout, it throws
// dpt::Error(kComm) naming the collective, its sequence number and the ranks that did not arrive;
// the caller (launch/) then calls abort() so every peer fails fast. Backends are whole files
// (local, thread world for tests, mpi, plugin, nccl), chosen by make_communicator() from the
// config. Buffers are host memory on every backend; those whose device_memory() is true (nccl;
// mpi when the MPI is CUDA-aware and reduces device memory, mpi_reduces_device_memory()) take
// memory of the worker's CUDA device too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/config.pb.h"
#include "core/tensor.h"
#include "devices/device.h"

namespace dpt {

enum class ReduceOp { kSum, kAvg, kMax, kMin };

const char* reduce_op_name(ReduceOp op);

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Backend name, e.g. "local", "threads", "mpi".
  virtual std::string backend() const = 0;
  // Whether buffers may be memory of the worker's CUDA device (NCCL). false: host memory only;
  // callers stage device buffers through host memory.
  virtual bool device_memory() const { return false; }
  // Device-memory backends: the next collective given device buffers reads them once `ready` (an
  // event of the worker's device, recorded on its compute queue) has completed, instead of once
  // all the work queued on the device so far has. The gradient sync records one when backward has
  // produced a bucket, so the bucket's all-reduce does not also wait for the rest of backward.
  // Applies to the next collective only; `ready` must stay alive until that returns. Others: no-op.
  virtual void order_next_after(DeviceEvent& ready) {}
  // Host memory for a buffer that all_reduce then reduces in place without copies, because every
  // rank of the node maps every rank's buffer (the gradient buffer; NCCL's ncclMemAlloc plays the
  // same part). Collective: every rank calls it. Returns null on every rank where the backend has
  // no such memory (several nodes, shared memory off, other backends) or the ranks asked for
  // different sizes; callers then use their own. Zero-filled, 64-byte aligned; released when the
  // last copy of the pointer goes.
  virtual std::shared_ptr<void> allocate_shared(std::size_t bytes) { return nullptr; }
  // Why the last allocate_shared gave null although this backend shares memory between the ranks
  // (e.g. "reserving 15 MB in /dev/shm: No space left on device"); empty when it gave memory or
  // was not expected to (several nodes, shared memory off, other backends).
  virtual std::string shared_memory_problem() const { return ""; }

  // recv[i] = op over ranks of send[i], for i < count; identical bits on every rank.
  virtual void all_reduce(const void* send, void* recv, std::size_t count, DType dtype,
                          ReduceOp op) = 0;
  // buffer (count elements) on every rank = buffer on `root`.
  virtual void broadcast(void* buffer, std::size_t count, DType dtype, int root) = 0;
  // recv (size() * count elements) = each rank's `count` elements of send, in rank order.
  // In place when send == recv + rank() * count; no other overlap (NCCL's rule).
  virtual void all_gather(const void* send, void* recv, std::size_t count, DType dtype) = 0;
  // recv (count elements) = op over ranks of send[rank() * count, (rank() + 1) * count);
  // send holds size() * count elements. In place when recv == send + rank() * count; no other
  // overlap (NCCL's rule).
  virtual void reduce_scatter(const void* send, void* recv, std::size_t count, DType dtype,
                              ReduceOp op) = 0;
  // Returns when every rank has called barrier().
  virtual void barrier() = 0;
  // Tears the world down so peers blocked in collectives fail fast; the process should exit
  // after it. Safe to call at any time, from any thread, more than once. `exit_code` is the code
  // the job should end with where the backend can pass one on (MPI_Abort).
  virtual void abort(int exit_code) noexcept = 0;
};

enum class AllReduceAlgorithm {
  kAuto,    // one node: shared memory below shm_threshold_bytes; across nodes recursive doubling
            // below ring_threshold_bytes; the ring above
  kRing,    // dpt's pipelined ring (comm/ring.h) at every size
  kNative,  // the library's own (MPI_Iallreduce) at every size; the ring where it has none
};

// Device buffers on the "mpi" backend (workers on CUDA devices, comm/mpi_communicator.h).
enum class MpiDeviceBuffers {
  kStage,         // never: the communicator takes host memory; callers stage device buffers
  kCudaAwareMpi,  // when MPI reduces device memory (mpi_reduces_device_memory()) on every rank
  kAlwaysMpi,     // without asking MPI (tests: a fake GPU's "device memory" is host memory)
};

// Options every backend honours (from the config's comm { ... }, see comm_options()).
struct CommOptions {
  double timeout_s = 300.0;  // per collective
  AllReduceAlgorithm all_reduce = AllReduceAlgorithm::kAuto;
  std::size_t ring_threshold_bytes = 32 << 10;  // across nodes: recursive doubling below it
  std::size_t shm_threshold_bytes = 128 << 10;  // on one node: shared memory below it (0: off)
  // Pipelining granularity of the ring algorithms; 0: automatic (whole blocks on one node, 1 MiB
  // across nodes).
  std::size_t chunk_bytes = 0;
  std::string plugin_path = "";  // the "plugin" backend's shared object (comm/plugin_abi.h)
  MpiDeviceBuffers mpi_device_buffers = MpiDeviceBuffers::kCudaAwareMpi;  // comm.cuda_aware_mpi
};

// The options comm { ... } sets.
CommOptions comm_options(const proto::CommConfig& config);

// Builds the backend named by config.backend: "local" (a world of one), "mpi", "plugin" (the
// shared object at config.plugin_path, comm/plugin_communicator.h), "nccl" (on the worker's
// CUDA `device`, comm/nccl_communicator.h) or "auto" (with MPI initialised and more than one
// process: nccl when every rank's `device` is a CUDA device and NCCL loads on every rank, else
// mpi; otherwise local).
// "mpi", "plugin" and nccl with more than one process need MPI initialised by the caller
// (launch/world.h's MpiSession); nccl needs the worker's device set first. Throws kConfig for an
// unknown or unavailable backend, naming the field and the backends built in.
std::unique_ptr<Communicator> make_communicator(const proto::CommConfig& config,
                                                Device* device = nullptr);

// The comm.backend names make_communicator() accepts in this build, in registry order.
std::vector<std::string> communicator_backends();

}  // namespace dpt
