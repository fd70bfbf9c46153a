// The GPU peak table (devices/gpu_peak.h). Figures: NVIDIA datasheets, dense tensor-core
// TFLOP/s (the datasheets print 2:4-sparse figures for TF32/BF16/FP16 on Hopper and Ada; these
// are half of those).
#include "devices/gpu_peak.h"

namespace dpt {
namespace {

struct Entry {
  const char* pattern;  // a substring of the device name, or the whole name when `exact`
  bool exact;
  const char* product;
  GpuPeakTflops tflops;
};

// First match wins: more specific names come first.
constexpr Entry kTable[] = {
    {"GH200", false, "GH200 (H100 SXM compute)", {67, 494.5, 989.5, 989.5}},
    {"H200 NVL", false, "H200 NVL", {60, 417.5, 835.5, 835.5}},
    {"H200", false, "H200 SXM", {67, 494.5, 989.5, 989.5}},
    {"H100 NVL", false, "H100 NVL", {60, 417.5, 835.5, 835.5}},
    {"H100 PCIe", false, "H100 PCIe", {51, 378, 756.5, 756.5}},
    {"H100 80GB HBM3", false, "H100 SXM", {67, 494.5, 989.5, 989.5}},
    {"H100 SXM", false, "H100 SXM", {67, 494.5, 989.5, 989.5}},
    {"A100", false, "A100", {19.5, 156, 312, 312}},
    {"L40S", false, "L40S", {91.6, 183, 362, 362}},
    {"NVIDIA L4", true, "L4", {30.3, 60, 121, 121}},
    {"NVIDIA A10", true, "A10", {31.2, 62.5, 125, 125}},
};

}  // namespace

GpuPeak gpu_peak(const std::string& device_name) {
  GpuPeak peak;
  for (const Entry& e : kTable) {
    const bool match =
        e.exact ? device_name == e.pattern : device_name.find(e.pattern) != std::string::npos;
    if (!match) continue;
    peak.known = true;
    peak.product = e.product;
    peak.tflops = e.tflops;
    return peak;
  }
  peak.reason = "\"" + device_name +
                "\" is not in dpt's datasheet table (devices/gpu_peak.cpp): H100, H200, GH200, "
                "A100, L40S, L4, A10";
  return peak;
}

}  // namespace dpt
