// GradSync with a 16-bit comm.reduce_dtype on a GPU whose communicator takes device memory (as
// nccl does; here two ThreadWorld ranks as threads on one GPU, their collectives staged through
// host memory): each bucket is rounded on the device when backward marks it (gpu_round_to_16bit
// on the compute stream), all-reduced in 16 bits from device memory, and widened back on the
// device by the communication thread (gpu_widen_16bit, which makes the GPU current there). The
// unit test (tests/unit/comm/grad_sync_test.cpp) can only show that this path reaches gpu_ops;
// here it runs: every gradient must be round16(round16(a) + round16(b)) with the CPU's
// conversions (comm/reduce.h), bit for bit, on both ranks, over two steps. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "comm/grad_sync.h"
#include "comm/reduce.h"
#include "comm/thread_world.h"
#include "devices/cuda_support.h"
#include "devices/error.h"

namespace dpt {
namespace {

// Layer ranges of the flat buffer, one of them empty; 64 KiB buckets make several of them.
const std::vector<FlatRange> kLayers = {{0, 1000}, {1000, 0}, {1000, 300000}, {301000, 7}};
constexpr int64_t kCount = 301007;

// Values with more mantissa than bf16 or fp16 keep, so the rounding shows.
float value(int rank, int step, int64_t i) {
  return static_cast<float>((1.0 + 0.37 * rank + 0.11 * step) * 3.3 * std::sin(0.1 * i + step));
}

float round16(float v, DType dtype) {
  return dtype == DType::kBF16 ? bf16_to_float(float_to_bf16(v)) : f16_to_float(float_to_f16(v));
}

TEST(GpuGradSync, SixteenBitReduceOnDeviceMemoryRoundsSumsAndWidensOnTheGpu) {
  const GpuProbe probe = probe_gpus();
  const std::vector<GpuInfo> gpus = usable_gpus(probe);
  if (gpus.empty()) GTEST_SKIP() << "no usable GPU: " << probe.reason;
  for (const DType dtype : {DType::kBF16, DType::kF16}) {
    ThreadWorld world(2, CommOptions{30.0});
    std::vector<std::vector<float>> results(2);
    std::vector<std::string> errors(2);
    std::vector<char> staged(2, 1);  // not vector<bool>: its bits share words between threads
    std::vector<std::thread> threads;
    for (int rank = 0; rank < 2; ++rank) {
      threads.emplace_back([&, rank] {
        const auto r = static_cast<std::size_t>(rank);
        std::unique_ptr<Device> gpu;
        std::unique_ptr<Communicator> comm;  // destroyed before gpu
        try {
          gpu = make_cuda_device(gpus.front().index);
          comm = world.communicator(rank, *gpu);
          Tensor grads(*gpu, {kCount}, DType::kF32);
          GradSyncOptions options;
          options.bucket_bytes = 64 << 10;
          options.reduce_dtype = dtype;
          GradSync sync(*comm, grads, kLayers, options);
          staged[r] = sync.staged();
          std::vector<float> mine(kCount);
          for (int step = 0; step < 2; ++step) {
            for (int64_t i = 0; i < kCount; ++i) mine[i] = value(rank, step, i);
            grads.copy_from_host(mine.data());
            sync.begin();
            for (std::size_t i = kLayers.size(); i-- > 0;) sync.ready(kLayers[i]);
            sync.finish();
          }
          results[r].resize(kCount);
          grads.copy_to_host(results[r].data());
        } catch (const std::exception& error) {
          errors[r] = error.what();
          if (comm) comm->abort(1);
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    const std::string name = dtype_name(dtype);
    ASSERT_EQ(errors, std::vector<std::string>(2)) << name;
    // A device-memory communicator: the buckets never go through GradSync's host staging.
    EXPECT_FALSE(staged[0]) << name;
    int64_t rounded = 0;
    for (int64_t i = 0; i < kCount; ++i) {
      const float a = value(0, 1, i), b = value(1, 1, i);
      const float expected = round16(round16(a, dtype) + round16(b, dtype), dtype);
      rounded += expected != a + b;
      for (const std::vector<float>& result : results) {
        ASSERT_EQ(result[static_cast<std::size_t>(i)], expected) << name << " element " << i;
      }
    }
    EXPECT_GT(rounded, kCount / 2) << name << ": the values must need rounding";
  }
}

}  // namespace
}  // namespace dpt
