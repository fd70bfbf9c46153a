// How workers on one node split its CPUs, and what select_device does with the split; how
// device.precision resolves on CPUs with and without bf16 matmul hardware. The GPU choice:
// device_select_gpu_test.cpp.
#include <gtest/gtest.h>
#include <sched.h>

#include <numeric>

#include "devices/cpu_device.h"
#include "devices/error.h"
#include "launch/device_select.h"

namespace dpt {
namespace {

std::vector<int> range(int first, int count) {
  std::vector<int> v(static_cast<std::size_t>(count));
  std::iota(v.begin(), v.end(), first);
  return v;
}

TEST(CpusForWorker, SplitsIntoContiguousNearlyEqualGroupsCoveringEveryCpu) {
  const std::vector<int> cpus = {0, 1, 2, 3, 8, 9, 10};  // 7 CPUs, not contiguous ids
  std::vector<int> seen;
  for (int rank = 0; rank < 3; ++rank) {
    const std::vector<int> mine = cpus_for_worker(cpus, rank, 3);
    EXPECT_GE(mine.size(), 2u);
    EXPECT_LE(mine.size(), 3u);
    seen.insert(seen.end(), mine.begin(), mine.end());
  }
  EXPECT_EQ(seen, cpus);  // each CPU exactly once, in order
  EXPECT_EQ(cpus_for_worker(range(0, 4), 1, 2), (std::vector<int>{2, 3}));
  EXPECT_EQ(cpus_for_worker(range(0, 4), 0, 1), range(0, 4));
}

TEST(CpusForWorker, FewerCpusThanWorkersGivesNoPinning) {
  EXPECT_TRUE(cpus_for_worker(range(0, 2), 0, 4).empty());
  EXPECT_TRUE(cpus_for_worker(range(0, 2), 3, 4).empty());
}

TEST(SelectDevice, OversubscribedWorkersUseOneThreadEachAndSayWhy) {
  cpu_set_t before;
  ASSERT_EQ(sched_getaffinity(0, sizeof(before), &before), 0);
  WorldInfo world;
  world.size = world.local_size = CPU_COUNT(&before) + 1;  // more workers than CPUs
  world.rank = world.local_rank = 1;
  // Kind CPU: under AUTO a machine with fewer GPUs than these workers would refuse them.
  proto::DeviceConfig config;
  config.set_kind(proto::CPU);
  const DeviceChoice choice = select_device(config, world);
  EXPECT_EQ(static_cast<CpuDevice&>(*choice.device).threads(), 1);
  EXPECT_NE(choice.reason.find("share"), std::string::npos) << choice.reason;
  cpu_set_t after;
  ASSERT_EQ(sched_getaffinity(0, sizeof(after), &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after));  // not pinned
}

TEST(SelectDevice, LauncherBoundWorkersKeepTheirCpus) {
  WorldInfo world;
  world.size = world.local_size = 2;
  world.local_affinity_shared = false;
  proto::DeviceConfig config;
  config.set_kind(proto::CPU);
  const DeviceChoice choice = select_device(config, world);
  EXPECT_NE(choice.reason.find("launcher bound"), std::string::npos) << choice.reason;
}

// dpt bench report selects a device several times in one process: each must get the share the
// first one pinned, not a share of that share (the node's CPUs come from WorldInfo).
TEST(SelectDevice, SelectingAgainGivesTheSameShare) {
  cpu_set_t before;
  ASSERT_EQ(sched_getaffinity(0, sizeof(before), &before), 0);
  if (CPU_COUNT(&before) < 2) GTEST_SKIP() << "needs 2 CPUs to split among 2 workers";
  WorldInfo world;
  world.size = world.local_size = 2;
  world.rank = world.local_rank = 1;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &before)) world.node_cpus.push_back(cpu);
  }
  proto::DeviceConfig config;
  config.set_kind(proto::CPU);
  const DeviceChoice first = select_device(config, world);
  const DeviceChoice second = select_device(config, world);
  cpu_set_t pinned;
  ASSERT_EQ(sched_getaffinity(0, sizeof(pinned), &pinned), 0);
  ASSERT_EQ(sched_setaffinity(0, sizeof(before), &before), 0);  // the other tests get them back
  const int share = static_cast<int>(world.node_cpus.size()) - (world.node_cpus.size() / 2);
  EXPECT_EQ(static_cast<CpuDevice&>(*first.device).threads(), share);
  EXPECT_EQ(static_cast<CpuDevice&>(*second.device).threads(), share) << second.reason;
  EXPECT_EQ(CPU_COUNT(&pinned), share);
  EXPECT_EQ(first.reason, second.reason);
}

CpuInfo cpu_with(std::vector<std::string> features) {
  CpuInfo cpu;
  cpu.model_name = "Test CPU";
  cpu.features = std::move(features);
  return cpu;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ChoosePrecision, AutoPicksBf16WhenTheCpuListsAvx512Bf16OrAmx) {
  const PrecisionChoice zen4 =
      choose_precision(proto::PRECISION_AUTO, cpu_with({"avx2", "avx512f", "avx512_bf16"}));
  EXPECT_EQ(zen4.precision, MatmulPrecision::kBf16);
  EXPECT_TRUE(contains(zen4.reason, "AUTO: the CPU lists avx512_bf16")) << zen4.reason;
  EXPECT_TRUE(contains(zen4.reason, "no AMX")) << zen4.reason;
  const PrecisionChoice sapphire = choose_precision(
      proto::PRECISION_AUTO, cpu_with({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}));
  EXPECT_EQ(sapphire.precision, MatmulPrecision::kBf16);
  EXPECT_TRUE(contains(sapphire.reason, "avx512_bf16, amx_bf16")) << sapphire.reason;
  EXPECT_FALSE(contains(sapphire.reason, "no AMX")) << sapphire.reason;
  EXPECT_EQ(choose_precision(proto::PRECISION_AUTO, cpu_with({"amx_bf16"})).precision,
            MatmulPrecision::kBf16);
}

