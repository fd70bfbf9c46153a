// One NVIDIA GPU as a Device: device memory through a caching pool, one CUDA stream (the compute
// stream) on which every copy, memset and kernel of this device is queued (so work is ordered
// without extra syncs), and the cuBLASLt library and handle its GEMMs use. Host<->device copies
// are explicit (copy_from_host / copy_to_host); copy() and zero() stay on the device. The one
// exception to the single stream is a CopyQueue (create_copy_queue, cuda_copy_queue.cpp): a
// second stream for batch uploads, ordered against the compute stream by events only where its
// user asks.
// It also keeps the cuBLASLt plans of the GEMMs it has run (gemm_plans), so each shape is set up
// once. Created by make_cuda_device (devices/cuda_support.h). Not thread-safe except
// memory_counters, the asynchronous copies and events. Calls that may run on a thread other than
// the creating one make the GPU current themselves (cudaSetDevice), so that thread never creates a
// second context on GPU 0.
#pragma once

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "devices/cuda/cublaslt_library.h"
#include "devices/device.h"
#include "devices/gemm_plan_cache.h"

namespace dpt {

class CudaDevice : public Device {
 public:
  // Selects GPU `ordinal`, creates the stream and loads cuBLASLt. Throws dpt::Error on failure:
  // kConfig when the GPU does not exist, is older than the kernels (gpu_probe.h's
  // kMinComputeCapability), cannot run this build's kernels (CMAKE_CUDA_ARCHITECTURES without
  // its architecture, or PTX newer than its driver) or cannot be selected (e.g. held by another
  // process in exclusive-process mode), naming it and the reason.
  explicit CudaDevice(int ordinal);
  ~CudaDevice() override;
  CudaDevice(const CudaDevice&) = delete;
  CudaDevice& operator=(const CudaDevice&) = delete;

  DeviceKind kind() const override { return DeviceKind::kCuda; }
  int index() const override { return ordinal_; }
  std::string name() const override;  // "cuda:0 (NVIDIA H100 80GB HBM3, 79.1 GiB, cc 9.0, ...)"
  // From the pool: a cached block of the same rounded size when there is one, else cudaMalloc
  // (on out-of-memory the cache is freed and cudaMalloc retried once). 256-byte aligned.
  void* allocate(std::size_t bytes) override;
  // Returns the block to the pool (work queued on the stream that still uses it runs first, so
  // reuse by later work on the same stream is safe). The pool knows no other stream: a block that
  // a CopyQueue or a communicator's stream used must be ordered back into the compute stream
  // (make_compute_wait, cudaStreamWaitEvent) or waited for before it is freed.
  void deallocate(void* ptr) noexcept override;
  MemoryCounters memory_counters() const override;
  void reset_peak() override;
  // Device-to-device copy and memset, queued on the stream (asynchronous).
  void copy(void* dst, const void* src, std::size_t bytes) override;
  void zero(void* ptr, std::size_t bytes) override;
  // Waits for the compute stream (a CopyQueue's copies are waited for through its events).
  void synchronize() override;

  // Host -> device and device -> host; both return when the copy has finished.
  void copy_from_host(void* device_dst, const void* host_src, std::size_t bytes) override;
  void copy_to_host(void* host_dst, const void* device_src, std::size_t bytes) override;
  // Page-locked host memory (cudaHostAlloc), not counted in memory_counters.
  void* allocate_host(std::size_t bytes) override;
  void deallocate_host(void* ptr) noexcept override;
  // Queued on the stream after the work before them; thread-safe (they touch no pool state),
  // so the gradient sync's thread may stage buckets while backward queues kernels.
  void copy_from_host_async(void* device_dst, const void* host_src, std::size_t bytes) override;
  void copy_to_host_async(void* host_dst, const void* device_src, std::size_t bytes) override;
  // A cudaEvent (no timing) recorded on the stream; wait() is cudaEventSynchronize. Usable from
  // any thread (each call makes the GPU current).
  std::unique_ptr<DeviceEvent> create_event() override;
  // cudaPointerGetAttributes: device (or managed) memory of this GPU.
  bool is_device_pointer(const void* ptr) const override;
  // A non-blocking stream of its own for host -> device copies; cross-stream ordering through
  // cudaEventRecord + cudaStreamWaitEvent (devices/cuda/cuda_copy_queue.cpp).
  std::unique_ptr<CopyQueue> create_copy_queue() override;
  // Timing events on the compute stream, read without waiting (devices/cuda/cuda_phase_clock.cpp).
  std::unique_ptr<PhaseClock> create_phase_clock() override;
  // Frees the pool's cached (unused) blocks.
  void release_cached() noexcept;
  // Bytes held from cudaMalloc: blocks in use plus cached ones.
  int64_t reserved_bytes() const;

