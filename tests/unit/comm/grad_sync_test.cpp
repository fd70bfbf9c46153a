// GradSync with gradients that are not in host memory: with a communicator that takes host
// memory only, every bucket goes through the page-locked staging buffer (copy to host,
// all-reduce, copy back); with one that takes device memory, the device pointers go straight to
// the all-reduce. Both must give the same sums as gradients on the CPU. The "GPU" is FakeGpu
// (tests/fake_gpu.h): separate host memory that counts copies, so this runs without a GPU.
#include "comm/grad_sync.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <thread>

#include "comm/reduce.h"
#include "comm/thread_world.h"
#include "devices/cpu_device.h"
#include "devices/error.h"
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
  void order_next_after(DeviceEvent&) override { order_pending_ = true; }
  void all_reduce(const void* send, void* recv, std::size_t count, DType dtype,
                  ReduceOp op) override {
    if (order_pending_) ++ordered_all_reduces;
    order_pending_ = false;
    ForwardingCommunicator::all_reduce(send, recv, count, dtype, op);
  }
  int ordered_all_reduces = 0;  // all-reduces told which event to wait for (order_next_after)

 private:
  bool order_pending_ = false;
};

enum class Where { kCpu, kFakeGpu, kFakeGpuDeviceComm };

// Layer ranges of a 14-value flat buffer (one layer without parameters).
const std::vector<FlatRange> kLayers = {{0, 3}, {3, 5}, {8, 0}, {8, 6}};

// Multiples of 2^-10 below 128: float32 sums them exactly; bf16 and fp16 must round most.
float value(int rank, int i) {
  return static_cast<float>((rank + 1) * 100 + i) * 0.25f + static_cast<float>(i) * 0x1p-10f;
}

struct RankResult {
  std::vector<float> grads;
  bool staged = false;
  int buckets = 0;
  FakeGpuCounts counts;
  std::vector<std::string> queue_calls;  // FakeGpu's log of copy-queue calls and event records
  int ordered_all_reduces = 0;           // DeviceMemoryComm only
  int records_in_backward = 0;           // events recorded between begin() and finish(), last step
};

// Each of `world` ranks fills its gradients, reports the layers ready in backward order (or not
// at all: finish() must reduce them anyway) and returns what it holds after finish().
std::vector<RankResult> run(int world, Where where, bool overlap, bool report, int steps = 2,
                            DType reduce_dtype = DType::kF32, bool shared_memory = true) {
  ThreadWorld thread_world(world, CommOptions{10.0}, shared_memory);
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
        options.reduce_dtype = reduce_dtype;
        GradSync sync(*comm, grads, kLayers, options);
        for (int step = 0; step < steps; ++step) {
          std::vector<float> mine(14);
          for (int i = 0; i < 14; ++i) mine[i] = value(rank, i) + static_cast<float>(step);
          device.copy_from_host(grads.raw(), mine.data(), grads.bytes());
          sync.begin();
          const int records = gpu.counts.records;
          if (report) {
            for (std::size_t i = kLayers.size(); i-- > 0;) sync.ready(kLayers[i]);
          }
          result.records_in_backward = gpu.counts.records - records;
          sync.finish();
        }
        result.staged = sync.staged();
        result.buckets = sync.num_buckets();
      }
      result.grads.resize(14);
      device.copy_to_host(result.grads.data(), grads.raw(), grads.bytes());
      result.counts = gpu.counts;
      result.queue_calls = gpu.queue_calls;
      if (where == Where::kFakeGpuDeviceComm) {
        result.ordered_all_reduces = static_cast<DeviceMemoryComm&>(*comm).ordered_all_reduces;
      }
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

