// What this machine offers for training: CPU model and ISA features, the core/socket/NUMA
// topology, memory, the GPUs (devices/gpu_probe.h) and a recommendation of how
// many workers and threads to run. The parsers take file contents or a sysfs root so tests can
// feed fixtures; detect_machine() reads the real /proc and /sys. Nothing here prints: `dpt
// devices` (launch/devices_command.h) does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "devices/gpu_probe.h"

namespace dpt {

// ISA features that matter for training kernels, in the order they are reported.
const std::vector<std::string>& training_cpu_features();

struct CpuInfo {
  std::string model_name;  // "model name", or "unknown" when absent
  std::string vendor;      // "vendor_id", or "unknown" when absent
  int logical_cpus = 0;    // "processor" entries
  // The training_cpu_features() every processor lists, in that order (a feature only some
  // processors have is left out: work may run on any of them).
  std::vector<std::string> features;
  bool has(const std::string& feature) const;
};

// Parses the text of /proc/cpuinfo (x86 "flags" or Arm "Features" lines).
CpuInfo parse_cpuinfo(const std::string& text);
// parse_cpuinfo of this machine's /proc/cpuinfo (cheap: no sysfs walk).
CpuInfo detect_cpu();

// The bf16 matmul features `cpu` lists, of avx512_bf16 and amx_bf16, in that order; empty when
// oneDNN would have to emulate bf16.
std::vector<std::string> bf16_features(const CpuInfo& cpu);

struct MemoryInfo {
  int64_t total_bytes = 0;      // MemTotal
  int64_t available_bytes = 0;  // MemAvailable
};

// Parses the text of /proc/meminfo. Throws kInternal when MemTotal is missing.
MemoryInfo parse_meminfo(const std::string& text);

// "0-3,8,10-11" -> {0,1,2,3,8,10,11}; "" -> {}. Throws kInternal on malformed text.
std::vector<int> parse_cpu_list(const std::string& text);
// The inverse: {0,1,2,3,8} -> "0-3,8" (input in any order, duplicates ignored).
std::string format_cpu_list(std::vector<int> cpus);

// One logical CPU's place: package (socket) and core within it; -1 where sysfs does not say.
struct LogicalCpu {
  int cpu = 0;
  int package = -1;
  int core = -1;
};

struct CacheInfo {
  std::string name;        // "L1d", "L1i", "L2", "L3"
  int64_t size_bytes = 0;  // one instance
  int instances = 0;       // distinct instances across the online CPUs
};

struct NumaNode {
  int id = 0;
  std::vector<int> cpus;
};

struct Topology {
  std::vector<LogicalCpu> cpus;      // online CPUs, ascending
  int physical_cores = 0;            // distinct (package, core) pairs
  int sockets = 0;                   // distinct packages
  int threads_per_core = 0;          // most logical CPUs sharing one core
  std::vector<CacheInfo> caches;     // data and unified caches of the first online CPU's view
  std::vector<NumaNode> numa_nodes;  // one node holding every CPU when sysfs has no node/
  std::string note;                  // how missing sysfs files were handled; empty when none were
  int64_t cache_bytes(const std::string& name) const;  // 0 when absent
};

// Reads <sysfs_root>/devices/system/{cpu,node} (sysfs_root "/sys" on a real machine): the online
// CPUs, each one's topology/{physical_package_id,core_id}, cpuN/cache/index* and node*/cpulist.
// Throws kInternal when the online CPU list cannot be read.
Topology read_topology(const std::string& sysfs_root);

// Physical cores among `cpus` (distinct (package, core) pairs of `topology`).
int physical_cores_of(const Topology& topology, const std::vector<int>& cpus);

struct MachineInfo {
  CpuInfo cpu;
  Topology topology;
  MemoryInfo memory;
  std::vector<int> affinity;  // CPUs this process may run on (sched_getaffinity)
  GpuProbe gpu;               // devices/gpu_probe.h: the GPUs, CUDA versions, why none is usable
};

// Reads /proc/cpuinfo, /proc/meminfo, /sys and this process's affinity, and probes the GPUs.
MachineInfo detect_machine();

// How to run workers on one node of this kind, each field with the one-line rule behind it.
struct Recommendation {
  std::string device;  // "cpu" or "cuda"
  std::string device_rule;
  int workers_per_node = 1;
  std::string workers_rule;
  int threads_per_worker = 1;
  std::string threads_rule;
  bool bf16 = false;
  std::string bf16_note;  // "bf16 matmuls available via oneDNN (...)" or "n/a: <reason>"
};

// Counts only CPUs in machine.affinity (all online CPUs when it is empty).
Recommendation recommend(const MachineInfo& machine);

}  // namespace dpt
