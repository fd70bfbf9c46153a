// devices/gpu_power.h.
#include "devices/gpu_power.h"

#include <string>

namespace dpt {
namespace {

std::string nvml_text(const NvmlApi& api, const char* call, int code) {
  const char* text = api.error_string ? api.error_string(code) : nullptr;
  return std::string(call) + " failed: " + (text ? text : "error " + std::to_string(code));
}

}  // namespace

void read_power_limits(GpuProbe& probe, const NvmlApi& api) {
  std::string common;
  if (!api.error.empty()) {
    common = api.error;
  } else if (api.handle_by_pci_bus_id == nullptr || api.power_limit == nullptr) {
    common = "this NVML has no nvmlDeviceGetHandleByPciBusId_v2 / nvmlDeviceGetEnforcedPowerLimit";
  } else if (const int rc = api.init(); rc != 0) {
    common = nvml_text(api, "nvmlInit_v2", rc);
  }
  for (GpuInfo& gpu : probe.gpus) {
    if (!common.empty()) {
      gpu.power_note = common;
      continue;
    }
    NvmlApi::Device device = nullptr;
    unsigned milliwatts = 0;
    if (const int rc = api.handle_by_pci_bus_id(gpu.pci_bus_id.c_str(), &device); rc != 0) {
      gpu.power_note = nvml_text(api, "nvmlDeviceGetHandleByPciBusId_v2", rc);
    } else if (const int rc2 = api.power_limit(device, &milliwatts); rc2 != 0) {
      gpu.power_note = nvml_text(api, "nvmlDeviceGetEnforcedPowerLimit", rc2);
    } else {
      gpu.power_limit_w = milliwatts / 1000.0;
    }
  }
  if (common.empty()) api.shutdown();
}

}  // namespace dpt
