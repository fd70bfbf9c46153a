// Tests for devices/cpu_device: 64-byte alignment and the allocation counters `dpt tune` measures
// with (each block counts its size rounded up to 64 bytes plus one 64-byte header).
#include "devices/cpu_device.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace dpt {
namespace {

TEST(CpuDeviceTest, CountsCurrentAndPeakBytes) {
  CpuDevice device(CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn});
  EXPECT_EQ(device.memory_counters().current_bytes, 0);
  void* a = device.allocate(100);  // 128 + 64
  void* b = device.allocate(64);   // 64 + 64
  void* c = device.allocate(0);    // 0 + 64
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b) % 64, 0u);
  EXPECT_EQ(device.memory_counters().current_bytes, 192 + 128 + 64);
  device.deallocate(a);
  EXPECT_EQ(device.memory_counters().current_bytes, 128 + 64);
  EXPECT_EQ(device.memory_counters().peak_bytes, 192 + 128 + 64);
  device.reset_peak();
  EXPECT_EQ(device.memory_counters().peak_bytes, 128 + 64);
  void* d = device.allocate(1000);  // 1024 + 64
  device.deallocate(d);
  EXPECT_EQ(device.memory_counters().peak_bytes, 128 + 64 + 1088);
  device.deallocate(b);
  device.deallocate(c);
  device.deallocate(nullptr);
  EXPECT_EQ(device.memory_counters().current_bytes, 0);
}

}  // namespace
}  // namespace dpt
