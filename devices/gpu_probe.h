// What the run-time GPU probe found, as data: every CUDA device with its name, memory and compute
// capability, whether dpt can use it, the driver and runtime versions, and when no GPU is usable,
// why (no CUDA support in this build, no driver, a driver older than the runtime, no device,
// compute capability too old, cuBLASLt missing). probe_gpus() fills it on this machine
// (devices/cuda_support.h); tests build fake results to check the decisions made from it
// (launch/device_select.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dpt {

// The oldest compute capability the CUDA code is built for (CMAKE_CUDA_ARCHITECTURES 80;90):
// older GPUs have neither matching SASS nor PTX they could compile.
constexpr int kMinComputeCapability = 80;  // major * 10 + minor

struct GpuInfo {
  int index = 0;  // CUDA ordinal
  std::string name;
  int64_t memory_bytes = 0;
  int compute_major = 0;
  int compute_minor = 0;
  bool usable = true;
  std::string note;          // why it is not usable; empty when it is
  std::string pci_bus_id;    // "0000:3b:00.0"; how NVML finds the same device
  double power_limit_w = 0;  // enforced power limit from NVML; 0: not known, see power_note
  std::string power_note;    // why the power limit is not known
  int compute_capability() const { return compute_major * 10 + compute_minor; }
};

struct GpuProbe {
  std::vector<GpuInfo> gpus;  // every device the driver reports, usable or not
  int driver_version = 0;     // CUDA version the driver supports (13000 = 13.0); 0: no driver
  int runtime_version = 0;    // CUDA runtime linked into dpt; 0: built without CUDA
  std::string reason;         // why no GPU is usable; empty when one is
};

// The usable GPUs of `probe`, in ordinal order.
std::vector<GpuInfo> usable_gpus(const GpuProbe& probe);

// Marks gpu unusable with a note when its compute capability is below kMinComputeCapability.
void check_compute_capability(GpuInfo& gpu);

// Throws dpt::Error (kConfig) "cuda:<index> (<name>) cannot be used: <note>" when `gpu` is not
// usable. CudaDevice checks its GPU with it before queuing anything, so a GPU the kernels are not
// built for (a V100, a T4) fails at device creation with the reason, not with "no kernel image is
// available" at the first launch, whoever creates the device (select_device only offers usable
// GPUs; `dpt bench comm --backend nccl` and tests create theirs directly).
void require_usable_gpu(const GpuInfo& gpu);

// Sets probe.reason from its GPUs when it is empty and none is usable ("no CUDA device",
// "every GPU is too old: ...").
void finish_probe(GpuProbe& probe);

// A library every GPU worker needs (`library`, e.g. "cuBLASLt", loaded with dlopen when a
// CudaDevice is created) failed to load with `load_error`: a GPU is no use without it, so every
// usable GPU becomes unusable (note "<library> cannot be loaded") and probe.reason says
// "cuda:0 (NVIDIA H100) present but <library> cannot be loaded: <load_error>". Kind AUTO then
// trains on the CPU with that reason, kind CUDA fails with it, and `dpt devices` prints it.
// Nothing changes when `load_error` is empty or no GPU is usable.
void require_gpu_library(GpuProbe& probe, const std::string& library,
                         const std::string& load_error);

// 13000 -> "13.0", 12040 -> "12.4"; 0 -> "none".
std::string cuda_version_text(int version);

}  // namespace dpt