TEST(ChoosePrecision, AutoKeepsFloat32WithoutBf16HardwareAndSaysWhy) {
  // avx512f alone (Skylake-X) and amx_tile without amx_bf16 do not count.
  const PrecisionChoice choice =
      choose_precision(proto::PRECISION_AUTO, cpu_with({"avx2", "avx512f", "amx_tile"}));
  EXPECT_EQ(choice.precision, MatmulPrecision::kFp32);
  EXPECT_EQ(choice.reason,
            "precision: float32 (AUTO: the CPU lists neither avx512_bf16 nor amx_bf16)");
}

// /proc/cpuinfo lists bf16 but oneDNN cannot run it natively (valgrind's CPUID, AVX-512 state off):
// AUTO stays float32 and BF16 is refused, both naming oneDNN's ISA.
TEST(ChoosePrecision, ListedFeaturesWithoutOneDnnSupportAreNotBf16) {
  const CpuInfo listed = cpu_with({"avx2", "avx512f", "avx512_bf16"});
  const PrecisionChoice choice = choose_precision(proto::PRECISION_AUTO, listed, false);
  EXPECT_EQ(choice.precision, MatmulPrecision::kFp32);
  EXPECT_TRUE(contains(choice.reason, "oneDNN's effective ISA lacks avx512_core_bf16"))
      << choice.reason;
  try {
    choose_precision(proto::BF16, listed, false);
    FAIL() << "expected a config error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_TRUE(contains(e.what(), "oneDNN's effective ISA lacks avx512_core_bf16")) << e.what();
  }
}

// On a GPU the precision line describes the GPU's GEMM format, not the CPU's.
TEST(ChoosePrecision, TheGpuLineNamesTheGpuFormat) {
  EXPECT_TRUE(contains(gpu_precision_reason(proto::PRECISION_AUTO), "float32 on the GPU"));
  EXPECT_TRUE(contains(gpu_precision_reason(proto::TF32), "TF32 tensor-core GEMMs on the GPU"));
  EXPECT_TRUE(contains(gpu_precision_reason(proto::BF16), "bf16 GEMM inputs on the GPU"));
  EXPECT_TRUE(contains(gpu_precision_reason(proto::FP16),
                       "fp16 GEMM inputs on the GPU with float32 accumulation, master weights"))
      << gpu_precision_reason(proto::FP16);
  EXPECT_TRUE(contains(gpu_precision_reason(proto::FP16), "dynamic loss scaling"));
}

TEST(ChoosePrecision, ExplicitChoicesAreHonoured) {
  const CpuInfo bf16_cpu = cpu_with({"avx512_bf16"});
  EXPECT_EQ(choose_precision(proto::FP32, bf16_cpu).precision, MatmulPrecision::kFp32);
  EXPECT_EQ(choose_precision(proto::FP32, bf16_cpu).reason, "precision: float32 (FP32 requested)");
  const PrecisionChoice bf16 = choose_precision(proto::BF16, bf16_cpu);
  EXPECT_EQ(bf16.precision, MatmulPrecision::kBf16);
  EXPECT_TRUE(contains(bf16.reason, "BF16 requested")) << bf16.reason;
  EXPECT_EQ(choose_precision(proto::FP32, cpu_with({})).precision, MatmulPrecision::kFp32);
  // TF32 is a GPU format: the CPU runs float32 (not bf16) and says why.
  const PrecisionChoice tf32 = choose_precision(proto::TF32, bf16_cpu);
  EXPECT_EQ(tf32.precision, MatmulPrecision::kFp32);
  EXPECT_TRUE(contains(tf32.reason, "TF32 applies to CUDA devices only")) << tf32.reason;
}

TEST(ChoosePrecision, Bf16WithoutHardwareIsAConfigErrorNamingFieldAndFeatures) {
  try {
    choose_precision(proto::BF16, cpu_with({"avx2", "avx512f"}));
    FAIL() << "expected a config error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    const std::string message = e.what();
    EXPECT_TRUE(contains(message, "device.precision: BF16 requested")) << message;
    EXPECT_TRUE(contains(message, "neither avx512_bf16 nor amx_bf16")) << message;
    EXPECT_TRUE(contains(message, "Test CPU")) << message;
  }
}

TEST(SelectDevice, PrecisionReachesTheDeviceAndIsExplained) {
  proto::DeviceConfig config;
  config.set_threads(1);
  config.set_precision(proto::FP32);
  DeviceChoice fp32 = select_device(config);
  EXPECT_EQ(static_cast<CpuDevice&>(*fp32.device).matmul_precision(), MatmulPrecision::kFp32);
  EXPECT_EQ(fp32.precision_reason, "precision: float32 (FP32 requested)");
  config.set_precision(proto::BF16);
  if (bf16_features(detect_cpu()).empty()) {
    EXPECT_THROW(select_device(config), Error);
    GTEST_SKIP() << "the CPU lists neither avx512_bf16 nor amx_bf16: BF16 is refused here";
  }
  DeviceChoice bf16 = select_device(config);
  EXPECT_EQ(static_cast<CpuDevice&>(*bf16.device).matmul_precision(), MatmulPrecision::kBf16);
  EXPECT_TRUE(contains(bf16.device->name(), "bf16")) << bf16.device->name();
}

}  // namespace
}  // namespace dpt
