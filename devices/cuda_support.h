// The two entry points into CUDA that the rest of dpt uses, so that it builds and runs the same
// with or without CUDA: devices/cuda/cuda_support.cpp implements them when DPT_WITH_CUDA is on,
// devices/cuda_support_none.cpp when it is off.
#pragma once

#include <memory>

#include "devices/device.h"
#include "devices/gpu_probe.h"

namespace dpt {

// Looks for GPUs at run time. Never throws and never fails to load: without the NVIDIA driver,
// without a device, without a loadable cuBLASLt (require_gpu_library) or without CUDA in this
// build it returns no usable GPU and the reason.
GpuProbe probe_gpus();

// The Device for GPU `ordinal` (a CudaDevice: its own stream, caching memory pool and cuBLASLt
// handle). Throws dpt::Error (kConfig) when this build has no CUDA support or the GPU cannot be
// used, naming the GPU and the reason.
std::unique_ptr<Device> make_cuda_device(int ordinal);

}  // namespace dpt
