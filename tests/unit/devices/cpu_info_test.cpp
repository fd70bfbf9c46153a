// devices/cpu_info.h against fixtures: /proc/cpuinfo of an AMD EPYC Zen 4 and an Intel Sapphire
// Rapids, a /proc/meminfo sample, and a fake sysfs tree (2 sockets x 2 cores x 2 threads, 2 NUMA
// nodes, caches) built in a temporary directory.
#include "devices/cpu_info.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "devices/error.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;

// Two processors each, flags abridged from real machines (Zen 4: no AMX; SPR: AMX).
const char kZen4[] = R"(processor	: 0
vendor_id	: AuthenticAMD
cpu family	: 25
model		: 17
model name	: AMD EPYC 9654 96-Core Processor
flags		: fpu vme sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512vbmi avx512_vnni avx512_bitalg
bogomips	: 4792.79

processor	: 1
vendor_id	: AuthenticAMD
cpu family	: 25
model		: 17
model name	: AMD EPYC 9654 96-Core Processor
flags		: fpu vme sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512vbmi avx512_vnni avx512_bitalg
bogomips	: 4792.79
)";

const char kSapphireRapids[] = R"(processor	: 0
vendor_id	: GenuineIntel
cpu family	: 6
model		: 143
model name	: Intel(R) Xeon(R) Platinum 8480+
flags		: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512bw avx512vl avx_vnni avx512_bf16 avx512_vnni amx_bf16 avx512_fp16 amx_tile amx_int8

processor	: 1
vendor_id	: GenuineIntel
cpu family	: 6
model		: 143
model name	: Intel(R) Xeon(R) Platinum 8480+
flags		: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512bw avx512vl avx_vnni avx512_bf16 avx512_vnni amx_bf16 avx512_fp16 amx_tile amx_int8
)";

const char kMeminfo[] = R"(MemTotal:       24684096 kB
MemFree:        21000000 kB
MemAvailable:   23450820 kB
Buffers:          123456 kB
HugePages_Total:       0
)";

std::vector<std::string> strings(std::initializer_list<const char*> items) {
  return std::vector<std::string>(items.begin(), items.end());
}

TEST(ParseCpuinfo, Zen4HasAvx512Bf16ButNoAmx) {
  const CpuInfo cpu = parse_cpuinfo(kZen4);
  EXPECT_EQ(cpu.model_name, "AMD EPYC 9654 96-Core Processor");
  EXPECT_EQ(cpu.vendor, "AuthenticAMD");
  EXPECT_EQ(cpu.logical_cpus, 2);
  EXPECT_EQ(cpu.features, strings({"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw",
                                   "avx512_vnni", "avx512_bf16"}));
  EXPECT_FALSE(cpu.has("amx_tile"));
}

TEST(ParseCpuinfo, SapphireRapidsHasAmx) {
  const CpuInfo cpu = parse_cpuinfo(kSapphireRapids);
  EXPECT_EQ(cpu.model_name, "Intel(R) Xeon(R) Platinum 8480+");
  EXPECT_EQ(cpu.vendor, "GenuineIntel");
  EXPECT_EQ(cpu.logical_cpus, 2);
  EXPECT_EQ(cpu.features, training_cpu_features());  // every one, in the reporting order
}

TEST(ParseCpuinfo, FeatureMissingOnOneProcessorIsLeftOut) {
  std::string text = kSapphireRapids;
  text.replace(text.rfind(" amx_tile"), 9, "");
  const CpuInfo cpu = parse_cpuinfo(text);
  EXPECT_FALSE(cpu.has("amx_tile"));
  EXPECT_TRUE(cpu.has("amx_bf16"));
}

TEST(ParseCpuinfo, EmptyTextIsUnknown) {
  const CpuInfo cpu = parse_cpuinfo("");
  EXPECT_EQ(cpu.model_name, "unknown");
  EXPECT_EQ(cpu.vendor, "unknown");
  EXPECT_EQ(cpu.logical_cpus, 0);
  EXPECT_TRUE(cpu.features.empty());
}

TEST(ParseMeminfo, ReadsTotalAndAvailableInBytes) {
  const MemoryInfo memory = parse_meminfo(kMeminfo);
  EXPECT_EQ(memory.total_bytes, int64_t{24684096} * 1024);
  EXPECT_EQ(memory.available_bytes, int64_t{23450820} * 1024);
  EXPECT_THROW(parse_meminfo("MemFree: 5 kB\n"), Error);
}

