// CudaDevice: the caching pool and its counters, copies both ways, zero, the copy queue's
// ordering against the compute stream, Tensors on the GPU, the phase clock's timing events, the
// GPU made current by calls from other threads (two GPUs); and, on every machine, that probing
// and asking for a GPU where there is none is a clean answer or a dpt::Error, never a crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "devices/cuda/cublaslt_library.h"
#include "devices/cuda/cuda_device.h"
#include "devices/cuda_support.h"
#include "devices/error.h"

namespace dpt {
namespace {

TEST(CudaProbe, AnswersWithGpusOrAReason) {
  const GpuProbe probe = probe_gpus();
  EXPECT_GT(probe.runtime_version, 0);  // built with CUDA
  if (usable_gpus(probe).empty()) {
    EXPECT_FALSE(probe.reason.empty());
    EXPECT_THROW(make_cuda_device(0), Error);
  } else {
    EXPECT_TRUE(probe.reason.empty()) << probe.reason;
    EXPECT_GT(probe.driver_version, 0);
  }
}

TEST(CudaProbe, NoSuchOrdinalIsAConfigError) {
  const GpuProbe probe = probe_gpus();
  try {
    make_cuda_device(static_cast<int>(probe.gpus.size()) + 3);
    FAIL() << "no error for a GPU that does not exist";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kConfig) << error.what();
    EXPECT_NE(std::string(error.what()).find("cuda:"), std::string::npos) << error.what();
  }
}

// Loading cuBLASLt needs neither a GPU nor the driver, so this runs on every CUDA build machine
// that has the toolkit's cuBLAS (it skips where the library is absent, as on a bare runtime host).
TEST(CublasLt, LoadsAtRunTimeAndResolvesEveryEntryPoint) {
  std::unique_ptr<CublasLtLibrary> library;
  try {
    library = std::make_unique<CublasLtLibrary>();
  } catch (const Error& error) {
    GTEST_SKIP() << error.what();
  }
  EXPECT_NE(library->version().find("cuBLASLt 13."), std::string::npos) << library->version();
  EXPECT_NE(library->matmul, nullptr);
  EXPECT_STREQ(library->status_string(CUBLAS_STATUS_NOT_INITIALIZED),
               "the library was not initialized");
}

class CudaDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const GpuProbe probe = probe_gpus();
    const std::vector<GpuInfo> gpus = usable_gpus(probe);
    if (gpus.empty()) GTEST_SKIP() << "no usable GPU: " << probe.reason;
    device_ = std::make_unique<CudaDevice>(gpus.front().index);
  }
  std::unique_ptr<CudaDevice> device_;
};

TEST_F(CudaDeviceTest, PoolReusesFreedBlocksAndCountsBytes) {
  CudaDevice& device = *device_;
  EXPECT_EQ(device.kind(), DeviceKind::kCuda);
  EXPECT_NE(device.name().find("cuda:"), std::string::npos);
  const MemoryCounters before = device.memory_counters();
  void* a = device.allocate(1000);
  EXPECT_EQ(device.memory_counters().current_bytes, before.current_bytes + 1024);
  device.deallocate(a);
  EXPECT_EQ(device.memory_counters().current_bytes, before.current_bytes);
  void* b = device.allocate(1000);  // same size class: the cached block
  EXPECT_EQ(a, b);
  device.reset_peak();
  void* c = device.allocate(3 << 20);
  EXPECT_EQ(device.memory_counters().peak_bytes, before.current_bytes + 1024 + (3 << 20));
  device.deallocate(c);
  device.deallocate(b);
  const int64_t reserved = device.reserved_bytes();
  EXPECT_GE(reserved, 1024 + (3 << 20));
  device.release_cached();
  EXPECT_EQ(device.reserved_bytes(), reserved - 1024 - (3 << 20));
}

// After abandon() (an NCCL abort that did not return) nothing is freed: cudaFree would wait for
// the whole GPU. The destructor then returns without waiting either.
TEST_F(CudaDeviceTest, AnAbandonedDeviceFreesNothing) {
  CudaDevice& device = *device_;
  void* block = device.allocate(1 << 20);
  void* host = device.allocate_host(4096);
  device.deallocate(block);
  const int64_t reserved = device.reserved_bytes();
  EXPECT_GE(reserved, 1 << 20);
  device.abandon();
  EXPECT_TRUE(device.abandoned());
  device.release_cached();
  EXPECT_EQ(device.reserved_bytes(), reserved);
  device.deallocate_host(host);  // left to the process's end
  device_.reset();
}

