// CudaDevice: stream, caching pool and cuBLASLt of one GPU.
#include "devices/cuda/cuda_device.h"

#include <cstdio>

#include "devices/cuda/cuda_check.h"
#include "devices/cuda/cuda_ops.h"
#include "devices/error.h"
#include "devices/gpu_probe.h"

namespace dpt {
namespace {

// Pool size classes: 512-byte multiples up to 1 MiB, then 1 MiB multiples, so a block freed by
// one batch size is reused by the next call of the same layer.
std::size_t round_size(std::size_t bytes) {
  const std::size_t unit = bytes <= (std::size_t{1} << 20) ? 512 : (std::size_t{1} << 20);
  return (bytes + unit - 1) / unit * unit;
}

}  // namespace

CudaDevice::CudaDevice(int ordinal) : ordinal_(ordinal) {
  int count = 0;
  const cudaError_t status = cuda_clear_error(cudaGetDeviceCount(&count));
  DPT_CHECK_AS(ErrorKind::kConfig, status == cudaSuccess)
      << "cuda:" << ordinal << ": CUDA is not usable: " << cudaGetErrorName(status) << " ("
      << cudaGetErrorString(status) << ")";
  DPT_CHECK_AS(ErrorKind::kConfig, ordinal >= 0 && ordinal < count)
      << "cuda:" << ordinal << ": no such GPU (" << count << " present)";
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, ordinal));
  GpuInfo gpu;
  gpu.index = ordinal;
  gpu.name = prop.name;
  gpu.compute_major = prop.major;
  gpu.compute_minor = prop.minor;
  check_compute_capability(gpu);
  require_usable_gpu(gpu);  // before any launch could fail with "no kernel image is available"
  // Creates this GPU's context (CUDA >= 12): a GPU in exclusive-process mode that another process
  // holds, or one that fell off the bus, fails here; a fact about the machine, not a dpt bug.
  const cudaError_t selected = cuda_clear_error(cudaSetDevice(ordinal));
  DPT_CHECK_AS(ErrorKind::kConfig, selected == cudaSuccess)
      << "cuda:" << ordinal << " (" << prop.name
      << ") cannot be used: " << cudaGetErrorName(selected) << " (" << cudaGetErrorString(selected)
      << ")";
  // Architectures outside the build's (CMAKE_CUDA_ARCHITECTURES) and its PTX: refused here, not
  // by the first kernel launch.
  const cudaError_t image = cuda_kernel_image_status();
  // No code for this architecture: a rebuild fixes it; a PTX the driver cannot compile (a driver
  // older than the toolkit): a newer driver does.
  const bool rebuild =
      image == cudaErrorNoKernelImageForDevice || image == cudaErrorInvalidDeviceFunction;
  DPT_CHECK_AS(ErrorKind::kConfig, image == cudaSuccess)
      << "cuda:" << ordinal << " (" << prop.name << ", compute capability " << prop.major << "."
      << prop.minor << ") cannot run this build's kernels: " << cudaGetErrorName(image) << " ("
      << cudaGetErrorString(image) << "); dpt was built for CUDA architectures "
      << DPT_CUDA_ARCHITECTURES
      << (rebuild ? ": rebuild with -DCMAKE_CUDA_ARCHITECTURES including "
                  : ": update the NVIDIA driver (or rebuild for ")
      << prop.major << prop.minor << (rebuild ? "" : ")");
  gpu_name_ = prop.name;
  total_memory_ = static_cast<int64_t>(prop.totalGlobalMem);
  compute_capability_ = prop.major * 10 + prop.minor;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  try {
    cublaslt_ = std::make_unique<CublasLtLibrary>();
    cublaslt_->check(cublaslt_->create(&cublaslt_handle_), "cublasLtCreate");
    CUDA_CHECK(cudaMalloc(&workspace_, kWorkspaceBytes));
  } catch (...) {
    if (cublaslt_handle_ != nullptr) cublaslt_->destroy(cublaslt_handle_);
    cuda_clear_error(cudaStreamDestroy(stream_));
    throw;
  }
}

