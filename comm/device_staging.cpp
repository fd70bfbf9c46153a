// DeviceStaging: page-locked host buffers grown on demand, copies fenced by one event.
#include "comm/device_staging.h"

#include "devices/error.h"

namespace dpt {

DeviceStaging::DeviceStaging(Device& device) : device_(device), done_(device.create_event()) {}

DeviceStaging::~DeviceStaging() {
  for (char* buffer : host_) {
    if (buffer != nullptr) device_.deallocate_host(buffer);
  }
}

char* DeviceStaging::host(std::size_t bytes, int slot) {
  DPT_CHECK(slot == 0 || slot == 1) << "device staging: no host buffer " << slot;
  if (bytes > host_bytes_[slot]) {
    if (host_[slot] != nullptr) device_.deallocate_host(host_[slot]);
    host_[slot] = nullptr;
    host_bytes_[slot] = 0;
    host_[slot] = static_cast<char*>(device_.allocate_host(bytes));
    host_bytes_[slot] = bytes;
  }
  return host_[slot];
}

char* DeviceStaging::to_host(const void* src, std::size_t bytes, int slot) {
  char* buffer = host(bytes, slot);
  if (bytes == 0) return buffer;
  device_.copy_to_host_async(buffer, src, bytes);
  fence();
  return buffer;
}

void DeviceStaging::to_device(void* dst, const void* host_src, std::size_t bytes) {
  if (bytes == 0) return;
  device_.copy_from_host_async(dst, host_src, bytes);
  fence();
}

void DeviceStaging::fence() {
  done_->record();
  done_->wait();
}

}  // namespace dpt
