// Device buffers on the "mpi" backend (make_mpi_communicator with a device), run under
// `mpirun -np N`. A fake GPU stands for the CUDA device: its "device memory" is host memory, so
// MPI can read it as a CUDA-aware MPI reads a GPU's. With MpiDeviceBuffers::kAlwaysMpi:
// all-reduces MPI does exactly (float32/64 and integer sums, integer max/min) go to MPI on the
// device pointers with no staging copy and give the bits MPI_Iallreduce gives on host buffers
// (the ALL_REDUCE_NATIVE host path); avg, bf16/fp16 and float max are staged and give the bits
// of the host path. With kCudaAwareMpi on an MPI without CUDA support or on Open MPI (whose
// MPI_Iallreduce does not take device memory), and when ranks disagree, every rank takes host
// memory only. Prints each failure; exits 1 when any rank failed.
#include <mpi.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "comm/mpi_communicator.h"
#include "comm_conformance_values.h"
#include "fake_gpu.h"
#include "mpi/mpi_expect.h"

namespace {

using dpt::CommOptions;
using dpt::Communicator;
using dpt::DType;
using dpt::MpiDeviceBuffers;
using dpt::ReduceOp;

dpt::testing::MpiExpect expect;  // rank set in main()

CommOptions options_with(MpiDeviceBuffers buffers, dpt::AllReduceAlgorithm algorithm) {
  CommOptions options;
  options.timeout_s = 60;
  options.mpi_device_buffers = buffers;
  options.all_reduce = algorithm;
  return options;
}

// Whether this all-reduce goes to MPI on the device pointers (mpi_communicator.h).
bool native(DType dtype, ReduceOp op) {
  const bool float_type = dtype == DType::kF32 || dtype == DType::kF64;
  if (dtype == DType::kBF16 || dtype == DType::kF16 || op == ReduceOp::kAvg) return false;
  return !(float_type && (op == ReduceOp::kMax || op == ReduceOp::kMin));
}

void check_all_reduce(Communicator& device_comm, Communicator& native_host, dpt::FakeGpu& gpu) {
  const DType dtypes[] = {DType::kF32, DType::kF64, DType::kI32, DType::kI64, DType::kBF16};
  const ReduceOp ops[] = {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax};
  uint64_t seed = 100;
  for (DType dtype : dtypes) {
    for (ReduceOp op : ops) {
      for (std::size_t count : {std::size_t{0}, std::size_t{7}, std::size_t{1} << 18}) {
        const std::size_t bytes = count * dpt::dtype_size(dtype);
        const auto input = dpt::conformance::make_input(dtype, dpt::conformance::Pattern::kRandom,
                                                        ++seed, expect.rank, count);
        // What each path gives on host buffers.
        std::vector<char> want = input;
        Communicator& reference = native(dtype, op) ? native_host : device_comm;
        reference.all_reduce(want.data(), want.data(), count, dtype, op);
        const std::string what = std::string(dpt::dtype_name(dtype)) + " " +
                                 dpt::reduce_op_name(op) + " count " + std::to_string(count);
        for (bool in_place : {true, false}) {
          void* send = gpu.allocate(bytes);
          void* recv = in_place ? send : gpu.allocate(bytes);
          if (bytes > 0) std::memcpy(send, input.data(), bytes);
          const int staged = gpu.counts.to_host_async, waits = gpu.counts.waits;
          device_comm.all_reduce(send, recv, count, dtype, op);
          // MPI may read only after the device's queued work that wrote the buffer is done.
          expect(count == 0 || gpu.counts.waits > waits,
                 what + ": no wait for the device's queued work");
          expect(bytes == 0 || std::memcmp(recv, want.data(), bytes) == 0,
                 what + (in_place ? " in place" : " apart") + ": bits differ from the host path");
          const bool copied = gpu.counts.to_host_async > staged;
          expect(count == 0 || copied != native(dtype, op),
                 what + (copied ? ": staged through host memory" : ": not staged"));
          if (!in_place) gpu.deallocate(recv);
          gpu.deallocate(send);
        }
      }
    }
  }
}

void run() {
  dpt::FakeGpu gpu;
  {
    auto device_comm = dpt::make_mpi_communicator(
        options_with(MpiDeviceBuffers::kAlwaysMpi, dpt::AllReduceAlgorithm::kAuto), &gpu);
    auto native_host = dpt::make_mpi_communicator(
        options_with(MpiDeviceBuffers::kAlwaysMpi, dpt::AllReduceAlgorithm::kNative));
    expect(device_comm->device_memory(), "kAlwaysMpi with a CUDA device: no device memory");
    expect(!native_host->device_memory(), "no device given, yet device memory");
    check_all_reduce(*device_comm, *native_host, gpu);
  }
  {
    auto comm = dpt::make_mpi_communicator(
        options_with(MpiDeviceBuffers::kCudaAwareMpi, dpt::AllReduceAlgorithm::kAuto), &gpu);
    expect(comm->device_memory() == dpt::mpi_reduces_device_memory(),
           "kCudaAwareMpi: device_memory() differs from mpi_reduces_device_memory()");
    // This is Open MPI, CUDA-aware or not: never given device memory (MPI_Iallreduce).
    char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
    int length = 0;
    MPI_Get_library_version(version, &length);
    const bool open_mpi = std::string(version, length).find("Open MPI") != std::string::npos;
    expect(!open_mpi || !comm->device_memory(), "kCudaAwareMpi: Open MPI given device memory");
  }
  {
    // Only rank 0 has a device: nobody takes device memory.
    auto comm = dpt::make_mpi_communicator(
        options_with(MpiDeviceBuffers::kAlwaysMpi, dpt::AllReduceAlgorithm::kAuto),
        expect.rank == 0 ? &gpu : nullptr);
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    expect(size == 1 ? comm->device_memory() : !comm->device_memory(),
           "ranks that disagree: device memory taken");
  }
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &expect.rank);
  try {
    run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", expect.rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  const int total = expect.total_failures("mpi_device_buffers");
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