TEST_F(CudaDeviceTest, CopiesAndZeroRoundTrip) {
  CudaDevice& device = *device_;
  std::vector<float> host(1001);
  for (std::size_t i = 0; i < host.size(); ++i) host[i] = 0.5f * static_cast<float>(i);
  const std::size_t bytes = host.size() * sizeof(float);
  void* x = device.allocate(bytes);
  void* y = device.allocate(bytes);
  device.copy_from_host(x, host.data(), bytes);
  device.copy(y, x, bytes);
  std::vector<float> back(host.size(), -1.0f);
  device.copy_to_host(back.data(), y, bytes);
  EXPECT_EQ(back, host);
  device.zero(y, bytes / 2);
  device.copy_to_host(back.data(), y, bytes);
  EXPECT_EQ(back[0], 0.0f);
  EXPECT_EQ(back[host.size() - 1], host.back());
  device.deallocate(x);
  device.deallocate(y);
}

TEST_F(CudaDeviceTest, AsyncCopiesThroughPageLockedMemoryFromAnotherThread) {
  CudaDevice& device = *device_;
  const std::size_t count = 1 << 20, bytes = count * sizeof(float);
  float* pinned = static_cast<float*>(device.allocate_host(bytes));
  for (std::size_t i = 0; i < count; ++i) pinned[i] = static_cast<float>(i % 1000);
  const int64_t before = device.memory_counters().current_bytes;
  void* x = device.allocate(bytes);
  std::unique_ptr<DeviceEvent> done = device.create_event();
  device.copy_from_host_async(x, pinned, bytes);
  done->record();
  done->wait();  // the host buffer may now change
  std::fill(pinned, pinned + count, -1.0f);
  // The gradient sync's thread stages buckets on the same stream: its current device is unset.
  std::thread other([&] {
    device.copy_to_host_async(pinned, x, bytes);
    done->record();
    done->wait();
  });
  other.join();
  for (std::size_t i = 0; i < count; i += 4099) EXPECT_EQ(pinned[i], float(i % 1000)) << i;
  EXPECT_EQ(device.memory_counters().current_bytes, before + int64_t(bytes));  // pinned: uncounted
  device.deallocate(x);
  device.deallocate_host(pinned);
}

// The upload stream runs after the compute queued before wait_for_compute() (else the long
// device-to-device copy of 1s would land after the upload of 2s), and compute queued after
// make_compute_wait() reads the upload (else the read-back would see 1s or a mix).
TEST_F(CudaDeviceTest, CopyQueueOrdersUploadsAgainstTheComputeStream) {
  CudaDevice& device = *device_;
  const std::size_t count = std::size_t{64} << 20, bytes = count * sizeof(float);
  std::vector<float> ones(count, 1.0f);
  float* pinned = static_cast<float*>(device.allocate_host(bytes));
  std::fill(pinned, pinned + count, 2.0f);
  void* x = device.allocate(bytes);
  void* y = device.allocate(bytes);
  device.copy_from_host(y, ones.data(), bytes);
  std::unique_ptr<CopyQueue> queue = device.create_copy_queue();
  std::unique_ptr<DeviceEvent> uploaded = queue->create_event();
  for (int round = 0; round < 3; ++round) {
    device.copy(x, y, bytes);  // compute stream: x = 1s, queued, not finished
    queue->wait_for_compute();
    queue->copy_from_host_async(x, pinned, bytes);  // copy stream: x = 2s after it
    uploaded->record();
    queue->make_compute_wait();
    std::vector<float> back(count, -1.0f);
    device.copy_to_host(back.data(), x, bytes);  // compute stream, after the upload
    EXPECT_EQ(std::count(back.begin(), back.end(), 2.0f), static_cast<std::ptrdiff_t>(count))
        << "round " << round;
    uploaded->wait();  // the host buffer may change now
  }
  uploaded.reset();  // events of the queue before the queue
  queue.reset();
  device.deallocate(x);
  device.deallocate(y);
  device.deallocate_host(pinned);
}

TEST_F(CudaDeviceTest, TensorsLiveInDeviceMemory) {
  CudaDevice& device = *device_;
  const int64_t before = device.memory_counters().current_bytes;
  {
    Tensor t(device, {16, 8}, DType::kF32);  // zero-filled on the device
    Tensor u(device, {16, 8}, DType::kF32);
    std::vector<float> ones(128, 1.0f), back(128, -1.0f);
    device.copy_from_host(t.raw(), ones.data(), t.bytes());
    u.copy_from(t);
    device.copy_to_host(back.data(), u.raw(), u.bytes());
    EXPECT_EQ(back, ones);
    EXPECT_GT(device.memory_counters().current_bytes, before);
  }
  EXPECT_EQ(device.memory_counters().current_bytes, before);  // RAII: freed with the Tensors
}

