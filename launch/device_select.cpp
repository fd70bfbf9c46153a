// Device selection from the config.
#include "launch/device_select.h"

#include "devices/cpu_device.h"
#include "devices/error.h"

namespace dpt {
namespace {

CpuGemmLibrary gemm_library(proto::CpuGemm choice) {
  switch (choice) {
    case proto::OPENBLAS:
      return CpuGemmLibrary::kOpenBlas;
    case proto::ONEDNN:
    case proto::CPU_GEMM_AUTO:
      return CpuGemmLibrary::kOneDnn;
  }
  return CpuGemmLibrary::kOneDnn;
}

}  // namespace

DeviceChoice select_device(const proto::DeviceConfig& config) {
  DPT_CHECK_AS(ErrorKind::kConfig, config.kind() != proto::CUDA)
      << "device.kind: CUDA requested, but this build has no CUDA support yet; use AUTO or CPU";
  CpuDeviceOptions options;
  options.threads = config.threads();
  options.gemm = gemm_library(config.cpu_gemm());
  DeviceChoice choice;
  choice.device = std::make_unique<CpuDevice>(options);
  choice.reason = "device: " + choice.device->name() +
                  (config.kind() == proto::AUTO
                       ? "; kind AUTO fell back to the CPU: this build has no CUDA support"
                       : "; kind CPU requested");
  return choice;
}

}  // namespace dpt
