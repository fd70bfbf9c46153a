// Machine detection (devices/cpu_info.h): plain text parsing of /proc and sysfs files, and the
// worker/thread recommendation derived from what was found.
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

namespace dpt {
namespace {

namespace fs = std::filesystem;

std::string trim(const std::string& text) {
  const std::size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t\r\n") - begin + 1);
}

// The whole file; `found` false (and "") when it cannot be read.
std::string read_file(const fs::path& path, bool* found = nullptr) {
  std::ifstream file(path);
  if (found != nullptr) *found = static_cast<bool>(file);
  std::ostringstream text;
  if (file) text << file.rdbuf();
  return text.str();
}

// An integer file such as core_id; `fallback` when missing or not a number.
int read_int(const fs::path& path, int fallback) {
  bool found = false;
  const std::string text = trim(read_file(path, &found));
  if (!found || text.empty()) return fallback;
  try {
    return std::stoi(text);
  } catch (const std::exception&) {
    return fallback;
  }
}

// "32K" / "1024K" / "2M" / "1G" (sysfs cache sizes) -> bytes; 0 when unparsable.
int64_t parse_size(const std::string& text) {
  std::size_t end = 0;
  int64_t value = 0;
  try {
    value = std::stoll(text, &end);
  } catch (const std::exception&) {
    return 0;
  }
  const std::string unit = trim(text.substr(end));
  if (unit == "K") return value << 10;
  if (unit == "M") return value << 20;
  if (unit == "G") return value << 30;
  return unit.empty() ? value : 0;
}

// Number N of a directory entry named `prefix`N, or -1.
int numbered(const std::string& name, const std::string& prefix) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return -1;
  for (std::size_t i = prefix.size(); i < name.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  }
  return std::stoi(name.substr(prefix.size()));
}

std::vector<CacheInfo> read_caches(const fs::path& cpu_dir, const std::vector<LogicalCpu>& cpus) {
  // name -> (size of the first CPU's instance, distinct shared_cpu_list seen)
  std::map<std::string, std::pair<int64_t, std::set<std::string>>> found;
  for (const LogicalCpu& cpu : cpus) {
    const fs::path cache_dir = cpu_dir / ("cpu" + std::to_string(cpu.cpu)) / "cache";
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(cache_dir, error)) {
      if (numbered(entry.path().filename().string(), "index") < 0) continue;
      const std::string type = trim(read_file(entry.path() / "type"));
      if (type != "Data" && type != "Unified") continue;
      const int level = read_int(entry.path() / "level", 0);
      const std::string name = "L" + std::to_string(level) + (level == 1 ? "d" : "");
      auto [it, inserted] = found.try_emplace(name);
      if (inserted) it->second.first = parse_size(trim(read_file(entry.path() / "size")));
      it->second.second.insert(trim(read_file(entry.path() / "shared_cpu_list")));
    }
  }
  std::vector<CacheInfo> caches;
  for (const auto& [name, seen] : found) {
    caches.push_back({name, seen.first, static_cast<int>(seen.second.size())});
  }
  return caches;  // std::map order: L1d, L2, L3
}

std::vector<NumaNode> read_numa_nodes(const fs::path& node_dir) {
  std::vector<NumaNode> nodes;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(node_dir, error)) {
    const int id = numbered(entry.path().filename().string(), "node");
    if (id < 0) continue;
    nodes.push_back({id, parse_cpu_list(read_file(entry.path() / "cpulist"))});
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const NumaNode& a, const NumaNode& b) { return a.id < b.id; });
  return nodes;
}

// (package, core) of a CPU; a CPU without core_id counts as its own core.
std::pair<int, int> core_key(const LogicalCpu& cpu) {
  return cpu.core >= 0 ? std::make_pair(cpu.package, cpu.core) : std::make_pair(-2, cpu.cpu);
}

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

std::vector<int> parse_cpu_list(const std::string& text) {
  std::vector<int> cpus;
  std::istringstream ranges(trim(text));
  for (std::string range; std::getline(ranges, range, ',');) {
    range = trim(range);
    if (range.empty()) continue;
    const std::size_t dash = range.find('-');
    int first = -1, last = -1;
    try {
      first = std::stoi(range.substr(0, dash));
      last = dash == std::string::npos ? first : std::stoi(range.substr(dash + 1));
    } catch (const std::exception&) {
    }
    DPT_CHECK(first >= 0 && last >= first) << "cpu list: malformed range \"" << range << "\"";
    for (int cpu = first; cpu <= last; ++cpu) cpus.push_back(cpu);
  }
  return cpus;
}

std::string format_cpu_list(std::vector<int> cpus) {
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  std::string text;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    text += (text.empty() ? "" : ",") + std::to_string(cpus[i]);
    if (j > i) text += "-" + std::to_string(cpus[j]);
    i = j + 1;
  }
  return text;
}

int64_t Topology::cache_bytes(const std::string& name) const {
  for (const CacheInfo& cache : caches) {
    if (cache.name == name) return cache.size_bytes;
  }
  return 0;
}

Topology read_topology(const std::string& sysfs_root) {
  const fs::path cpu_dir = fs::path(sysfs_root) / "devices/system/cpu";
  bool found = false;
  const std::string online = read_file(cpu_dir / "online", &found);
  DPT_CHECK(found) << "cannot read " << (cpu_dir / "online").string();
  Topology topology;
  int missing = 0;
  for (int cpu : parse_cpu_list(online)) {
    const fs::path dir = cpu_dir / ("cpu" + std::to_string(cpu)) / "topology";
    LogicalCpu logical{cpu, read_int(dir / "physical_package_id", -1),
                       read_int(dir / "core_id", -1)};
    if (logical.package < 0 || logical.core < 0) ++missing;
    topology.cpus.push_back(logical);
  }
  std::map<std::pair<int, int>, int> threads;  // core -> logical CPUs on it
  std::set<int> packages;
  for (const LogicalCpu& cpu : topology.cpus) {
    ++threads[core_key(cpu)];
    packages.insert(cpu.package);
  }
  topology.physical_cores = static_cast<int>(threads.size());
  topology.sockets = static_cast<int>(packages.size());
  for (const auto& [core, count] : threads) {
    topology.threads_per_core = std::max(topology.threads_per_core, count);
  }
  if (missing > 0) {
    topology.note = std::to_string(missing) +
                    " CPUs without topology/core_id or physical_package_id: each counted as its "
                    "own core, all as one socket";
  }
  topology.caches = read_caches(cpu_dir, topology.cpus);
  topology.numa_nodes = read_numa_nodes(fs::path(sysfs_root) / "devices/system/node");
  if (topology.numa_nodes.empty()) {
    NumaNode all{0, {}};
    for (const LogicalCpu& cpu : topology.cpus) all.cpus.push_back(cpu.cpu);
    topology.numa_nodes.push_back(all);
  }
  return topology;
}

int physical_cores_of(const Topology& topology, const std::vector<int>& cpus) {
  std::set<std::pair<int, int>> cores;
  for (const LogicalCpu& cpu : topology.cpus) {
    if (std::find(cpus.begin(), cpus.end(), cpu.cpu) != cpus.end()) cores.insert(core_key(cpu));
  }
  return static_cast<int>(cores.size());
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