CudaDevice::~CudaDevice() {
  if (abandoned()) {
    gemm_plans_.clear();  // host objects only; the GPU's memory and handles go with the process
    return;
  }
  cuda_clear_error(cudaSetDevice(ordinal_));
  cuda_clear_error(cudaStreamSynchronize(stream_));
  release_cached();
  // Blocks still in use belong to Tensors that outlived the device (a caller bug); free them.
  for (auto& [ptr, size] : in_use_) cuda_clear_error(cudaFree(ptr));
  cuda_clear_error(cudaFree(workspace_));
  gemm_plans_.clear();  // their descriptors, before cuBLASLt is unloaded
  cublaslt_->destroy(cublaslt_handle_);
  cublaslt_.reset();
  cuda_clear_error(cudaStreamDestroy(stream_));
}

void CudaDevice::make_current() const { CUDA_CHECK(cudaSetDevice(ordinal_)); }

std::string CudaDevice::name() const {
  char memory[32];
  std::snprintf(memory, sizeof(memory), "%.1f GiB", total_memory_ / double(int64_t{1} << 30));
  return "cuda:" + std::to_string(ordinal_) + " (" + gpu_name_ + ", " + memory + ", cc " +
         std::to_string(compute_capability_ / 10) + "." + std::to_string(compute_capability_ % 10) +
         ", " + cublaslt_->version() + ")";
}

void* CudaDevice::allocate(std::size_t bytes) {
  const std::size_t size = round_size(bytes == 0 ? 1 : bytes);
  void* ptr = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cached_.find(size);
    if (it != cached_.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
    }
  }
  if (ptr == nullptr) {
    make_current();
    cudaError_t status = cudaMalloc(&ptr, size);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the sticky-free error state before retrying
      synchronize();
      release_cached();
      status = cudaMalloc(&ptr, size);
    }
    cuda_clear_error(status);  // a caller that recovers launches cleanly
    // Only cudaErrorMemoryAllocation is out of memory; anything else is usually a sticky error of
    // an earlier kernel that this cudaMalloc happened to be the first call to see.
    DPT_CHECK(status == cudaSuccess)
        << "cuda:" << ordinal_ << ": "
        << (status == cudaErrorMemoryAllocation ? "out of memory" : "cudaMalloc failed")
        << " allocating " << bytes << " bytes (" << memory_counters().current_bytes << " in use, "
        << reserved_bytes() << " reserved): " << cudaGetErrorName(status) << " ("
        << cudaGetErrorString(status) << ")" << cuda_error_hint(status);
    std::lock_guard<std::mutex> lock(mutex_);
    reserved_ += static_cast<int64_t>(size);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    in_use_[ptr] = size;
  }
  const int64_t now = current_bytes_ += static_cast<int64_t>(size);
  int64_t peak = peak_bytes_.load();
  while (now > peak && !peak_bytes_.compare_exchange_weak(peak, now)) {
  }
  return ptr;
}

void CudaDevice::deallocate(void* ptr) noexcept {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = in_use_.find(ptr);
  if (it == in_use_.end()) return;  // not ours: ignore rather than corrupt the pool
  current_bytes_ -= static_cast<int64_t>(it->second);
  cached_[it->second].push_back(ptr);
  in_use_.erase(it);
}

void CudaDevice::release_cached() noexcept {
  if (abandoned()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (cuda_clear_error(cudaSetDevice(ordinal_)) != cudaSuccess) return;
  for (auto& [size, blocks] : cached_) {
    for (void* ptr : blocks) {
      if (cuda_clear_error(cudaFree(ptr)) == cudaSuccess) reserved_ -= static_cast<int64_t>(size);
    }
  }
  cached_.clear();
}

int64_t CudaDevice::reserved_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reserved_;
}

MemoryCounters CudaDevice::memory_counters() const {
  return {current_bytes_.load(), peak_bytes_.load()};
}

void CudaDevice::reset_peak() { peak_bytes_ = current_bytes_.load(); }

