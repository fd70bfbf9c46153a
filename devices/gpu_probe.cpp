// The pure parts of the GPU probe (devices/gpu_probe.h): usability rules and texts, shared by the
// CUDA probe and by builds without CUDA.
#include "devices/gpu_probe.h"

#include <string>

#include "devices/error.h"

namespace dpt {

std::vector<GpuInfo> usable_gpus(const GpuProbe& probe) {
  std::vector<GpuInfo> usable;
  for (const GpuInfo& gpu : probe.gpus) {
    if (gpu.usable) usable.push_back(gpu);
  }
  return usable;
}

void check_compute_capability(GpuInfo& gpu) {
  if (gpu.compute_capability() >= kMinComputeCapability) return;
  gpu.usable = false;
  gpu.note = "compute capability " + std::to_string(gpu.compute_major) + "." +
             std::to_string(gpu.compute_minor) + " is too old: dpt is built for " +
             std::to_string(kMinComputeCapability / 10) + "." +
             std::to_string(kMinComputeCapability % 10) + " and newer";
}

void require_usable_gpu(const GpuInfo& gpu) {
  DPT_CHECK_AS(ErrorKind::kConfig, gpu.usable)
      << "cuda:" << gpu.index << " (" << gpu.name << ") cannot be used: " << gpu.note;
}

void finish_probe(GpuProbe& probe) {
  if (!probe.reason.empty() || !usable_gpus(probe).empty()) return;
  if (probe.gpus.empty()) {
    probe.reason = "no CUDA device found";
    return;
  }
  std::string notes;
  for (const GpuInfo& gpu : probe.gpus) {
    notes += (notes.empty() ? "" : "; ") +
             ("cuda:" + std::to_string(gpu.index) + " " + gpu.name + ": " + gpu.note);
  }
  probe.reason = "no usable GPU (" + notes + ")";
}

void require_gpu_library(GpuProbe& probe, const std::string& library,
                         const std::string& load_error) {
  if (load_error.empty()) return;
  std::string present;
  for (GpuInfo& gpu : probe.gpus) {
    if (!gpu.usable) continue;
    gpu.usable = false;
    gpu.note = library + " cannot be loaded";
    present += (present.empty() ? "" : ", ") +
               ("cuda:" + std::to_string(gpu.index) + " (" + gpu.name + ")");
  }
  if (present.empty()) return;
  probe.reason = present + " present but " + library + " cannot be loaded: " + load_error;
}

std::string cuda_version_text(int version) {
  if (version <= 0) return "none";
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

}  // namespace dpt
