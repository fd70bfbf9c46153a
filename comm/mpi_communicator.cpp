// MpiCommunicator: a duplicated MPI_COMM_WORLD, one mutex for every MPI call, MPI_Iallreduce as
// the native all-reduce.
#include "comm/mpi_communicator.h"

#include <dlfcn.h>
#include <mpi.h>

#include <climits>
#include <mutex>
#include <string>
#include <vector>

#include "comm/mpi_check.h"
#include "comm/mpi_shared_memory.h"
#include "comm/mpi_transport.h"
#include "comm/reduce.h"
#include "comm/transport_communicator.h"
#include "devices/error.h"

namespace dpt {
namespace {

// MPI's type for a dtype, or MPI_DATATYPE_NULL where MPI has none (bf16, f16).
MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return MPI_FLOAT;
    case DType::kF64:
      return MPI_DOUBLE;
    case DType::kI32:
      return MPI_INT32_T;
    case DType::kI64:
      return MPI_INT64_T;
    default:
      return MPI_DATATYPE_NULL;
  }
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kMin:
      return MPI_MIN;
    default:
      return MPI_SUM;  // kAvg sums, then divides
  }
}

MPI_Comm duplicate_world() {
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm)) << "creating the mpi communicator";
  MPI_CHECK(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN)) << "creating the mpi communicator";
  return comm;
}

class MpiCommunicator : public TransportCommunicator {
 public:
  MpiCommunicator(const CommOptions& options, Device* device)
      : TransportCommunicator(transport_, options),
        comm_(duplicate_world()),
        transport_(comm_, mutex_) {
    share_device_memory(options, device);
    if (size() == 1) return;
    std::lock_guard<std::mutex> lock(mutex_);
    set_one_node(all_on_one_node(comm_));
    if (options.all_reduce != AllReduceAlgorithm::kAuto || options.shm_threshold_bytes == 0 ||
        !one_node()) {
      return;
    }
    const std::size_t chunk = ShmAllReduce::chunk_for(options.chunk_bytes);
    const std::size_t region = ShmAllReduce::region_bytes(chunk);
    segment_ = map_node_segment(comm_, region, shared_memory_note_);
    if (segment_ == nullptr) return;
    std::vector<char*> regions;
    for (int r = 0; r < size(); ++r) regions.push_back(segment_->data() + r * region);
    use_shared_memory(std::make_unique<ShmAllReduce>(regions, rank(), chunk));
  }
  ~MpiCommunicator() override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (mpi_active()) MPI_Comm_free(&comm_);
  }
  std::string backend() const override { return "mpi"; }
  std::string shared_memory_problem() const override {
    return shared_memory_note_.empty() ? TransportCommunicator::shared_memory_problem()
                                       : "no shared-memory all-reduce: " + shared_memory_note_;
  }
  void abort(int exit_code) noexcept override {
    if (mpi_active()) MPI_Abort(MPI_COMM_WORLD, exit_code);
  }

 protected:
  std::shared_ptr<void> map_shared(std::size_t bytes, std::vector<char*>& bases,
                                   std::string& why) override {
    const std::size_t stride = (bytes + 63) / 64 * 64;
    std::shared_ptr<SharedSegment> segment;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      segment = map_node_segment(comm_, stride, why);
    }
    if (segment == nullptr) return nullptr;
    bases.clear();
    for (int r = 0; r < size(); ++r) bases.push_back(segment->data() + r * stride);
    // Shares ownership of the whole segment: it stays mapped while this rank's buffer is in use.
    return std::shared_ptr<void>(segment, bases[static_cast<std::size_t>(rank())]);
  }

  bool native_handles(DType dtype, ReduceOp op, std::size_t count) const override {
    // Open MPI's MPI_MAX / MPI_MIN drop a NaN operand ((a > b) ? a : b); reduce.h promises NaN
    // propagates, so float max and min take the ring.
    const bool float_extremum = (dtype == DType::kF32 || dtype == DType::kF64) &&
                                (op == ReduceOp::kMax || op == ReduceOp::kMin);
    return mpi_type(dtype) != MPI_DATATYPE_NULL && !float_extremum &&
           count <= static_cast<std::size_t>(INT_MAX);
  }

  bool native_all_reduce(void* data, std::size_t count, DType dtype, ReduceOp op,
                         Clock::time_point deadline) override {
    if (!native_handles(dtype, op, count)) return false;
    const MPI_Datatype type = mpi_type(dtype);
    MPI_Request request = MPI_REQUEST_NULL;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(count), type, mpi_op(op), comm_,
                               &request))
          << "all_reduce";
    }
    if (!transport_.wait_native(request, deadline, "MPI_Iallreduce")) {
      throw CommTimeout(-1, "MPI_Iallreduce timed out");
    }
    if (op == ReduceOp::kAvg) finish_average(data, count, dtype, size());
    return true;
  }

 private:
  // Device buffers go to MPI itself when every rank's worker owns a CUDA device and its MPI
  // moves device memory (the ranks agree, so a collective never runs MPI's algorithm on some
  // ranks and dpt's on others); otherwise the communicator takes host memory only and callers
  // stage (comm/grad_sync.h).
  void share_device_memory(const CommOptions& options, Device* device) {
    const bool on_cuda = device != nullptr && device->kind() == DeviceKind::kCuda;
    int mine = 0;
    if (on_cuda && options.mpi_device_buffers == MpiDeviceBuffers::kAlwaysMpi) mine = 1;
    if (on_cuda && options.mpi_device_buffers == MpiDeviceBuffers::kCudaAwareMpi) {
      mine = mpi_reduces_device_memory() ? 1 : 0;
    }
    int all = mine;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      MPI_CHECK(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, comm_))
          << "agreeing on device buffers";
    }
    if (all == 1) take_device_memory(*device, true);
  }

  std::mutex mutex_;
  MPI_Comm comm_;
  MpiTransport transport_;
  std::unique_ptr<SharedSegment> segment_;  // the shared-memory all-reduce's regions, or null
  std::string shared_memory_note_;          // why there is none
};

}  // namespace

bool mpi_active() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized != 0 && finalized == 0;
}

bool mpi_cuda_aware() {
  using Query = int (*)();
  const auto query = reinterpret_cast<Query>(dlsym(RTLD_DEFAULT, "MPIX_Query_cuda_support"));
  return query != nullptr && query() == 1;
}

bool nonblocking_reductions_take_device_memory(const std::string& library_version) {
  for (const char* name : {"MVAPICH", "CRAY MPICH"}) {
    if (library_version.find(name) != std::string::npos) return true;
  }
  return false;
}

bool mpi_reduces_device_memory() {
  if (!mpi_cuda_aware()) return false;
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(version, &length);  // allowed before MPI_Init
  return nonblocking_reductions_take_device_memory(std::string(version, length));
}

std::unique_ptr<Communicator> make_mpi_communicator(const CommOptions& options, Device* device) {
  DPT_CHECK_AS(ErrorKind::kConfig, mpi_active())
      << "comm.backend: \"mpi\" needs a process started by mpirun";
  return std::make_unique<MpiCommunicator>(options, device);
}

}  // namespace dpt
