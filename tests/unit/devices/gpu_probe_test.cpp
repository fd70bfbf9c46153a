// The pure rules of the GPU probe: compute capability floor (and CudaDevice's refusal of an old
// GPU), the reason when no GPU is usable, a missing cuBLASLt, version texts; and that probing this
// machine answers (GPUs or a reason) without throwing.
#include "devices/gpu_probe.h"

#include <gtest/gtest.h>

#include "devices/cuda_support.h"
#include "expect_error.h"

namespace dpt {
namespace {

using testing::expect_error;

GpuInfo gpu(int index, const char* name, int major, int minor) {
  GpuInfo info;
  info.index = index;
  info.name = name;
  info.compute_major = major;
  info.compute_minor = minor;
  check_compute_capability(info);
  return info;
}

TEST(GpuProbe, ComputeCapabilityBelow80IsNotUsable) {
  EXPECT_TRUE(gpu(0, "A100", 8, 0).usable);
  EXPECT_TRUE(gpu(0, "H100", 9, 0).usable);
  EXPECT_TRUE(gpu(0, "B200", 10, 0).usable);
  const GpuInfo v100 = gpu(0, "V100", 7, 0);
  EXPECT_FALSE(v100.usable);
  EXPECT_EQ(v100.note, "compute capability 7.0 is too old: dpt is built for 8.0 and newer");
  EXPECT_FALSE(gpu(0, "T4", 7, 5).usable);
}

TEST(GpuProbe, ReasonSaysWhyNoGpuIsUsable) {
  GpuProbe none;
  finish_probe(none);
  EXPECT_EQ(none.reason, "no CUDA device found");

  GpuProbe old;
  old.gpus = {gpu(0, "T4", 7, 5), gpu(1, "V100", 7, 0)};
  finish_probe(old);
  EXPECT_TRUE(usable_gpus(old).empty());
  EXPECT_NE(old.reason.find("cuda:0 T4: compute capability 7.5 is too old"), std::string::npos)
      << old.reason;
  EXPECT_NE(old.reason.find("cuda:1 V100"), std::string::npos) << old.reason;

  GpuProbe mixed;
  mixed.gpus = {gpu(0, "T4", 7, 5), gpu(1, "A100", 8, 0)};
  finish_probe(mixed);
  EXPECT_TRUE(mixed.reason.empty());
  ASSERT_EQ(usable_gpus(mixed).size(), 1u);
  EXPECT_EQ(usable_gpus(mixed)[0].index, 1);

  GpuProbe no_driver;
  no_driver.reason = "no NVIDIA driver";
  finish_probe(no_driver);
  EXPECT_EQ(no_driver.reason, "no NVIDIA driver");  // kept
}

// cuBLASLt missing: the GPUs the driver offers are of no use, and the probe says so.
TEST(GpuProbe, AMissingGpuLibraryMakesEveryUsableGpuUnusableWithTheReason) {
  GpuProbe probe;
  probe.gpus = {gpu(0, "T4", 7, 5), gpu(1, "H100", 9, 0), gpu(2, "H100", 9, 0)};
  finish_probe(probe);
  require_gpu_library(probe, "cuBLASLt", "");  // it loaded: nothing changes
  EXPECT_EQ(usable_gpus(probe).size(), 2u);
  EXPECT_TRUE(probe.reason.empty());

  const std::string load_error = "cuBLASLt: cannot load (libcublasLt.so.13: not found)";
  require_gpu_library(probe, "cuBLASLt", load_error);
  finish_probe(probe);
  EXPECT_TRUE(usable_gpus(probe).empty());
  EXPECT_EQ(probe.reason,
            "cuda:1 (H100), cuda:2 (H100) present but cuBLASLt cannot be loaded: " + load_error);
  EXPECT_EQ(probe.gpus[1].note, "cuBLASLt cannot be loaded");
  EXPECT_NE(probe.gpus[0].note.find("too old"), std::string::npos);  // its own reason kept

  // No usable GPU to begin with: the probe's own reason stays.
  GpuProbe old;
  old.gpus = {gpu(0, "T4", 7, 5)};
  finish_probe(old);
  const std::string too_old = old.reason;
  require_gpu_library(old, "cuBLASLt", load_error);
  EXPECT_EQ(old.reason, too_old);
}

// What CudaDevice checks before queuing anything on its GPU: a GPU the kernels are not built for
// is a config error naming it and why, not "no kernel image is available" at the first launch.
TEST(GpuProbe, RequireUsableGpuRefusesAnOldGpuWithItsReason) {
  EXPECT_NO_THROW(require_usable_gpu(gpu(0, "H100", 9, 0)));
  EXPECT_NO_THROW(require_usable_gpu(gpu(1, "A10", 8, 6)));
  expect_error([] { require_usable_gpu(gpu(2, "Tesla T4", 7, 5)); }, ErrorKind::kConfig,
               "cuda:2 (Tesla T4) cannot be used: compute capability 7.5 is too old: dpt is "
               "built for 8.0 and newer");
  GpuInfo no_library = gpu(0, "H100", 9, 0);
  no_library.usable = false;
  no_library.note = "cuBLASLt cannot be loaded";
  expect_error([&] { require_usable_gpu(no_library); }, ErrorKind::kConfig,
               "cuda:0 (H100) cannot be used: cuBLASLt cannot be loaded");
}

TEST(GpuProbe, VersionText) {
  EXPECT_EQ(cuda_version_text(13000), "13.0");
  EXPECT_EQ(cuda_version_text(12040), "12.4");
  EXPECT_EQ(cuda_version_text(0), "none");
}

TEST(GpuProbe, ProbingThisMachineAnswers) {
  const GpuProbe probe = probe_gpus();
  EXPECT_TRUE(!usable_gpus(probe).empty() || !probe.reason.empty());
}

}  // namespace
}  // namespace dpt
