// The nccl backend on one GPU (a world of one in this process): its collectives wait for the
// work queued on the device's compute stream (event ordering), and the watchdog aborts a
// collective that cannot finish within comm.timeout_s with an error naming it. The compute
// stream is held back by a host function that waits for the test's signal. Skips where no GPU
// is usable or the build has no nccl backend.
#include <cuda_runtime_api.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "comm/communicator.h"
#include "comm/nccl_communicator.h"
#include "devices/cuda/cuda_device.h"
#include "devices/cuda_support.h"
#include "devices/error.h"
#include "first_nccl_gpu.h"

namespace dpt {
namespace {

using ::testing::HasSubstr;

// Holds a stream until release() (or destruction): a host function on it spins on a flag, for
// 20 s at most (a test that goes wrong must not hang the GPU's run).
class StreamGate {
 public:
  explicit StreamGate(cudaStream_t stream) {
    EXPECT_EQ(cudaLaunchHostFunc(stream, &StreamGate::wait, &open_), cudaSuccess);
  }
  ~StreamGate() { release(); }
  void release() { open_ = true; }

 private:
  static void wait(void* flag) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!static_cast<std::atomic<bool>*>(flag)->load() &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::yield();
    }
  }
  std::atomic<bool> open_{false};
};

std::unique_ptr<Communicator> nccl_on(Device& gpu, double timeout_s) {
  proto::CommConfig config;
  config.set_backend("nccl");
  config.set_timeout_s(timeout_s);
  return make_communicator(config, &gpu);
}

TEST(NcclOnGpu, CollectiveWaitsForTheComputeStream) {
  std::string reason;
  std::unique_ptr<Device> gpu = testing::first_nccl_gpu(reason);
  if (!gpu) GTEST_SKIP() << reason;
  auto& cuda = static_cast<CudaDevice&>(*gpu);
  std::unique_ptr<Communicator> comm = nccl_on(*gpu, 60);
  const std::size_t count = 1 << 16, bytes = count * sizeof(float);
  void* send = gpu->allocate(bytes);
  void* recv = gpu->allocate(bytes);
  gpu->zero(send, bytes);
  gpu->zero(recv, bytes);
  gpu->synchronize();
  {
    StreamGate gate(cuda.stream());
    // Queued behind the gate: the all-reduce must see these bytes, not the zeros.
    ASSERT_EQ(cudaMemsetAsync(send, 0x3F, bytes, cuda.stream()), cudaSuccess);
    std::thread comm_thread(
        [&] { comm->all_reduce(send, recv, count, DType::kF32, ReduceOp::kSum); });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    gate.release();
    comm_thread.join();
  }
  std::vector<unsigned char> host(bytes);
  gpu->copy_to_host(host.data(), recv, bytes);
  std::size_t wrong = 0;
  for (unsigned char byte : host) wrong += byte != 0x3F;
  EXPECT_EQ(wrong, 0u) << "the all-reduce ran before the compute stream's memset";
  gpu->deallocate(send);
  gpu->deallocate(recv);
}

TEST(NcclOnGpu, WatchdogAbortsACollectiveThatCannotFinish) {
  std::string reason;
  std::unique_ptr<Device> gpu = testing::first_nccl_gpu(reason);
  if (!gpu) GTEST_SKIP() << reason;
  auto& cuda = static_cast<CudaDevice&>(*gpu);
  std::unique_ptr<Communicator> comm = nccl_on(*gpu, 0.5);
  const std::size_t count = 1000;
  void* data = gpu->allocate(count * sizeof(float));
  gpu->zero(data, count * sizeof(float));
  gpu->synchronize();
  {
    StreamGate gate(cuda.stream());  // the collective waits for this stream: it cannot finish
    // ncclCommAbort may wait for the device (its frees synchronize): the gate opens on its own
    // after a while, so an abort that waits ends instead of hanging the test.
    std::thread opener([&gate] {
      std::this_thread::sleep_for(std::chrono::seconds(3));
      gate.release();
    });
    try {
      comm->all_reduce(data, data, count, DType::kF32, ReduceOp::kSum);
      ADD_FAILURE() << "the all-reduce returned while its input was held back";
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::kComm);
      EXPECT_THAT(error.what(), HasSubstr("nccl: all_reduce #1 on rank 0 timed out after 0.5 s"));
      EXPECT_THAT(error.what(), HasSubstr("communicator aborted"));
    }
    opener.join();
    // The gate's host function reads its flag until it sees it open: it must have returned
    // before the gate (and the flag) go out of scope.
    gpu->synchronize();
  }
  try {
    comm->barrier();
    ADD_FAILURE() << "barrier on an aborted communicator did not throw";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kComm);
    EXPECT_THAT(error.what(), HasSubstr("barrier #2 on rank 0: the communicator was aborted"));
  }
  comm.reset();
  gpu->deallocate(data);
}

}  // namespace
}  // namespace dpt
