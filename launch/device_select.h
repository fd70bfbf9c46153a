// Picks the Device a worker owns from device { kind threads cpu_gemm } and says why, e.g.
// "device: cpu (AMD EPYC, 2 threads, oneDNN sgemm); kind AUTO found no usable GPU: this build
// has no CUDA support". CUDA arrives with the CUDA devices issue.
#pragma once

#include <memory>
#include <string>

#include "core/config.pb.h"
#include "devices/device.h"

namespace dpt {

struct DeviceChoice {
  std::unique_ptr<Device> device;
  std::string reason;  // one line: what was chosen and why
};

// Throws kConfig when the config asks for a device kind this build or machine cannot provide.
DeviceChoice select_device(const proto::DeviceConfig& config);

}  // namespace dpt
