// CpuDevice: aligned host memory and the thread budget shared by OpenMP and the BLAS libraries.
#include "devices/cpu_device.h"

#include <omp.h>
#include <sched.h>

#include <cstdlib>
#include <cstring>

#include "devices/cpu_info.h"
#include "devices/error.h"

extern "C" void openblas_set_num_threads(int num_threads);

namespace dpt {

const char* cpu_gemm_library_name(CpuGemmLibrary library) {
  switch (library) {
    case CpuGemmLibrary::kOpenBlas:
      return "OpenBLAS";
    case CpuGemmLibrary::kOneDnn:
      return "oneDNN";
  }
  return "?";
}

const char* matmul_precision_name(MatmulPrecision precision) {
  switch (precision) {
    case MatmulPrecision::kFp32:
      return "fp32";
    case MatmulPrecision::kBf16:
      return "bf16";
  }
  return "?";
}

int cpus_available() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  int count = CPU_COUNT(&set);
  return count > 0 ? count : 1;
}

CpuDevice::CpuDevice(const CpuDeviceOptions& options)
    : threads_(options.threads > 0 ? options.threads : cpus_available()),
      gemm_(options.gemm),
      matmul_(options.matmul) {
  // One budget for both thread pools: they never run at the same time.
  omp_set_num_threads(threads_);
  openblas_set_num_threads(threads_);
}

std::string CpuDevice::name() const {
  return "cpu (" + detect_cpu().model_name + ", " + std::to_string(threads_) + " threads, " +
         cpu_gemm_library_name(gemm_) + " sgemm" +
         (matmul_ == MatmulPrecision::kBf16 ? ", oneDNN bf16 matmul)" : ")");
}

// Each block starts with one 64-byte header holding its size, so deallocate() can count it off.
constexpr std::size_t kAlign = 64;

void* CpuDevice::allocate(std::size_t bytes) {
  const std::size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign + kAlign;
  void* base = std::aligned_alloc(kAlign, rounded);
  DPT_CHECK(base != nullptr) << "cpu: out of memory allocating " << bytes << " bytes";
  *static_cast<std::size_t*>(base) = rounded;
  const int64_t now = current_bytes_ += static_cast<int64_t>(rounded);
  int64_t peak = peak_bytes_.load();
  while (now > peak && !peak_bytes_.compare_exchange_weak(peak, now)) {
  }
  return static_cast<char*>(base) + kAlign;
}

void CpuDevice::deallocate(void* ptr) noexcept {
  if (ptr == nullptr) return;
  void* base = static_cast<char*>(ptr) - kAlign;
  current_bytes_ -= static_cast<int64_t>(*static_cast<std::size_t*>(base));
  std::free(base);
}

MemoryCounters CpuDevice::memory_counters() const {
  return {current_bytes_.load(), peak_bytes_.load()};
}

void CpuDevice::reset_peak() { peak_bytes_ = current_bytes_.load(); }

void CpuDevice::copy(void* dst, const void* src, std::size_t bytes) {
  if (bytes > 0) std::memcpy(dst, src, bytes);
}

void CpuDevice::zero(void* ptr, std::size_t bytes) {
  if (bytes > 0) std::memset(ptr, 0, bytes);
}

void* CpuDevice::allocate_host(std::size_t bytes) {
  const std::size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  void* ptr = std::aligned_alloc(kAlign, rounded == 0 ? kAlign : rounded);
  DPT_CHECK(ptr != nullptr) << "cpu: out of memory allocating " << bytes << " bytes of host memory";
  return ptr;
}

void CpuDevice::deallocate_host(void* ptr) noexcept { std::free(ptr); }

namespace {

// Work on the CPU device has finished when its call returns: nothing to wait for.
class CpuEvent : public DeviceEvent {
 public:
  void record() override {}
  void wait() override {}
};

class ImmediateCopyQueue : public CopyQueue {
 public:
  void wait_for_compute() override {}
  void wait_for(DeviceEvent&) override {}
  void copy_from_host_async(void* dst, const void* host_src, std::size_t bytes) override {
    if (bytes > 0) std::memcpy(dst, host_src, bytes);
  }
  void copy_to_host_async(void* host_dst, const void* src, std::size_t bytes) override {
    if (bytes > 0) std::memcpy(host_dst, src, bytes);
  }
  void make_compute_wait() override {}
  std::unique_ptr<DeviceEvent> create_event() override { return std::make_unique<CpuEvent>(); }
};

}  // namespace

std::unique_ptr<DeviceEvent> CpuDevice::create_event() { return std::make_unique<CpuEvent>(); }

std::unique_ptr<CopyQueue> make_immediate_copy_queue() {
  return std::make_unique<ImmediateCopyQueue>();
}

}  // namespace dpt
