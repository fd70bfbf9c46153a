// Collectives on device memory (TransportCommunicator::take_device_memory, the path CUDA-aware
// MPI and the thread world share): on a fake GPU, every collective given device buffers (in place
// or not, or one of send/recv on the host) leaves the same bits as the same collective on host
// buffers, staged through host copies; host buffers given to such a communicator are not copied.
// Also which MPI libraries the "mpi" backend gives device memory at all.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "comm/mpi_communicator.h"
#include "comm/thread_world.h"
#include "comm_conformance_values.h"
#include "fake_gpu.h"

namespace dpt {
namespace {

using conformance::make_input;
using conformance::Pattern;

// Runs body(rank, comm, gpu) on `world` thread ranks whose communicators take their FakeGpu's
// memory; returns each rank's error ("" when none).
std::vector<std::string> on_gpu_ranks(
    int world, const std::function<void(int, Communicator&, FakeGpu&)>& body) {
  ThreadWorld thread_world(world, CommOptions{30.0});
  std::vector<std::string> errors(static_cast<std::size_t>(world));
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      FakeGpu gpu(rank);
      std::unique_ptr<Communicator> comm = thread_world.communicator(rank, gpu);
      try {
        body(rank, *comm, gpu);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(rank)] = e.what();
        comm->abort(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return errors;
}

// `bytes` of fake device memory holding `values` (zeros past them).
struct DeviceBuffer {
  FakeGpu& gpu;
  void* ptr;
  DeviceBuffer(FakeGpu& g, std::size_t bytes, const std::vector<char>& values = {})
      : gpu(g), ptr(g.allocate(bytes)) {
    if (!values.empty()) std::memcpy(ptr, values.data(), values.size());
  }
  ~DeviceBuffer() { gpu.deallocate(ptr); }
  std::vector<char> read(std::size_t bytes) const {
    const char* p = static_cast<const char*>(ptr);
    return std::vector<char>(p, p + bytes);
  }
};

void expect_no_errors(const std::vector<std::string>& errors) {
  for (std::size_t r = 0; r < errors.size(); ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
}

const DType kDTypes[] = {DType::kF32, DType::kF64,  DType::kI32,
                         DType::kI64, DType::kBF16, DType::kF16};
const ReduceOp kOps[] = {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin};
const std::size_t kCounts[] = {0, 1, 7, 1000};

TEST(DeviceBuffers, AllReduceGivesTheHostBits) {
  for (int world : {1, 2, 3}) {
    expect_no_errors(on_gpu_ranks(world, [&](int rank, Communicator& comm, FakeGpu& gpu) {
      ASSERT_TRUE(comm.device_memory());
      uint64_t seed = 1;
      for (DType dtype : kDTypes) {
        for (ReduceOp op : kOps) {
          for (std::size_t count : kCounts) {
            const std::size_t bytes = count * dtype_size(dtype);
            const std::vector<char> input =
                make_input(dtype, Pattern::kRandom, ++seed, rank, count);
            std::vector<char> host = input;
            comm.all_reduce(host.data(), host.data(), count, dtype, op);
            const std::string what = std::string(dtype_name(dtype)) + " " + reduce_op_name(op) +
                                     " count " + std::to_string(count);
            // In place, apart, and each of send / recv on the host.
            DeviceBuffer in_place(gpu, bytes, input);
            const int copies = gpu.counts.to_host_async;
            comm.all_reduce(in_place.ptr, in_place.ptr, count, dtype, op);
            EXPECT_EQ(in_place.read(bytes), host) << "in place, " << what;
            if (count > 0) {
              EXPECT_GT(gpu.counts.to_host_async, copies) << what;
            }
            DeviceBuffer send(gpu, bytes, input), recv(gpu, bytes);
            comm.all_reduce(send.ptr, recv.ptr, count, dtype, op);
            EXPECT_EQ(recv.read(bytes), host) << "apart, " << what;
            EXPECT_EQ(send.read(bytes), input) << "send changed, " << what;
            std::vector<char> host_recv(bytes);
            comm.all_reduce(send.ptr, host_recv.data(), count, dtype, op);
            EXPECT_EQ(host_recv, host) << "recv on the host, " << what;
            DeviceBuffer recv2(gpu, bytes);
            comm.all_reduce(input.data(), recv2.ptr, count, dtype, op);
            EXPECT_EQ(recv2.read(bytes), host) << "send on the host, " << what;
          }
        }
      }
    }));
  }
}

TEST(DeviceBuffers, BroadcastAllGatherReduceScatterGiveTheHostBits) {
  const int world = 3;
  expect_no_errors(on_gpu_ranks(world, [&](int rank, Communicator& comm, FakeGpu& gpu) {
    for (std::size_t count : kCounts) {
      const DType dtype = DType::kF32;
      const std::size_t bytes = count * 4, total = bytes * world;
      const std::vector<char> input = make_input(dtype, Pattern::kRandom, 7, rank, count);
      const std::vector<char> wide = make_input(dtype, Pattern::kRandom, 8, rank, count * world);

      std::vector<char> host = input;
      comm.broadcast(host.data(), count, dtype, 1);
      DeviceBuffer cast(gpu, bytes, input);
      comm.broadcast(cast.ptr, count, dtype, 1);
      EXPECT_EQ(cast.read(bytes), host) << "broadcast, count " << count;

      std::vector<char> gathered(total);
      comm.all_gather(input.data(), gathered.data(), count, dtype);
      DeviceBuffer send(gpu, bytes, input), recv(gpu, total);
      comm.all_gather(send.ptr, recv.ptr, count, dtype);
      EXPECT_EQ(recv.read(total), gathered) << "all_gather, count " << count;
      // In place: this rank's block already in recv.
      std::vector<char> own(total);
      std::memcpy(own.data() + rank * bytes, input.data(), bytes);
      DeviceBuffer in_place(gpu, total, own);
      char* block = static_cast<char*>(in_place.ptr) + rank * bytes;
      comm.all_gather(block, in_place.ptr, count, dtype);
      EXPECT_EQ(in_place.read(total), gathered) << "all_gather in place, count " << count;

      std::vector<char> scattered(bytes);
      comm.reduce_scatter(wide.data(), scattered.data(), count, dtype, ReduceOp::kSum);
      DeviceBuffer wide_on_gpu(gpu, total, wide), part(gpu, bytes);
      comm.reduce_scatter(wide_on_gpu.ptr, part.ptr, count, dtype, ReduceOp::kSum);
      EXPECT_EQ(part.read(bytes), scattered) << "reduce_scatter, count " << count;
    }
  }));
}

TEST(DeviceBuffers, HostBuffersAreNotCopied) {
  expect_no_errors(on_gpu_ranks(2, [&](int rank, Communicator& comm, FakeGpu& gpu) {
    std::vector<float> values(1000, static_cast<float>(rank + 1));
    comm.all_reduce(values.data(), values.data(), values.size(), DType::kF32, ReduceOp::kSum);
    comm.broadcast(values.data(), values.size(), DType::kF32, 0);
    EXPECT_EQ(values[999], 3.0f);
    EXPECT_EQ(gpu.counts.to_host_async, 0);
    EXPECT_EQ(gpu.counts.to_device_async, 0);
    EXPECT_EQ(gpu.counts.host_allocations, 0);
  }));
}

TEST(DeviceBuffers, FakeGpuKnowsItsMemory) {
  FakeGpu gpu;
  void* block = gpu.allocate(100);
  std::vector<char> host(100);
  EXPECT_TRUE(gpu.is_device_pointer(block));
  EXPECT_TRUE(gpu.is_device_pointer(static_cast<char*>(block) + 99));
  EXPECT_FALSE(gpu.is_device_pointer(host.data()));
  gpu.deallocate(block);
}

// comm.cuda_aware_mpi hands MPI device memory only where MPI_Iallreduce takes it (an allow-list):
// Open MPI's CUDA support leaves out nonblocking collectives (it would reduce device pointers on
// the host), plain MPICH crashed on GPU all-reduces, an unknown library is not trusted.
TEST(DeviceBuffers, OpenMpiIsNotGivenDeviceMemoryForNonblockingReductions) {
  EXPECT_FALSE(nonblocking_reductions_take_device_memory(
      "Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4, May 26, 2022"));
  EXPECT_FALSE(nonblocking_reductions_take_device_memory("Open MPI v5.0.8, package: Open MPI"));
  EXPECT_FALSE(nonblocking_reductions_take_device_memory("MPICH Version:      4.2.0"));
  EXPECT_FALSE(nonblocking_reductions_take_device_memory("Some MPI 1.0"));
  EXPECT_TRUE(nonblocking_reductions_take_device_memory("MVAPICH2-GDR Version 2.3.7"));
  EXPECT_TRUE(nonblocking_reductions_take_device_memory("MVAPICH Version: 3.0"));
  EXPECT_TRUE(nonblocking_reductions_take_device_memory("CRAY MPICH version 8.1.28.2"));
}

}  // namespace
}  // namespace dpt
