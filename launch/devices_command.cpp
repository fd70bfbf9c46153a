// dpt devices (launch/devices_command.h): formats MachineInfo and its Recommendation.
#include "launch/devices_command.h"

#include <fmt/core.h>

#include "comm/communicator.h"
#include "comm/mpi_communicator.h"
#include "comm/nccl_communicator.h"
#include "devices/error.h"

namespace dpt {
namespace {

// 1 decimal place above 1 GiB ("23.5 GiB"), whole KiB/MiB below ("32 KiB", "1 MiB").
std::string bytes_text(int64_t bytes) {
  if (bytes >= (int64_t{1} << 30)) return fmt::format("{:.1f} GiB", bytes / double(1 << 30));
  if (bytes >= (1 << 20)) return fmt::format("{:.0f} MiB", bytes / double(1 << 20));
  if (bytes >= (1 << 10)) return fmt::format("{:.0f} KiB", bytes / double(1 << 10));
  return fmt::format("{} B", bytes);
}

std::string compute_capability_text(const GpuInfo& gpu) {
  return fmt::format("{}.{}", gpu.compute_major, gpu.compute_minor);
}

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

// MPIX_Query_cuda_support's answer, and when it may not be the library's final word.
std::string mpi_cuda_aware_text() {
  std::string answer = mpi_cuda_aware() ? "yes" : "no";
  if (mpi_cuda_aware() && !mpi_reduces_device_memory()) {
    answer +=
        ", not used for gradients: this MPI is not known to take device memory in a nonblocking "
        "all-reduce (Open MPI does not), so the mpi backend stages it through page-locked host "
        "memory";
  }
  if (mpi_active()) return answer + " (MPIX_Query_cuda_support)";
  return answer +
         " (MPIX_Query_cuda_support before MPI_Init; run under mpirun for the answer "
         "the training run gets)";
}

// The NCCL library the nccl backend would load, or why there is none.
std::string nccl_text() {
  try {
    return nccl_version();
  } catch (const Error& error) {
    return std::string("n/a: ") + error.what();
  }
}

}  // namespace

nlohmann::json devices_json(const MachineInfo& machine, const std::vector<std::string>& backends) {
  const Topology& topology = machine.topology;
  nlohmann::json features = nlohmann::json::object();
  for (const std::string& feature : training_cpu_features()) {
    features[feature] = machine.cpu.has(feature);
  }
  nlohmann::json caches = nlohmann::json::object();
  for (const CacheInfo& cache : topology.caches) {
    caches[cache.name] = {{"size_bytes", cache.size_bytes}, {"instances", cache.instances}};
  }
  nlohmann::json nodes = nlohmann::json::array();
  for (const NumaNode& node : topology.numa_nodes) {
    nodes.push_back({{"id", node.id}, {"cpus", format_cpu_list(node.cpus)}});
  }
  nlohmann::json gpus = nlohmann::json::array();
  for (const GpuInfo& gpu : machine.gpu.gpus) {
    gpus.push_back({{"index", gpu.index},
                    {"name", gpu.name},
                    {"memory_bytes", gpu.memory_bytes},
                    {"compute_capability", compute_capability_text(gpu)},
                    {"usable", gpu.usable},
                    {"note", gpu.note},
                    {"pci_bus_id", gpu.pci_bus_id},
                    {"power_limit_w", gpu.power_limit_w > 0 ? nlohmann::json(gpu.power_limit_w)
                                                            : nlohmann::json(nullptr)},
                    {"power_note", gpu.power_note}});
  }
  const Recommendation advice = recommend(machine);
  return {
      {"cpu",
       {{"model_name", machine.cpu.model_name},
        {"vendor", machine.cpu.vendor},
        {"logical_cpus", static_cast<int>(topology.cpus.size())},
        {"physical_cores", topology.physical_cores},
        {"sockets", topology.sockets},
        {"threads_per_core", topology.threads_per_core},
        {"features", features},
        {"caches", caches},
        {"numa_nodes", nodes},
        {"topology_note", topology.note}}},
      {"memory",
       {{"total_bytes", machine.memory.total_bytes},
        {"available_bytes", machine.memory.available_bytes}}},
      {"affinity",
       {{"count", static_cast<int>(machine.affinity.size())},
        {"cpus", format_cpu_list(machine.affinity)}}},
      {"gpus",
       {{"devices", gpus},
        {"driver_version", cuda_version_text(machine.gpu.driver_version)},
        {"runtime_version", cuda_version_text(machine.gpu.runtime_version)},
        {"reason", machine.gpu.reason}}},
      {"comm_backends", backends},
      {"mpi_cuda_aware", mpi_cuda_aware()},
      {"nccl", nccl_text()},
      {"recommendation",
       {{"device", advice.device},
        {"device_rule", advice.device_rule},
        {"workers_per_node", advice.workers_per_node},
        {"workers_rule", advice.workers_rule},
        {"threads_per_worker", advice.threads_per_worker},
        {"threads_rule", advice.threads_rule},
        {"bf16", advice.bf16},
        {"bf16_note", advice.bf16_note}}},
  };
}

std::string devices_table(const MachineInfo& machine, const std::vector<std::string>& backends) {
  const Topology& topology = machine.topology;
  std::string out;
  auto row = [&out](const std::string& key, const std::string& value) {
    out += fmt::format("  {:<16}{}\n", key, value);
  };
  out += "CPU\n";
  row("model", fmt::format("{} ({})", machine.cpu.model_name, machine.cpu.vendor));
  row("topology", fmt::format("{} logical CPUs, {} physical cores, {} sockets, {} threads/core",
                              topology.cpus.size(), topology.physical_cores, topology.sockets,
                              topology.threads_per_core));
  if (!topology.note.empty()) row("", topology.note);
  std::vector<std::string> present, absent;
  for (const std::string& feature : training_cpu_features()) {
    (machine.cpu.has(feature) ? present : absent).push_back(feature);
  }
  row("features", present.empty() ? "none" : join(present));
  if (!absent.empty()) row("absent", join(absent));
  std::vector<std::string> caches;
  for (const CacheInfo& cache : topology.caches) {
    caches.push_back(
        fmt::format("{} {} x{}", cache.name, bytes_text(cache.size_bytes), cache.instances));
  }
  row("caches", caches.empty() ? "unknown" : join(caches));
  for (const NumaNode& node : topology.numa_nodes) {
    row(fmt::format("NUMA node {}", node.id), "CPUs " + format_cpu_list(node.cpus));
  }
  out += "Memory\n";
  row("total", bytes_text(machine.memory.total_bytes));
  row("available", bytes_text(machine.memory.available_bytes));
  out += "Process\n";
  row("affinity",
      fmt::format("{} CPUs ({})", machine.affinity.size(), format_cpu_list(machine.affinity)));
  out += "GPUs\n";
  row("CUDA", fmt::format("driver {}, runtime {}", cuda_version_text(machine.gpu.driver_version),
                          cuda_version_text(machine.gpu.runtime_version)));
  for (const GpuInfo& gpu : machine.gpu.gpus) {
    row(fmt::format("cuda:{}", gpu.index),
        fmt::format("{}, {}, compute capability {}, power limit {}{}", gpu.name,
                    bytes_text(gpu.memory_bytes), compute_capability_text(gpu),
                    gpu.power_limit_w > 0 ? fmt::format("{:.0f} W", gpu.power_limit_w)
                                          : "n/a (" + gpu.power_note + ")",
                    gpu.usable ? "" : "; not usable: " + gpu.note));
  }
  if (!machine.gpu.reason.empty()) row("", "n/a: " + machine.gpu.reason);
  out += "Collectives\n";
  row("backends", join(backends));
  row("CUDA-aware MPI", mpi_cuda_aware_text());
  row("NCCL", nccl_text());
  const Recommendation advice = recommend(machine);
  out += "Recommendation\n";
  row("device", fmt::format("{}: {}", advice.device, advice.device_rule));
  row("workers/node", fmt::format("{}: {}", advice.workers_per_node, advice.workers_rule));
  row("threads/worker", fmt::format("{}: {}", advice.threads_per_worker, advice.threads_rule));
  row("bf16", advice.bf16_note);
  return out;
}

int run_devices(const DevicesArgs& args) {
  const MachineInfo machine = detect_machine();
  const std::vector<std::string> backends = communicator_backends();
  if (args.json) {
    fmt::print("{}\n", devices_json(machine, backends).dump(2));
  } else {
    fmt::print("{}", devices_table(machine, backends));
  }
  return 0;
}

}  // namespace dpt
