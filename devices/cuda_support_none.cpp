// devices/cuda_support.h for builds without CUDA (DPT_WITH_CUDA=OFF): there is never a GPU.
#include "devices/cuda_support.h"

#include "devices/error.h"

namespace dpt {

GpuProbe probe_gpus() {
  GpuProbe probe;
  probe.reason = "this build has no CUDA support (built with DPT_WITH_CUDA=OFF)";
  return probe;
}

std::unique_ptr<Device> make_cuda_device(int ordinal) {
  DPT_THROW(ErrorKind::kConfig) << "cuda:" << ordinal
                                << ": this build has no CUDA support (DPT_WITH_CUDA=OFF)";
}

}  // namespace dpt