// The copy queue's calls (the main thread's "record event N" left out) are, per bucket: wait for
// that bucket's ready event, copy to the host, wait, copy back, wait; and each bucket's event was
// recorded before its copy waited for it.
void expect_bucket_trips(const std::vector<std::string>& calls, int trips) {
  std::vector<std::string> worker;
  std::vector<std::string> recorded;
  for (const std::string& call : calls) {
    if (call.rfind("record event ", 0) == 0) {
      recorded.push_back(call.substr(13));
      continue;
    }
    if (call.rfind("wait_for event ", 0) == 0) {
      const std::string n = call.substr(15);
      EXPECT_NE(std::find(recorded.begin(), recorded.end(), n), recorded.end())
          << "the copy waits for event " << n << " before it was recorded";
      worker.push_back("wait_for event");
      continue;
    }
    worker.push_back(call);
  }
  const std::vector<std::string> trip = {"wait_for event", "copy_to_host", "record", "wait",
                                         "copy",           "record",       "wait"};
  ASSERT_EQ(worker.size(), trip.size() * static_cast<std::size_t>(trips));
  for (std::size_t i = 0; i < worker.size(); ++i) {
    EXPECT_EQ(worker[i], trip[i % trip.size()]) << "copy queue call " << i;
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
        // Per step and bucket: one copy each way on the copy queue, each waited for; one staging
        // buffer; nothing on the compute queue.
        EXPECT_EQ(result.counts.queued_copies, 2 * 2 * 2);
        EXPECT_EQ(result.counts.to_host_async + result.counts.to_device_async, 0);
        EXPECT_EQ(result.counts.waits, 2 * 2 * 2);
        EXPECT_EQ(result.counts.host_allocations, 1);
        EXPECT_EQ(result.counts.host_frees, 1);
        // A bucket's ready event is recorded in ready(), when backward has produced it (without
        // a worker thread nothing else records meanwhile), or in finish() when never reported.
        if (!overlap) {
          EXPECT_EQ(result.records_in_backward, report ? 2 : 0);
        }
        expect_bucket_trips(result.queue_calls, 2 * 2);
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
    // Each bucket's all-reduce waits for that bucket's ready event, not for all queued work.
    EXPECT_EQ(result.ordered_all_reduces, 2 * 2);
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

// comm.reduce_dtype: each rank's gradients are rounded to 16 bits, summed in 16 bits and widened
// back. Two ranks: exactly round16(round16(a) + round16(b)) (one addition, so every algorithm
// agrees), on the CPU (with and without shared memory) and staged from a GPU; the values need more
// mantissa than bf16 has, so rounding shows. Three ranks: the same bits on every rank, within
// two 16-bit roundings per addition of the float32 sum.
TEST(GradSync, SixteenBitReduceDTypesRoundSumAndWiden) {
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    auto round16 = [&](float v) {
      return dtype == DType::kBF16 ? bf16_to_float(float_to_bf16(v))
                                   : f16_to_float(float_to_f16(v));
    };
    for (Where where : {Where::kCpu, Where::kFakeGpu}) {
      for (bool shared_memory : {true, false}) {
        const std::vector<RankResult> results = run(2, where, true, true, 1, dtype, shared_memory);
        int rounded = 0;
        for (const RankResult& result : results) {
          for (int i = 0; i < 14; ++i) {
            const float a = value(0, i), b = value(1, i);
            const float expected = round16(round16(a) + round16(b));
            EXPECT_EQ(result.grads[static_cast<std::size_t>(i)], expected)
                << dtype_name(dtype) << " element " << i;
            rounded += expected != a + b;
          }
        }
        EXPECT_GT(rounded, 0) << "the test values must need rounding in " << dtype_name(dtype);
      }
    }
    const std::vector<RankResult> three = run(3, Where::kCpu, true, true, 1, dtype);
    for (int i = 0; i < 14; ++i) {
      const float exact = value(0, i) + value(1, i) + value(2, i);
      const float got = three[0].grads[static_cast<std::size_t>(i)];
      EXPECT_NEAR(got, exact, exact * (dtype == DType::kBF16 ? 4 : 0.5) / 256) << "element " << i;
      for (const RankResult& result : three)
        EXPECT_EQ(result.grads[static_cast<std::size_t>(i)], got);
    }
  }
}

// On a device-memory communicator (NCCL) the rounding runs on the device, through gpu_ops (which
// refuses the fake GPU: no host loop ever touches device memory).
TEST(GradSync, SixteenBitReduceOnDeviceMemoryUsesTheDeviceCasts) {
  ThreadWorld world(1, CommOptions{10.0});
  FakeGpu gpu;
  Tensor grads(gpu, {14}, DType::kF32);
  DeviceMemoryComm comm(world.communicator(0));
  GradSyncOptions options;
  options.reduce_dtype = DType::kBF16;
  options.overlap = false;
  GradSync sync(comm, grads, kLayers, options);
  sync.begin();
  try {
    sync.finish();
    ADD_FAILURE() << "a 16-bit reduce on device memory did not reach the device casts";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("round to 16 bits"), std::string::npos)
        << error.what();
  }
  options.reduce_dtype = DType::kF64;
  EXPECT_THROW(GradSync(comm, grads, kLayers, options), Error);
}

}  // namespace
}  // namespace dpt
