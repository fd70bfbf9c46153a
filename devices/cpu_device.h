// The CPU as a Device: 64-byte aligned host memory (counted: current and peak bytes), a fixed
// number of worker threads shared by OpenMP loops and the BLAS library, the choice of sgemm
// library (OpenBLAS or oneDNN) and the number format of the layers' matmuls (float32, or bf16
// through oneDNN).
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

// Number format of the float32 layers' matmuls: kBf16 rounds both operands to bf16 and
// accumulates in float32 (core/gemm_bf16.h); weights, gradients and optimizer state stay float32.
// Chosen by launch/device_select from device.precision; float64 models ignore it.
enum class MatmulPrecision { kFp32, kBf16 };

const char* matmul_precision_name(MatmulPrecision precision);  // "fp32", "bf16"

struct CpuDeviceOptions {
  int threads = 0;  // 0: every CPU in this process's affinity mask
  CpuGemmLibrary gemm = CpuGemmLibrary::kOneDnn;
  MatmulPrecision matmul = MatmulPrecision::kFp32;
};

// Number of CPUs this process may run on (sched_getaffinity), at least 1.
int cpus_available();

// A CopyQueue for devices whose work never queues (the CPU device, host memory): a copy is a
// memcpy done when queued, so there is nothing to order or wait for.
std::unique_ptr<CopyQueue> make_immediate_copy_queue();

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
  void copy_from_host(void* dst, const void* host_src, std::size_t bytes) override {
    copy(dst, host_src, bytes);
  }
  void copy_to_host(void* host_dst, const void* src, std::size_t bytes) override {
    copy(host_dst, src, bytes);
  }
  // Plain aligned memory, not counted in memory_counters (it is not the model's memory).
  void* allocate_host(std::size_t bytes) override;
  void deallocate_host(void* ptr) noexcept override;
  void copy_from_host_async(void* dst, const void* host_src, std::size_t bytes) override {
    copy(dst, host_src, bytes);
  }
  void copy_to_host_async(void* host_dst, const void* src, std::size_t bytes) override {
    copy(host_dst, src, bytes);
  }
  std::unique_ptr<DeviceEvent> create_event() override;
  std::unique_ptr<CopyQueue> create_copy_queue() override { return make_immediate_copy_queue(); }
  void zero(void* ptr, std::size_t bytes) override;
  void synchronize() override {}

  int threads() const { return threads_; }
  CpuGemmLibrary gemm_library() const { return gemm_; }
  MatmulPrecision matmul_precision() const { return matmul_; }

 private:
  int threads_;
  CpuGemmLibrary gemm_;
  MatmulPrecision matmul_;
  std::atomic<int64_t> current_bytes_{0};
  std::atomic<int64_t> peak_bytes_{0};
};

}  // namespace dpt