TEST(CpuList, ParsesAndFormats) {
  EXPECT_EQ(parse_cpu_list("0-3,8,10-11\n"), (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_TRUE(parse_cpu_list("\n").empty());
  EXPECT_THROW(parse_cpu_list("3-1"), Error);
  EXPECT_THROW(parse_cpu_list("a"), Error);
  EXPECT_EQ(format_cpu_list({11, 0, 1, 2, 3, 8, 10, 3}), "0-3,8,10-11");
  EXPECT_EQ(format_cpu_list({}), "");
}

// A sysfs tree of 2 sockets x 2 cores x 2 threads, numbered as Linux does: cpu0-3 are the first
// threads of (s0 c0, s0 c1, s1 c0, s1 c1), cpu4-7 their siblings. core_id repeats per socket.
class FakeSysfs : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/dpt_sysfs_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
    write("devices/system/cpu/online", "0-7\n");
    for (int cpu = 0; cpu < 8; ++cpu) {
      const int package = (cpu % 4) / 2, core = cpu % 2;
      const std::string dir = "devices/system/cpu/cpu" + std::to_string(cpu) + "/";
      write(dir + "topology/physical_package_id", std::to_string(package) + "\n");
      write(dir + "topology/core_id", std::to_string(core) + "\n");
      const std::string core_cpus = std::to_string(cpu % 4) + "," + std::to_string(cpu % 4 + 4);
      const std::string socket_cpus = package == 0 ? "0-1,4-5" : "2-3,6-7";
      cache(dir + "cache/index0/", 1, "Data", "48K", core_cpus);
      cache(dir + "cache/index1/", 1, "Instruction", "32K", core_cpus);
      cache(dir + "cache/index2/", 2, "Unified", "2048K", core_cpus);
      cache(dir + "cache/index3/", 3, "Unified", "32768K", socket_cpus);
    }
    write("devices/system/node/node0/cpulist", "0-1,4-5\n");
    write("devices/system/node/node1/cpulist", "2-3,6-7\n");
    write("devices/system/node/online", "0-1\n");
  }
  void TearDown() override { fs::remove_all(root_); }

  void write(const std::string& path, const std::string& text) {
    const fs::path full = fs::path(root_) / path;
    fs::create_directories(full.parent_path());
    std::ofstream(full) << text;
  }
  void cache(const std::string& dir, int level, const char* type, const char* size,
             const std::string& shared) {
    write(dir + "level", std::to_string(level) + "\n");
    write(dir + "type", std::string(type) + "\n");
    write(dir + "size", std::string(size) + "\n");
    write(dir + "shared_cpu_list", shared + "\n");
  }
  MachineInfo machine(const char* cpuinfo, std::vector<int> affinity = {0, 1, 2, 3, 4, 5, 6, 7}) {
    MachineInfo info;
    info.cpu = parse_cpuinfo(cpuinfo);
    info.topology = read_topology(root_);
    info.memory = parse_meminfo(kMeminfo);
    info.affinity = affinity;
    info.gpu.reason = "this build has no CUDA support";
    return info;
  }

  std::string root_;
};

TEST_F(FakeSysfs, ReadsTopologyCachesAndNodes) {
  const Topology topology = read_topology(root_);
  ASSERT_EQ(topology.cpus.size(), 8u);
  EXPECT_EQ(topology.cpus[6].package, 1);
  EXPECT_EQ(topology.cpus[6].core, 0);
  EXPECT_EQ(topology.physical_cores, 4);
  EXPECT_EQ(topology.sockets, 2);
  EXPECT_EQ(topology.threads_per_core, 2);
  EXPECT_TRUE(topology.note.empty());
  ASSERT_EQ(topology.caches.size(), 3u);  // the instruction cache is left out
  EXPECT_EQ(topology.caches[0].name, "L1d");
  EXPECT_EQ(topology.caches[0].size_bytes, 48 << 10);
  EXPECT_EQ(topology.caches[0].instances, 4);
  EXPECT_EQ(topology.cache_bytes("L2"), 2 << 20);
  EXPECT_EQ(topology.caches[1].instances, 4);
  EXPECT_EQ(topology.cache_bytes("L3"), 32 << 20);
  EXPECT_EQ(topology.caches[2].instances, 2);
  ASSERT_EQ(topology.numa_nodes.size(), 2u);
  EXPECT_EQ(topology.numa_nodes[0].cpus, (std::vector<int>{0, 1, 4, 5}));
  EXPECT_EQ(topology.numa_nodes[1].id, 1);
  EXPECT_EQ(topology.numa_nodes[1].cpus, (std::vector<int>{2, 3, 6, 7}));
  EXPECT_EQ(physical_cores_of(topology, {0, 4, 2}), 2);
}

TEST_F(FakeSysfs, SmtSiblingsAreOneCore) {
  // Two CPUs with the same package and core_id count once: the "2 vCPUs, 1 core" case.
  write("devices/system/cpu/online", "0,4\n");
  const Topology topology = read_topology(root_);
  EXPECT_EQ(topology.physical_cores, 1);
  EXPECT_EQ(topology.threads_per_core, 2);
  EXPECT_EQ(topology.sockets, 1);
}

TEST_F(FakeSysfs, MissingCoreIdCountsAsOwnCoreAndSaysSo) {
  fs::remove(fs::path(root_) / "devices/system/cpu/cpu7/topology/core_id");
  const Topology topology = read_topology(root_);
  EXPECT_EQ(topology.physical_cores, 5);
  EXPECT_NE(topology.note.find("1 CPUs without topology"), std::string::npos) << topology.note;
}

