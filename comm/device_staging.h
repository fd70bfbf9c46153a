// Device buffers handed to a communicator whose algorithms work in host memory: DeviceStaging
// copies them into a page-locked host buffer (kept between calls) and back, with the device's
// asynchronous copies, queued after the work already queued on the device (the backward kernels
// that wrote a gradient bucket) and waited for by an event, so later work queued by other threads
// is not waited for. Also the fence before a library reads device memory itself (CUDA-aware MPI).
// One thread at a time (the communicator's caller).
#pragma once

#include <cstddef>
#include <memory>

#include "devices/device.h"

namespace dpt {

class DeviceStaging {
 public:
  // `device` must outlive this.
  explicit DeviceStaging(Device& device);
  ~DeviceStaging();
  DeviceStaging(const DeviceStaging&) = delete;
  DeviceStaging& operator=(const DeviceStaging&) = delete;

  Device& device() const { return device_; }
  // Whether `ptr` is device memory (Device::is_device_pointer).
  bool on_device(const void* ptr) const { return device_.is_device_pointer(ptr); }
  // Host buffer `slot` (0 or 1: a collective may need two) of at least `bytes`, valid until the
  // next call for that slot with more bytes.
  char* host(std::size_t bytes, int slot = 0);
  // Copies `bytes` of device memory `src` into host(bytes, slot) and returns it once the copy is
  // done.
  char* to_host(const void* src, std::size_t bytes, int slot = 0);
  // Copies `bytes` from `host_src` to device memory `dst` and returns once the copy is done.
  void to_device(void* dst, const void* host_src, std::size_t bytes);
  // Returns once the work queued on the device so far has finished.
  void fence();

 private:
  Device& device_;
  std::unique_ptr<DeviceEvent> done_;
  char* host_[2] = {nullptr, nullptr};
  std::size_t host_bytes_[2] = {0, 0};
};

}  // namespace dpt
