// Machine detection (devices/cpu_info.h): /proc/cpuinfo and /proc/meminfo parsing (the sysfs
// topology is cpu_topology.cpp), and the worker/thread recommendation derived from what was found.
#include "devices/cpu_info.h"

#include <sched.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "devices/cuda_support.h"
#include "devices/error.h"
#include "devices/gpu_power.h"
#include "devices/sysfs_text.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;
using sysfs::read_file;
using sysfs::trim;

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : separator) + item;
  return text;
}

}  // namespace

const std::vector<std::string>& training_cpu_features() {
  static const std::vector<std::string> kFeatures = {
      "sse4_2",      "avx",         "avx2",     "fma",      "avx512f", "avx512bw",
      "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"};
  return kFeatures;
}

bool CpuInfo::has(const std::string& feature) const {
  return std::find(features.begin(), features.end(), feature) != features.end();
}

CpuInfo parse_cpuinfo(const std::string& text) {
  CpuInfo info;
  std::map<std::string, int> feature_count;  // feature -> processors listing it
  int flag_lines = 0;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = trim(line.substr(0, colon));
    const std::string value = trim(line.substr(colon + 1));
    if (key == "processor") {
      ++info.logical_cpus;
    } else if (key == "model name" && info.model_name.empty()) {
      info.model_name = value;
    } else if (key == "vendor_id" && info.vendor.empty()) {
      info.vendor = value;
    } else if (key == "flags" || key == "Features") {
      ++flag_lines;
      std::istringstream words(value);
      std::set<std::string> unique;
      for (std::string word; words >> word;) unique.insert(word);
      for (const std::string& word : unique) ++feature_count[word];
    }
  }
  for (const std::string& feature : training_cpu_features()) {
    auto it = feature_count.find(feature);
    if (flag_lines > 0 && it != feature_count.end() && it->second == flag_lines) {
      info.features.push_back(feature);
    }
  }
  if (info.model_name.empty()) info.model_name = "unknown";
  if (info.vendor.empty()) info.vendor = "unknown";
  return info;
}

MemoryInfo parse_meminfo(const std::string& text) {
  MemoryInfo info;
  bool has_total = false;
  std::istringstream lines(text);
  std::string key, unit;
  int64_t value = 0;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    if (!(words >> key >> value)) continue;
    unit.clear();
    words >> unit;
    const int64_t bytes = unit == "kB" ? value * 1024 : value;
    if (key == "MemTotal:") {
      info.total_bytes = bytes;
      has_total = true;
    } else if (key == "MemAvailable:") {
      info.available_bytes = bytes;
    }
  }
  DPT_CHECK(has_total) << "meminfo: no MemTotal line";
  return info;
}

std::vector<std::string> bf16_features(const CpuInfo& cpu) {
  std::vector<std::string> features;
  for (const char* feature : {"avx512_bf16", "amx_bf16"}) {
    if (cpu.has(feature)) features.push_back(feature);
  }
  return features;
}

CpuInfo detect_cpu() { return parse_cpuinfo(read_file("/proc/cpuinfo")); }

MachineInfo detect_machine() {
  MachineInfo machine;
  machine.cpu = detect_cpu();
  machine.memory = parse_meminfo(read_file("/proc/meminfo"));
  machine.topology = read_topology("/sys");
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) machine.affinity.push_back(cpu);
    }
  }
  machine.gpu = probe_gpus();
  if (!machine.gpu.gpus.empty()) read_power_limits(machine.gpu, load_nvml());
  return machine;
}

Recommendation recommend(const MachineInfo& machine) {
  const Topology& topology = machine.topology;
  auto usable = [&](int cpu) {
    return machine.affinity.empty() || std::find(machine.affinity.begin(), machine.affinity.end(),
                                                 cpu) != machine.affinity.end();
  };
  // Groups of usable CPUs a worker could own: NUMA nodes, else sockets, else all of them.
  std::vector<int> all;
  std::vector<std::vector<int>> nodes, sockets;
  std::map<int, std::vector<int>> by_package;
  for (const LogicalCpu& cpu : topology.cpus) {
    if (!usable(cpu.cpu)) continue;
    all.push_back(cpu.cpu);
    by_package[cpu.package].push_back(cpu.cpu);
  }
  for (const auto& [package, cpus] : by_package) sockets.push_back(cpus);
  for (const NumaNode& node : topology.numa_nodes) {
    std::vector<int> cpus;
    for (int cpu : node.cpus) {
      if (usable(cpu)) cpus.push_back(cpu);
    }
    if (!cpus.empty()) nodes.push_back(cpus);
  }

  Recommendation advice;
  const std::vector<GpuInfo> usable_gpu_list = usable_gpus(machine.gpu);
  if (!usable_gpu_list.empty()) {
    const int gpus = static_cast<int>(usable_gpu_list.size());
    advice.device = "cuda";
    advice.device_rule = std::to_string(gpus) + " GPUs found: each worker owns one";
    advice.workers_per_node = gpus;
    advice.workers_rule = "one worker per GPU";
    advice.threads_per_worker = std::max(1, physical_cores_of(topology, all) / gpus);
    advice.threads_rule = "usable physical cores / GPUs: host threads only feed the GPU";
  } else {
    std::vector<std::vector<int>> groups = {all};
    std::string group = "node";
    advice.device = "cpu";
    advice.device_rule = "no usable GPU (" + machine.gpu.reason + "): each worker owns CPU cores";
    if (nodes.size() > 1) {
      groups = nodes;
      advice.workers_rule = "one worker per NUMA node (" + std::to_string(nodes.size()) +
                            " with usable CPUs): its memory and threads stay on one node";
    } else if (sockets.size() > 1) {
      groups = sockets;
      group = "socket";
      advice.workers_rule = "one worker per socket (" + std::to_string(sockets.size()) +
                            " with usable CPUs): its threads share one memory controller and L3";
    } else {
      advice.workers_rule =
          "one worker: 1 NUMA node, 1 socket; more would split the same cores and add all-reduce "
          "traffic";
    }
    int cores = 0;
    for (const auto& cpus : groups) {
      const int group_cores = physical_cores_of(topology, cpus);
      cores = cores == 0 ? group_cores : std::min(cores, group_cores);
    }
    advice.workers_per_node = static_cast<int>(groups.size());
    advice.threads_per_worker = std::max(1, cores);
    advice.threads_rule = "physical cores of the worker's " + group +
                          " (fewest over workers): SMT siblings share the FMA units GEMM keeps "
                          "busy";
  }

  const std::vector<std::string> features = bf16_features(machine.cpu);
  advice.bf16 = !features.empty();
  advice.bf16_note = advice.bf16
                         ? "bf16 matmuls available via oneDNN (" + join(features, ", ") + ")"
                         : "n/a: the CPU lists neither avx512_bf16 nor amx_bf16";
  return advice;
}

}  // namespace dpt