TEST_F(FakeSysfs, NoOnlineListThrows) {
  fs::remove(fs::path(root_) / "devices/system/cpu/online");
  EXPECT_THROW(read_topology(root_), Error);
}

TEST_F(FakeSysfs, RecommendsOneWorkerPerNumaNodeWithBf16OnSapphireRapids) {
  const Recommendation advice = recommend(machine(kSapphireRapids));
  EXPECT_EQ(advice.device, "cpu");
  EXPECT_EQ(advice.device_rule,
            "no usable GPU (this build has no CUDA support): each worker owns CPU cores");
  EXPECT_EQ(advice.workers_per_node, 2);
  EXPECT_EQ(advice.workers_rule,
            "one worker per NUMA node (2 with usable CPUs): its memory and threads stay on one "
            "node");
  EXPECT_EQ(advice.threads_per_worker, 2);
  EXPECT_TRUE(advice.bf16);
  EXPECT_EQ(advice.bf16_note, "bf16 matmuls available via oneDNN (avx512_bf16, amx_bf16)");
}

TEST_F(FakeSysfs, Zen4Bf16ComesFromAvx512Bf16) {
  const Recommendation advice = recommend(machine(kZen4));
  EXPECT_TRUE(advice.bf16);
  EXPECT_EQ(advice.bf16_note, "bf16 matmuls available via oneDNN (avx512_bf16)");
}

TEST_F(FakeSysfs, NoBf16FeaturesIsNotAvailable) {
  std::string text = kZen4;
  while (text.find(" avx512_bf16") != std::string::npos) {
    text.replace(text.find(" avx512_bf16"), 12, "");
  }
  const Recommendation advice = recommend(machine(text.c_str()));
  EXPECT_FALSE(advice.bf16);
  EXPECT_EQ(advice.bf16_note, "n/a: the CPU lists neither avx512_bf16 nor amx_bf16");
}

TEST_F(FakeSysfs, WithoutNumaInfoOneWorkerPerSocket) {
  fs::remove_all(fs::path(root_) / "devices/system/node");
  const MachineInfo info = machine(kZen4);
  ASSERT_EQ(info.topology.numa_nodes.size(), 1u);  // one node holding every CPU
  EXPECT_EQ(info.topology.numa_nodes[0].cpus.size(), 8u);
  const Recommendation advice = recommend(info);
  EXPECT_EQ(advice.workers_per_node, 2);
  EXPECT_EQ(advice.workers_rule.rfind("one worker per socket (2", 0), 0u) << advice.workers_rule;
  EXPECT_EQ(advice.threads_per_worker, 2);
}

TEST_F(FakeSysfs, AffinityLimitsWorkersAndThreads) {
  // Only node 0's CPUs: one worker with node 0's 2 cores.
  Recommendation advice = recommend(machine(kZen4, {0, 1, 4, 5}));
  EXPECT_EQ(advice.workers_per_node, 1);
  EXPECT_EQ(advice.threads_per_worker, 2);
  EXPECT_EQ(advice.workers_rule.rfind("one worker: 1 NUMA node, 1 socket", 0), 0u);
  // Both threads of one core: one thread.
  advice = recommend(machine(kZen4, {0, 4}));
  EXPECT_EQ(advice.threads_per_worker, 1);
  // One core per node: two workers of one thread each (the fewest over workers).
  advice = recommend(machine(kZen4, {0, 4, 2, 3}));
  EXPECT_EQ(advice.workers_per_node, 2);
  EXPECT_EQ(advice.threads_per_worker, 1);
}

TEST_F(FakeSysfs, GpusMakeOneWorkerPerGpu) {
  MachineInfo info = machine(kSapphireRapids);
  GpuInfo a, b, old;
  a.index = 0, a.name = "GPU A", a.compute_major = 9;
  b.index = 1, b.name = "GPU B", b.compute_major = 8;
  old.index = 2, old.name = "GPU C", old.compute_major = 7;
  check_compute_capability(old);  // too old: not counted
  info.gpu.gpus = {a, b, old};
  info.gpu.reason.clear();
  const Recommendation advice = recommend(info);
  EXPECT_EQ(advice.device, "cuda");
  EXPECT_EQ(advice.workers_per_node, 2);
  EXPECT_EQ(advice.threads_per_worker, 2);  // 4 physical cores / 2 GPUs
}

TEST(DetectMachine, ReadsThisMachine) {
  const MachineInfo machine = detect_machine();
  EXPECT_GT(machine.topology.physical_cores, 0);
  EXPECT_LE(machine.topology.physical_cores, static_cast<int>(machine.topology.cpus.size()));
  EXPECT_EQ(machine.cpu.logical_cpus >= static_cast<int>(machine.topology.cpus.size()), true);
  EXPECT_GT(machine.memory.total_bytes, 0);
  EXPECT_FALSE(machine.affinity.empty());
  // This machine may or may not have a GPU; either one is usable or the probe says why not.
  EXPECT_TRUE(!usable_gpus(machine.gpu).empty() || !machine.gpu.reason.empty());
}

}  // namespace
}  // namespace dpt
