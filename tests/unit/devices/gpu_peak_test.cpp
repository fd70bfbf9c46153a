// gpu_peak: device names as the CUDA runtime reports them map to the right datasheet product
// (more specific names first; L4 vs L40S, A10 vs A100, GH200 vs H200), unknown names get a reason.
#include "devices/gpu_peak.h"

#include <gtest/gtest.h>

namespace dpt {
namespace {

TEST(GpuPeakTest, NamesMapToTheirProduct) {
  struct Case {
    const char* name;
    const char* product;
    double bf16, tf32, fp32;
  };
  for (const Case& c :
       {Case{"NVIDIA H100 80GB HBM3", "H100 SXM", 989.5, 494.5, 67},
        Case{"NVIDIA H100 PCIe", "H100 PCIe", 756.5, 378, 51},
        Case{"NVIDIA H100 NVL", "H100 NVL", 835.5, 417.5, 60},
        Case{"NVIDIA H200", "H200 SXM", 989.5, 494.5, 67},
        Case{"NVIDIA H200 NVL", "H200 NVL", 835.5, 417.5, 60},
        Case{"NVIDIA GH200 480GB", "GH200 (H100 SXM compute)", 989.5, 494.5, 67},
        Case{"NVIDIA A100-SXM4-80GB", "A100", 312, 156, 19.5},
        Case{"NVIDIA A100 80GB PCIe", "A100", 312, 156, 19.5},
        Case{"NVIDIA L40S", "L40S", 362, 183, 91.6}, Case{"NVIDIA L4", "L4", 121, 60, 30.3},
        Case{"NVIDIA A10", "A10", 125, 62.5, 31.2}}) {
    const GpuPeak peak = gpu_peak(c.name);
    ASSERT_TRUE(peak.known) << c.name;
    EXPECT_EQ(peak.product, c.product) << c.name;
    EXPECT_EQ(peak.tflops.bf16, c.bf16) << c.name;
    EXPECT_EQ(peak.tflops.fp16, c.bf16) << c.name;
    EXPECT_EQ(peak.tflops.tf32, c.tf32) << c.name;
    EXPECT_EQ(peak.tflops.fp32, c.fp32) << c.name;
    EXPECT_TRUE(peak.reason.empty());
  }
}

TEST(GpuPeakTest, UnknownNamesHaveNoPeakAndAReason) {
  for (const char* name : {"NVIDIA GeForce RTX 4090", "NVIDIA L40", "NVIDIA A10G", "", "H100?"}) {
    const GpuPeak peak = gpu_peak(name);
    EXPECT_FALSE(peak.known) << name;
    EXPECT_EQ(peak.tflops.bf16, 0.0) << name;
    EXPECT_NE(peak.reason.find("not in dpt's datasheet table"), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace dpt