// Both may run on a thread that never selected this GPU (a communicator's device path, called
// by the gradient sync's thread): made current first, as every other call that may.
void CudaDevice::copy(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  make_current();
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}

void CudaDevice::zero(void* ptr, std::size_t bytes) {
  if (bytes == 0) return;
  make_current();
  CUDA_CHECK(cudaMemsetAsync(ptr, 0, bytes, stream_));
}

void CudaDevice::synchronize() {
  make_current();
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaDevice::copy_from_host(void* device_dst, const void* host_src, std::size_t bytes) {
  if (bytes == 0) return;
  make_current();
  CUDA_CHECK(cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, stream_));
  synchronize();
}

void* CudaDevice::allocate_host(std::size_t bytes) {
  make_current();
  void* ptr = nullptr;
  const cudaError_t status =
      cuda_clear_error(cudaHostAlloc(&ptr, bytes == 0 ? 1 : bytes, cudaHostAllocDefault));
  DPT_CHECK(status == cudaSuccess)
      << "cuda:" << ordinal_ << ": cannot allocate " << bytes
      << " bytes of page-locked host memory: " << cudaGetErrorString(status);
  return ptr;
}

void CudaDevice::deallocate_host(void* ptr) noexcept {
  if (ptr == nullptr || abandoned()) return;
  // Another thread may free (the gradient sync's, growing a staging buffer): without a current
  // device its first CUDA call would create a context on GPU 0, a second one for this process.
  cuda_clear_error(cudaSetDevice(ordinal_));
  cuda_clear_error(cudaFreeHost(ptr));
}

// The calling thread may be the gradient sync's, whose current device is not set: copies on
// this device's stream are valid from any thread, but the event must match the stream's device.
void CudaDevice::copy_from_host_async(void* device_dst, const void* host_src, std::size_t bytes) {
  if (bytes == 0) return;
  make_current();
  CUDA_CHECK(cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, stream_));
}

void CudaDevice::copy_to_host_async(void* host_dst, const void* device_src, std::size_t bytes) {
  if (bytes == 0) return;
  make_current();
  CUDA_CHECK(cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, stream_));
}

CudaEvent::CudaEvent(int ordinal, cudaStream_t stream) : ordinal_(ordinal), stream_(stream) {
  CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
}

CudaEvent::~CudaEvent() {
  cuda_clear_error(cudaSetDevice(ordinal_));
  cuda_clear_error(cudaEventDestroy(event_));
}

// The event and the stream must belong to the current device. Each call makes the GPU current
// itself: events are recorded, waited for and destroyed on threads that may never have selected
// it (the gradient sync's), where the first CUDA call would create a context on GPU 0.
void CudaEvent::record() {
  CUDA_CHECK(cudaSetDevice(ordinal_));
  CUDA_CHECK(cudaEventRecord(event_, stream_));
}

void CudaEvent::wait() {
  CUDA_CHECK(cudaSetDevice(ordinal_));
  CUDA_CHECK(cudaEventSynchronize(event_));
}

std::unique_ptr<DeviceEvent> CudaDevice::create_event() {
  make_current();
  return std::make_unique<CudaEvent>(ordinal_, stream_);
}

bool CudaDevice::is_device_pointer(const void* ptr) const {
  // The first CUDA call of a thread (the gradient sync's) would otherwise create a context on GPU
  // 0.
  make_current();
  cudaPointerAttributes attributes{};
  // Host memory CUDA does not know gives cudaMemoryTypeUnregistered, not an error (CUDA >= 11);
  // an error is cleared and read as "not device memory".
  if (cudaPointerGetAttributes(&attributes, ptr) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  const bool device_memory =
      attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged;
  return device_memory && attributes.device == ordinal_;
}

void CudaDevice::copy_to_host(void* host_dst, const void* device_src, std::size_t bytes) {
  if (bytes == 0) return;
  make_current();
  CUDA_CHECK(cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, stream_));
  synchronize();
}

}  // namespace dpt
