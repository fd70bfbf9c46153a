// A test double for CPU-only machines: a Device that reports DeviceKind::kCuda but keeps its
// memory on the host and counts its copies. Code that branches on device.kind() takes its GPU
// path with it, so tests can check which copies Tensor makes and that the GPU ops are reached
// (devices/gpu_ops.h refuses it cleanly: it is not a CudaDevice). Never runs a kernel.
#pragma once

#include <cstdlib>
#include <cstring>
#include <string>

#include "devices/device.h"

namespace dpt::testing {

class FakeGpuDevice : public Device {
 public:
  DeviceKind kind() const override { return DeviceKind::kCuda; }
  int index() const override { return 0; }
  std::string name() const override { return "fake-cuda:0 (host memory)"; }
  void* allocate(std::size_t bytes) override {
    return std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
  }
  void deallocate(void* ptr) noexcept override { std::free(ptr); }
  MemoryCounters memory_counters() const override { return {}; }
  void reset_peak() override {}
  void copy(void* dst, const void* src, std::size_t bytes) override {
    ++copies;
    std::memcpy(dst, src, bytes);
  }
  void copy_from_host(void* dst, const void* host_src, std::size_t bytes) override {
    ++from_host;
    std::memcpy(dst, host_src, bytes);
  }
  void copy_to_host(void* host_dst, const void* src, std::size_t bytes) override {
    ++to_host;
    std::memcpy(host_dst, src, bytes);
  }
  void zero(void* ptr, std::size_t bytes) override { std::memset(ptr, 0, bytes); }
  void synchronize() override {}

  int copies = 0;     // device-to-device copies
  int from_host = 0;  // copy_from_host calls
  int to_host = 0;    // copy_to_host calls
};

}  // namespace dpt::testing
