// GradSync with gradients that are not in host memory: with a communicator that takes host
// memory only, every bucket goes through the page-locked staging buffer (copy to host,
// all-reduce, copy back); with one that takes device memory, the device pointers go straight to
// the all-reduce. Both must give the same sums as gradients on the CPU. The "GPU" is FakeGpu
// (tests/fake_gpu.h): separate host memory that counts copies, so this runs without a GPU.
#include "comm/grad_sync.h"

#include <gtest/gtest.h>

#include <thread>

#include "comm/thread_world.h"
#include "devices/cpu_device.h"
#include "fake_gpu.h"
#include "forwarding_communicator.h"

namespace dpt {
namespace {

// Passes everything on to `inner` but claims to take device memory (like NCCL).
class DeviceMemoryComm : public testing::ForwardingCommunicator {
 public:
  using ForwardingCommunicator::ForwardingCommunicator;
  std::string backend() const override {
    return "device-memory " + ForwardingCommunicator::backend();
  }
  bool device_memory() const override { return true; }
};

enum class Where { kCpu, kFakeGpu, kFakeGpuDeviceComm };

// Layer ranges of a 14-value flat buffer (one layer without parameters).
const std::vector<FlatRange> kLayers = {{0, 3}, {3, 5}, {8, 0}, {8, 6}};

float value(int rank, int i) { return static_cast<float>((rank + 1) * 100 + i) * 0.25f; }

struct RankResult {
  std::vector<float> grads;
  bool staged = false;
  int buckets = 0;
  FakeGpuCounts counts;
};

// Each of `world` ranks fills its gradients, reports the layers ready in backward order (or not
// at all: finish() must reduce them anyway) and returns what it holds after finish().
std::vector<RankResult> run(int world, Where where, bool overlap, bool report, int steps = 2) {
  ThreadWorld thread_world(world, CommOptions{10.0});
  std::vector<RankResult> results(static_cast<std::size_t>(world));
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      std::unique_ptr<Communicator> comm = thread_world.communicator(rank);
      if (where == Where::kFakeGpuDeviceComm) {
        comm = std::make_unique<DeviceMemoryComm>(std::move(comm));
      }
      CpuDevice cpu(CpuDeviceOptions{1});
      FakeGpu gpu;
      Device& device = where == Where::kCpu ? static_cast<Device&>(cpu) : gpu;
      Tensor grads(device, {14}, DType::kF32);
      RankResult& result = results[static_cast<std::size_t>(rank)];
      {
        GradSyncOptions options;
        options.bucket_bytes = 6 * sizeof(float);  // buckets {8,6} and {0,8}
        options.overlap = overlap;
        GradSync sync(*comm, grads, kLayers, options);
        for (int step = 0; step < steps; ++step) {
          std::vector<float> mine(14);
          for (int i = 0; i < 14; ++i) mine[i] = value(rank, i) + static_cast<float>(step);
          device.copy_from_host(grads.raw(), mine.data(), grads.bytes());
          sync.begin();
          if (report) {
            for (std::size_t i = kLayers.size(); i-- > 0;) sync.ready(kLayers[i]);
          }
          sync.finish();
        }
        result.staged = sync.staged();
        result.buckets = sync.num_buckets();
      }
      result.grads.resize(14);
      device.copy_to_host(result.grads.data(), grads.raw(), grads.bytes());
      result.counts = gpu.counts;
    });
  }
  for (std::thread& thread : threads) thread.join();
  return results;
}

void expect_sums(const std::vector<RankResult>& results, int world, int steps = 2) {
  for (const RankResult& result : results) {
    for (int i = 0; i < 14; ++i) {
      float sum = 0;
      for (int rank = 0; rank < world; ++rank) sum += value(rank, i) + float(steps - 1);
      EXPECT_EQ(result.grads[static_cast<std::size_t>(i)], sum) << "element " << i;
    }
  }
}

TEST(GradSync, GradientsOffTheCpuAreStagedThroughHostMemoryPerBucket) {
  for (bool overlap : {true, false}) {
    for (bool report : {true, false}) {
      const std::vector<RankResult> results = run(3, Where::kFakeGpu, overlap, report);
      expect_sums(results, 3);
      for (const RankResult& result : results) {
        EXPECT_TRUE(result.staged);
        ASSERT_EQ(result.buckets, 2);
        // Per step and bucket: one copy each way, each waited for; one staging buffer.
        EXPECT_EQ(result.counts.to_host_async, 2 * 2);
        EXPECT_EQ(result.counts.to_device_async, 2 * 2);
        EXPECT_EQ(result.counts.waits, 2 * 2 * 2);
        EXPECT_EQ(result.counts.host_allocations, 1);
        EXPECT_EQ(result.counts.host_frees, 1);
      }
    }
  }
}

TEST(GradSync, DeviceMemoryCommunicatorsGetDevicePointersWithoutStaging) {
  const std::vector<RankResult> results = run(2, Where::kFakeGpuDeviceComm, true, true);
  expect_sums(results, 2);
  for (const RankResult& result : results) {
    EXPECT_FALSE(result.staged);
    EXPECT_EQ(result.counts.to_host_async + result.counts.to_device_async, 0);
    EXPECT_EQ(result.counts.host_allocations, 0);
  }
}

TEST(GradSync, StagedSumsEqualTheCpuPath) {
  const std::vector<RankResult> cpu = run(2, Where::kCpu, true, true);
  const std::vector<RankResult> staged = run(2, Where::kFakeGpu, true, true);
  expect_sums(cpu, 2);
  for (std::size_t rank = 0; rank < cpu.size(); ++rank) {
    EXPECT_FALSE(cpu[rank].staged);
    EXPECT_EQ(cpu[rank].grads, staged[rank].grads);
  }
}

}  // namespace
}  // namespace dpt
