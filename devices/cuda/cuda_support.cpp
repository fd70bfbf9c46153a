// devices/cuda_support.h with CUDA: the run-time probe over the statically linked CUDA runtime
// (which loads libcuda.so.1 at the first call and reports its absence as an error code, not a
// load failure) and the CudaDevice factory. The probe also loads cuBLASLt once (dlopen, no GPU
// work) when a GPU is usable, so a missing libcublasLt makes the GPUs unusable with its reason
// instead of failing later when the CudaDevice is created.
#include "devices/cuda_support.h"

#include <cuda_runtime_api.h>
#include <cstdio>

#include <string>

#include "devices/cuda/cublaslt_library.h"
#include "devices/cuda/cuda_device.h"
#include "devices/error.h"

namespace dpt {
namespace {

std::string cuda_error_text(cudaError_t status) {
  return std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
}

// Why cuBLASLt cannot be loaded (CudaDevice loads it the same way), or "" when it can.
std::string cublaslt_load_error() {
  try {
    const CublasLtLibrary library;
    return "";
  } catch (const Error& error) {
    return error.what();
  }
}

}  // namespace

GpuProbe probe_gpus() {
  GpuProbe probe;
  cudaRuntimeGetVersion(&probe.runtime_version);
  if (cudaDriverGetVersion(&probe.driver_version) != cudaSuccess) probe.driver_version = 0;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    const std::string runtime = cuda_version_text(probe.runtime_version);
    if (probe.driver_version == 0) {
      probe.reason = "no NVIDIA driver (libcuda.so.1 not found or not loadable; " +
                     cuda_error_text(status) + ")";
    } else if (status == cudaErrorInsufficientDriver) {
      probe.reason = "the NVIDIA driver supports CUDA " + cuda_version_text(probe.driver_version) +
                     ", older than the CUDA " + runtime + " runtime dpt was built with (" +
                     cuda_error_text(status) + ")";
    } else if (status == cudaErrorNoDevice) {
      probe.reason = "no CUDA device found (" + cuda_error_text(status) + ")";
    } else {
      probe.reason = "CUDA initialisation failed (" + cuda_error_text(status) + ")";
    }
    return probe;
  }
  for (int i = 0; i < count; ++i) {
    GpuInfo gpu;
    gpu.index = i;
    cudaDeviceProp prop{};
    const cudaError_t prop_status = cudaGetDeviceProperties(&prop, i);
    if (prop_status != cudaSuccess) {
      cudaGetLastError();
      gpu.usable = false;
      gpu.name = "unknown";
      gpu.note = "cannot read its properties (" + cuda_error_text(prop_status) + ")";
    } else {
      gpu.name = prop.name;
      gpu.memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
      gpu.compute_major = prop.major;
      gpu.compute_minor = prop.minor;
      char bus_id[32];
      std::snprintf(bus_id, sizeof bus_id, "%04x:%02x:%02x.0", prop.pciDomainID, prop.pciBusID,
                    prop.pciDeviceID);
      gpu.pci_bus_id = bus_id;
      check_compute_capability(gpu);
    }
    probe.gpus.push_back(gpu);
  }
  if (!usable_gpus(probe).empty()) require_gpu_library(probe, "cuBLASLt", cublaslt_load_error());
  finish_probe(probe);
  return probe;
}

std::unique_ptr<Device> make_cuda_device(int ordinal) {
  return std::make_unique<CudaDevice>(ordinal);
}

}  // namespace dpt
