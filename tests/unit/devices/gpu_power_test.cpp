// GPU power limits from NVML, on fake NVML functions: matched by PCI bus id, converted from mW,
// and a reason (never a number) when NVML cannot tell.
#include "devices/gpu_power.h"

#include <gtest/gtest.h>

#include <cstring>

namespace dpt {
namespace {

int g_init_rc = 0;
int g_shutdowns = 0;
int fake_init() { return g_init_rc; }
int fake_shutdown() { return ++g_shutdowns, 0; }
const char* fake_error(int code) { return code == 3 ? "Not Supported" : "Uninitialized"; }
// Two boards: 0000:3b:00.0 (700 W) and 0000:86:00.0 (no power management: NOT_SUPPORTED = 3).
int g_boards[2];
int fake_by_bus(const char* bus, NvmlApi::Device* device) {
  if (std::strcmp(bus, "0000:3b:00.0") == 0) return *device = &g_boards[0], 0;
  if (std::strcmp(bus, "0000:86:00.0") == 0) return *device = &g_boards[1], 0;
  return 6;  // NOT_FOUND
}
int fake_limit(NvmlApi::Device device, unsigned* milliwatts) {
  if (device != &g_boards[0]) return 3;
  *milliwatts = 700000;
  return 0;
}

NvmlApi fake_api() {
  NvmlApi api;
  api.init = fake_init;
  api.shutdown = fake_shutdown;
  api.error_string = fake_error;
  api.handle_by_pci_bus_id = fake_by_bus;
  api.power_limit = fake_limit;
  return api;
}

GpuProbe two_gpus() {
  GpuProbe probe;
  probe.gpus.resize(2);
  // CUDA's order (fastest first) need not be NVML's: the bus ids decide.
  probe.gpus[0].pci_bus_id = "0000:86:00.0";
  probe.gpus[1].pci_bus_id = "0000:3b:00.0";
  return probe;
}

TEST(GpuPower, LimitsAreMatchedByPciBusIdAndReadInWatts) {
  g_init_rc = 0;
  g_shutdowns = 0;
  GpuProbe probe = two_gpus();
  read_power_limits(probe, fake_api());
  EXPECT_EQ(probe.gpus[1].power_limit_w, 700.0);
  EXPECT_TRUE(probe.gpus[1].power_note.empty());
  EXPECT_EQ(probe.gpus[0].power_limit_w, 0.0);
  EXPECT_EQ(probe.gpus[0].power_note, "nvmlDeviceGetEnforcedPowerLimit failed: Not Supported");
  EXPECT_EQ(g_shutdowns, 1);
}

TEST(GpuPower, NoNvmlOrAFailedInitGivesEveryGpuTheReason) {
  GpuProbe probe = two_gpus();
  NvmlApi missing;
  missing.error = "NVML not found (libnvidia-ml.so.1: cannot open shared object file)";
  read_power_limits(probe, missing);
  for (const GpuInfo& gpu : probe.gpus) {
    EXPECT_EQ(gpu.power_limit_w, 0.0);
    EXPECT_EQ(gpu.power_note, missing.error);
  }
  g_init_rc = 1;
  g_shutdowns = 0;
  probe = two_gpus();
  read_power_limits(probe, fake_api());
  EXPECT_EQ(probe.gpus[1].power_note, "nvmlInit_v2 failed: Uninitialized");
  EXPECT_EQ(g_shutdowns, 0) << "no shutdown without a successful init";
  NvmlApi old = fake_api();
  old.power_limit = nullptr;
  g_init_rc = 0;
  probe = two_gpus();
  read_power_limits(probe, old);
  EXPECT_NE(probe.gpus[0].power_note.find("nvmlDeviceGetEnforcedPowerLimit"), std::string::npos);
}

}  // namespace
}  // namespace dpt
