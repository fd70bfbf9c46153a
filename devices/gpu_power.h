// The enforced power limit of each probed GPU, read from NVML (loaded at run time,
// devices/energy.h) and matched to the CUDA device by PCI bus id (CUDA's and NVML's orderings may
// differ). Where NVML cannot say, the GPU keeps power_limit_w 0 and power_note says why.
#pragma once

#include "devices/energy.h"
#include "devices/gpu_probe.h"

namespace dpt {

// Fills power_limit_w (or power_note) for every GPU of `probe` through `api`.
void read_power_limits(GpuProbe& probe, const NvmlApi& api);

}  // namespace dpt
