// Host copies of device tensors and host-staged broadcasts.
#include "launch/device_transfer.h"

#include <cstring>
#include <map>
#include <unordered_map>

#include "devices/cpu_device.h"
#include "devices/error.h"

namespace dpt {
namespace {

// Work on host memory is finished when its call returns.
class HostEvent : public DeviceEvent {
 public:
  void record() override {}
  void wait() override {}
};

// Page-locked host memory of `device`, presented as a CPU-kind Device so that host tensors
// (which gather_batch fills) can live in it. Its memory is not counted: it is not the model's.
// With keep_freed, freed blocks wait in `kept_` for an allocation of the same size and are
// returned to `device` only when this goes (cudaHostAlloc takes milliseconds).
class PinnedHost : public Device {
 public:
  PinnedHost(Device& device, bool keep_freed) : device_(device), keep_freed_(keep_freed) {}
  ~PinnedHost() override {
    for (auto& [bytes, ptr] : kept_) device_.deallocate_host(ptr);
  }
  DeviceKind kind() const override { return DeviceKind::kCpu; }
  int index() const override { return 0; }
  std::string name() const override { return "page-locked host memory of " + device_.name(); }
  void* allocate(std::size_t bytes) override {
    if (!keep_freed_) return device_.allocate_host(bytes);
    void* ptr = nullptr;
    const auto kept = kept_.find(bytes);
    if (kept != kept_.end()) {
      ptr = kept->second;
      kept_.erase(kept);
    } else {
      ptr = device_.allocate_host(bytes);
    }
    sizes_[ptr] = bytes;
    return ptr;
  }
  void deallocate(void* ptr) noexcept override {
    const auto size = sizes_.find(ptr);
    if (size == sizes_.end()) {
      device_.deallocate_host(ptr);
      return;
    }
    kept_.emplace(size->second, ptr);
    sizes_.erase(size);
  }
  MemoryCounters memory_counters() const override { return {}; }
  void reset_peak() override {}
  void copy(void* dst, const void* src, std::size_t bytes) override {
    if (bytes > 0) std::memcpy(dst, src, bytes);
  }
  void copy_from_host(void* dst, const void* src, std::size_t bytes) override {
    copy(dst, src, bytes);
  }
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override {
    copy(dst, src, bytes);
  }
  void* allocate_host(std::size_t bytes) override { return allocate(bytes); }
  void deallocate_host(void* ptr) noexcept override { deallocate(ptr); }
  void copy_from_host_async(void* dst, const void* src, std::size_t bytes) override {
    copy(dst, src, bytes);
  }
  void copy_to_host_async(void* dst, const void* src, std::size_t bytes) override {
    copy(dst, src, bytes);
  }
  std::unique_ptr<DeviceEvent> create_event() override { return std::make_unique<HostEvent>(); }
  std::unique_ptr<CopyQueue> create_copy_queue() override { return make_immediate_copy_queue(); }
  void zero(void* ptr, std::size_t bytes) override {
    if (bytes > 0) std::memset(ptr, 0, bytes);
  }
  void synchronize() override {}

 private:
  Device& device_;
  bool keep_freed_;
  std::unordered_map<void*, std::size_t> sizes_;  // keep_freed: blocks in use -> bytes
  std::multimap<std::size_t, void*> kept_;        // keep_freed: freed blocks by size
};

}  // namespace

std::unique_ptr<Device> make_pinned_host(Device& device, bool keep_freed) {
  return std::make_unique<PinnedHost>(device, keep_freed);
}

std::vector<float> to_host(const Tensor& tensor) {
  DPT_CHECK(tensor.dtype() == DType::kF32)
      << "to_host: a " << dtype_name(tensor.dtype()) << " tensor, not float32";
  std::vector<float> values(static_cast<std::size_t>(tensor.numel()));
  tensor.device().copy_to_host(values.data(), tensor.raw(), tensor.bytes());
  return values;
}

void from_host(const Tensor& tensor, const float* values) {
  DPT_CHECK(tensor.dtype() == DType::kF32)
      << "from_host: a " << dtype_name(tensor.dtype()) << " tensor, not float32";
  tensor.device().copy_from_host(tensor.raw(), values, tensor.bytes());
}

void broadcast_tensor(Communicator& comm, const Tensor& tensor, int root) {
  const std::size_t count = static_cast<std::size_t>(tensor.numel());
  if (tensor.device().kind() == DeviceKind::kCpu || comm.device_memory()) {
    // A device-memory communicator orders its collectives after the work queued on the device.
    comm.broadcast(tensor.raw(), count, DType::kF32, root);
    return;
  }
  std::vector<float> values =
      comm.rank() == root ? to_host(tensor) : std::vector<float>(count, 0.0f);
  comm.broadcast(values.data(), count, DType::kF32, root);
  if (comm.rank() != root) from_host(tensor, values.data());
}

}  // namespace dpt
