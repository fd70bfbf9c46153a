// The CPU as a Device: 64-byte aligned host memory (counted: current and peak bytes), a fixed
// number of worker threads shared by OpenMP loops and the BLAS library, and the choice of sgemm
// library (OpenBLAS or oneDNN).
// Thread counts are set here, from the config, never from environment variables.
#pragma once

#include <atomic>
#include <string>

#include "devices/device.h"

namespace dpt {

// Which library runs single-precision GEMM on the CPU. Double precision (tests) always uses
// OpenBLAS, since oneDNN has no dgemm.
enum class CpuGemmLibrary { kOpenBlas, kOneDnn };

const char* cpu_gemm_library_name(CpuGemmLibrary library);

struct CpuDeviceOptions {
  int threads = 0;  // 0: every CPU in this process's affinity mask
  CpuGemmLibrary gemm = CpuGemmLibrary::kOneDnn;
};

// Number of CPUs this process may run on (sched_getaffinity), at least 1.
int cpus_available();

class CpuDevice : public Device {
 public:
  explicit CpuDevice(const CpuDeviceOptions& options = {});
  DeviceKind kind() const override { return DeviceKind::kCpu; }
  int index() const override { return 0; }
  std::string name() const override;
  void* allocate(std::size_t bytes) override;
  void deallocate(void* ptr) noexcept override;
  MemoryCounters memory_counters() const override;
  void reset_peak() override;
  void copy(void* dst, const void* src, std::size_t bytes) override;
  void zero(void* ptr, std::size_t bytes) override;
  void synchronize() override {}

  int threads() const { return threads_; }
  CpuGemmLibrary gemm_library() const { return gemm_; }

 private:
  int threads_;
  CpuGemmLibrary gemm_;
  std::atomic<int64_t> current_bytes_{0};
  std::atomic<int64_t> peak_bytes_{0};
};

}  // namespace dpt