// The phase clock times the stream, not the host: an interval is the stream's time between two
// laps (its work, or its idle wait for the host), read() never waits, and a read after a
// synchronize gets what was still running at the earlier read.
TEST_F(CudaDeviceTest, PhaseClockTimesTheStreamWithoutWaiting) {
  CudaDevice& device = *device_;
  std::unique_ptr<PhaseClock> clock = device.create_phase_clock();
  const std::size_t bytes = std::size_t{256} << 20;
  void* buffer = device.allocate(bytes);
  device.synchronize();
  clock->lap(PhaseClock::kUncharged);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the stream idles meanwhile
  clock->lap(0);
  // ~0.1 s of memsets at 3 TB/s: queued in a few ms, still running when read() is called.
  for (int i = 0; i < 1200; ++i) device.zero(buffer, bytes);
  clock->lap(1);
  double seconds[PhaseClock::kMaxPhases] = {};
  const auto start = std::chrono::steady_clock::now();
  clock->read(seconds);
  const double read_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(read_s, 0.02) << "read() waited for the device";
  EXPECT_GE(seconds[0], 0.018);  // the idle stream's wait for the host
  EXPECT_LT(seconds[0], 0.2);
  EXPECT_EQ(seconds[1], 0.0) << "the memsets' interval was read before they finished";
  device.synchronize();
  clock->read(seconds);
  EXPECT_GT(seconds[1], 0.01);
  EXPECT_GE(seconds[0], 0.018);  // not read twice
  EXPECT_LT(seconds[0], 0.2);
  // Laps keep working after a read, reusing events.
  for (int i = 0; i < 3; ++i) clock->lap(2);
  device.synchronize();
  clock->read(seconds);
  EXPECT_GE(seconds[2], 0.0);
  EXPECT_LT(seconds[2], 0.01);
  EXPECT_THROW(clock->lap(PhaseClock::kMaxPhases), Error);
  device.deallocate(buffer);
}

// The gradient sync's thread records, waits for and destroys events, synchronizes, copies,
// zeroes and frees page-locked buffers without ever selecting the GPU: each of these calls makes
// the device's GPU current, so the thread's first CUDA call does not create a second context on
// GPU 0 (the runtime's default device). Needs two GPUs, the device on the second: with one, GPU 0
// is the device's own and nothing could tell.
TEST(CudaDeviceThreads, CallsFromAThreadThatNeverSelectedTheGpuRunOnIt) {
  const std::vector<GpuInfo> gpus = usable_gpus(probe_gpus());
  if (gpus.size() < 2) GTEST_SKIP() << "needs two usable GPUs, " << gpus.size() << " found";
  const int ordinal = gpus[1].index;
  CudaDevice device(ordinal);
  std::unique_ptr<DeviceEvent> event = device.create_event();
  event->record();
  void* pinned = device.allocate_host(4096);
  // The current device of a fresh thread after `call`.
  auto current_after = [](const std::function<void()>& call) {
    int current = -1;
    std::thread([&] {
      try {  // an exception escaping the thread would end the whole test program
        call();
      } catch (const std::exception& error) {
        ADD_FAILURE() << error.what();
      }
      if (cudaGetDevice(&current) != cudaSuccess) current = -2;
    }).join();
    return current;
  };
  EXPECT_EQ(current_after([&] { event->wait(); }), ordinal);
  EXPECT_EQ(current_after([&] { device.synchronize(); }), ordinal);
  // A communicator's device path copies and zeroes on the gradient sync's thread.
  void* buffer = device.allocate(2 * 4096);
  char* bytes = static_cast<char*>(buffer);
  EXPECT_EQ(current_after([&] { device.zero(bytes, 4096); }), ordinal);
  EXPECT_EQ(current_after([&] { device.copy(bytes + 4096, bytes, 4096); }), ordinal);
  std::vector<char> host(4096, 1);
  EXPECT_EQ(current_after([&] { device.copy_to_host(host.data(), bytes + 4096, 4096); }), ordinal);
  EXPECT_EQ(std::count(host.begin(), host.end(), 0), 4096);
  device.deallocate(buffer);
  EXPECT_EQ(current_after([&] { device.deallocate_host(pinned); }), ordinal);
  EXPECT_EQ(current_after([&] { event.reset(); }), ordinal);
}

}  // namespace
}  // namespace dpt