  cudaStream_t stream() const { return stream_; }
  const CublasLtLibrary& cublaslt() const { return *cublaslt_; }
  cublasLtHandle_t cublaslt_handle() const { return cublaslt_handle_; }
  // Scratch space for cuBLASLt (fixed size, allocated once).
  void* gemm_workspace() const { return workspace_; }
  std::size_t gemm_workspace_bytes() const { return kWorkspaceBytes; }
  int compute_capability() const { return compute_capability_; }
  // The cuBLASLt plans of cuda_gemm (devices/cuda/cuda_gemm.cpp), at most kGemmPlans shapes;
  // used under gemm_mutex(), which cuda_gemm holds while it looks a plan up and queues with it
  // (a plan's epilogue pointer is set per call). Only the thread that runs forward and backward
  // calls cuda_gemm (the gradient sync's thread launches element-wise kernels only), so the
  // mutex is a guard, not a contention point.
  GemmPlanCache& gemm_plans() { return gemm_plans_; }
  std::mutex& gemm_mutex() { return gemm_mutex_; }
  static constexpr std::size_t kGemmPlans = 256;
  // Makes this GPU the calling thread's current device (cudaSetDevice): kernels launched into
  // its stream from another thread (the gradient sync's) must run with it current.
  void make_current() const;
  // Says that work another party queued on this GPU may never finish: an NCCL collective whose
  // ncclCommAbort did not return in time (comm/nccl_communicator.cpp). cudaFree and cudaFreeHost
  // wait for the whole device, so from then on nothing is freed (release_cached, deallocate_host
  // and the destructor leave the memory to the process's end, which is near: the run is failing)
  // and the destructor does not wait for the stream, so the rank reaches its error report.
  void abandon() noexcept { abandoned_.store(true); }
  bool abandoned() const noexcept { return abandoned_.load(); }

 private:
  static constexpr std::size_t kWorkspaceBytes = std::size_t{32} << 20;

  int ordinal_;
  std::string gpu_name_;
  int64_t total_memory_ = 0;
  int compute_capability_ = 0;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<CublasLtLibrary> cublaslt_;
  cublasLtHandle_t cublaslt_handle_ = nullptr;
  void* workspace_ = nullptr;
  // After cublaslt_: plans hold its descriptors (the destructor also clears them first).
  std::mutex gemm_mutex_;
  GemmPlanCache gemm_plans_{kGemmPlans};

  mutable std::mutex mutex_;
  std::unordered_map<void*, std::size_t> in_use_;     // block -> rounded size
  std::map<std::size_t, std::vector<void*>> cached_;  // rounded size -> free blocks
  int64_t reserved_ = 0;
  std::atomic<int64_t> current_bytes_{0};
  std::atomic<int64_t> peak_bytes_{0};
  std::atomic<bool> abandoned_{false};
};

// A cudaEvent (no timing) of GPU `ordinal` that record() records on `stream`; wait() is
// cudaEventSynchronize. `event()` is what cudaStreamWaitEvent takes.
class CudaEvent : public DeviceEvent {
 public:
  CudaEvent(int ordinal, cudaStream_t stream);
  ~CudaEvent() override;
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  void record() override;
  void wait() override;
  cudaEvent_t event() const { return event_; }

 private:
  int ordinal_;
  cudaStream_t stream_;
  cudaEvent_t event_ = nullptr;
};

}  // namespace dpt
