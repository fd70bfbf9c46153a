// Datasheet peak throughput of NVIDIA GPUs, keyed by the name the CUDA runtime reports
// ("NVIDIA H100 80GB HBM3"), for the model FLOP utilisation (MFU) of `dpt bench step` on a GPU,
// as llm.c does. Dense (no 2:4 sparsity) tensor-core peaks at boost clock from NVIDIA's product
// datasheets; a GPU not in the table gets no peak and a reason, never a guess.
#pragma once

#include <string>

namespace dpt {

// TFLOP/s, dense.
struct GpuPeakTflops {
  double fp32 = 0;  // CUDA cores, no tensor cores
  double tf32 = 0;  // tensor cores
  double bf16 = 0;  // tensor cores, float32 accumulate
  double fp16 = 0;  // tensor cores, float32 accumulate
};

struct GpuPeak {
  bool known = false;
  std::string product;  // the datasheet's product, e.g. "H100 SXM"
  GpuPeakTflops tflops;
  std::string reason;  // when !known: why there is no peak
};

// The peak of the GPU named `device_name` (cudaDeviceProp::name). Matching is by product
// (e.g. "H100 PCIe" before "H100", "L40S" apart from "L4", "A100" apart from "A10").
GpuPeak gpu_peak(const std::string& device_name);

}  // namespace dpt
