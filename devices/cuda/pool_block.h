// PoolBlock: a block of a CudaDevice's pool for the length of one call, returned when the call
// ends (later work queued on the stream runs after the kernels that use it, so its reuse by that
// work is ordered).
#pragma once

#include <cstddef>

#include "devices/cuda/cuda_device.h"

namespace dpt {

class PoolBlock {
 public:
  PoolBlock(CudaDevice& device, std::size_t bytes)
      : device_(device), ptr_(device.allocate(bytes)) {}
  ~PoolBlock() { device_.deallocate(ptr_); }
  PoolBlock(const PoolBlock&) = delete;
  PoolBlock& operator=(const PoolBlock&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  CudaDevice& device_;
  void* ptr_;
};

}  // namespace dpt
