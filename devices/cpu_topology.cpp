// The CPU topology half of devices/cpu_info.h: logical CPUs, cores, sockets, caches and NUMA
// nodes read from sysfs, and CPU lists ("0-3,8").
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "devices/cpu_info.h"
#include "devices/error.h"
#include "devices/sysfs_text.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;
using sysfs::read_file;
using sysfs::read_int;
using sysfs::trim;

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

}  // namespace

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

}  // namespace dpt
