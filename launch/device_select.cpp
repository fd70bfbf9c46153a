// Device selection from the config.
#include "launch/device_select.h"

#include <fmt/core.h>
#include <sched.h>

#include <algorithm>

#include "core/gemm_bf16.h"
#include "devices/cpu_device.h"
#include "devices/cuda_support.h"
#include "devices/error.h"

namespace dpt {
namespace {

CpuGemmLibrary gemm_library(proto::CpuGemm choice) {
  switch (choice) {
    case proto::OPENBLAS:
      return CpuGemmLibrary::kOpenBlas;
    case proto::ONEDNN:
    case proto::CPU_GEMM_AUTO:
      return CpuGemmLibrary::kOneDnn;
  }
  return CpuGemmLibrary::kOneDnn;
}

std::vector<int> affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

// Splits the node's CPUs between its workers; returns the thread count to use (0: all of this
// process's CPUs) and appends what it did to `note`.
int share_cpus(const WorldInfo& world, std::string& note) {
  if (world.local_size <= 1) return 0;
  if (!world.local_affinity_shared) {
    note += "; the launcher bound this worker to its own CPUs";
    return 0;
  }
  const std::vector<int> cpus = world.node_cpus.empty() ? affinity_cpus() : world.node_cpus;
  const std::vector<int> mine = cpus_for_worker(cpus, world.local_rank, world.local_size);
  if (mine.empty()) {
    note += fmt::format("; {} workers share {} CPUs on this node: 1 thread each, unpinned",
                        world.local_size, cpus.size());
    return 1;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : mine) CPU_SET(cpu, &set);
  DPT_CHECK(sched_setaffinity(0, sizeof(set), &set) == 0)
      << "pinning worker " << world.local_rank << " to its CPUs failed";
  note += fmt::format("; pinned to CPUs {}-{} ({} of {} on this node)", mine.front(), mine.back(),
                      mine.size(), cpus.size());
  return static_cast<int>(mine.size());
}

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

}  // namespace

PrecisionChoice choose_precision(proto::Precision requested, const CpuInfo& cpu, bool onednn_bf16) {
  const std::vector<std::string> features = bf16_features(cpu);
  const bool bf16_ok = !features.empty() && onednn_bf16;
  const std::string lists =
      features.empty() ? "the CPU lists neither avx512_bf16 nor amx_bf16"
      : onednn_bf16    ? "the CPU lists " + join(features)
                       : "the CPU lists " + join(features) +
                          " but oneDNN's effective ISA lacks avx512_core_bf16 (an emulator such as "
                          "valgrind, or AVX-512 state not enabled by the OS)";
  constexpr const char* kBf16 = "precision: bf16 matmuls, float32 weights, gradients and loss";
  PrecisionChoice choice;
  switch (requested) {
    case proto::FP32:
      choice.reason = "precision: float32 (FP32 requested)";
      return choice;
    case proto::TF32:
      choice.reason = "precision: float32 (TF32 requested; TF32 applies to CUDA devices only)";
      return choice;
    case proto::FP16:
      DPT_THROW(ErrorKind::kConfig) << "device.precision: fp16 needs a CUDA device";
    case proto::BF16:
      DPT_CHECK_AS(ErrorKind::kConfig, bf16_ok)
          << "device.precision: BF16 requested, but " << lists << " (" << cpu.model_name
          << "), so oneDNN would emulate bf16 far slower than float32; use PRECISION_AUTO or FP32";
      choice.precision = MatmulPrecision::kBf16;
      choice.reason = fmt::format("{} (BF16 requested; {})", kBf16, lists);
      return choice;
    case proto::PRECISION_AUTO:
      break;
  }
  if (!bf16_ok) {
    choice.reason = "precision: float32 (AUTO: " + lists + ")";
    return choice;
  }
  choice.precision = MatmulPrecision::kBf16;
  // Without AMX, AVX512-BF16 alone still doubles oneDNN's matmul rate (README, measured).
  const char* note = cpu.has("amx_bf16") ? "" : "; no AMX, but bf16 matmuls measured ~2x float32";
  choice.reason = fmt::format("{} (AUTO: {}{})", kBf16, lists, note);
  return choice;
}

std::vector<int> cpus_for_worker(const std::vector<int>& cpus, int local_rank, int local_size) {
  const std::size_t n = cpus.size(), workers = static_cast<std::size_t>(local_size);
  if (local_size <= 0 || n < workers) return {};
  const std::size_t r = static_cast<std::size_t>(local_rank);
  const std::size_t begin = r * n / workers, end = (r + 1) * n / workers;
  return std::vector<int>(cpus.begin() + static_cast<std::ptrdiff_t>(begin),
                          cpus.begin() + static_cast<std::ptrdiff_t>(end));
}

std::vector<std::string> usable_bus_ids(const GpuProbe& probe) {
  std::vector<std::string> ids;
  for (const GpuInfo& gpu : usable_gpus(probe)) {
    // Without a bus id (never from the CUDA probe) the ordinal stands in: workers that cannot be
    // told apart count as seeing the same GPUs, the cautious reading.
    ids.push_back(gpu.pci_bus_id.empty() ? "cuda:" + std::to_string(gpu.index) : gpu.pci_bus_id);
  }
  return ids;
}

DeviceDecision decide_device(proto::DeviceChoice kind, const GpuProbe& probe,
                             const WorldInfo& world) {
  return decide_device(
      kind, probe, world,
      NodeGpus(static_cast<std::size_t>(std::max(world.local_size, 1)), usable_bus_ids(probe)));
}

DeviceDecision decide_device(proto::DeviceChoice kind, const GpuProbe& probe,
                             const WorldInfo& world, const NodeGpus& node) {
  DeviceDecision decision;
  if (kind == proto::CPU) {
    decision.reason = "kind CPU requested";
    return decision;
  }
  const std::vector<GpuInfo> gpus = usable_gpus(probe);
  const char* requested = kind == proto::CUDA ? "CUDA requested" : "AUTO";
  if (gpus.empty()) {
    DPT_CHECK_AS(ErrorKind::kConfig, kind != proto::CUDA)
        << "device.kind: CUDA requested, but no GPU is usable: " << probe.reason
        << "; use AUTO or CPU";
    decision.reason = "kind AUTO found no usable GPU: " + probe.reason;
    return decision;
  }
  const std::size_t me = static_cast<std::size_t>(world.local_rank);
  DPT_CHECK(me < node.size() && node[me] == usable_bus_ids(probe))
      << "decide_device: the node's GPU lists do not hold this worker's at local rank " << me;
  const NodeAssignment assignment = assign_node_gpus(node);
  DPT_CHECK_AS(ErrorKind::kConfig, assignment.error.empty())
      << "device.kind: " << requested << ": " << assignment.error;
  const GpuInfo& gpu = gpus[static_cast<std::size_t>(assignment.position[me])];
  decision.kind = DeviceKind::kCuda;
  decision.gpu = gpu.index;
  if (assignment.same_gpus) {
    decision.reason = fmt::format("kind {}: local rank {} owns GPU cuda:{} ({}) of {} usable",
                                  requested, world.local_rank, gpu.index, gpu.name, gpus.size());
  } else {
    decision.reason = fmt::format(
        "kind {}: local rank {} owns GPU cuda:{} ({}, {}), the first of the {} it sees (the "
        "workers on this node see different GPUs)",
        requested, world.local_rank, gpu.index, gpu.name, gpu.pci_bus_id, gpus.size());
  }
  return decision;
}

proto::DeviceConfig cpu_only(proto::DeviceConfig config, const std::string& what) {
  DPT_CHECK_AS(ErrorKind::kConfig, config.kind() != proto::CUDA)
      << "device.kind: CUDA requested, but " << what << " runs on the CPU only; use AUTO or CPU";
  config.set_kind(proto::CPU);
  return config;
}

std::string gpu_precision_reason(proto::Precision requested) {
  switch (requested) {
    case proto::TF32:
      return "precision: TF32 tensor-core GEMMs on the GPU, float32 everywhere else (TF32 "
             "requested)";
    case proto::BF16:
      return "precision: bf16 GEMM inputs on the GPU with float32 accumulation, weights, "
             "gradients and loss (BF16 requested)";
    case proto::FP16:
      return "precision: fp16 GEMM inputs on the GPU with float32 accumulation, master weights "
             "and gradients, dynamic loss scaling (FP16 requested)";
    case proto::FP32:
      return "precision: float32 on the GPU (FP32 requested)";
    case proto::PRECISION_AUTO:
      break;
  }
  return "precision: float32 on the GPU (AUTO; TF32 or BF16 are opt-in there)";
}

DeviceChoice select_device(const proto::DeviceConfig& config, const WorldInfo& world) {
  const GpuProbe probe =
      config.kind() == proto::CPU ? GpuProbe{{}, 0, 0, "not probed (kind CPU)"} : probe_gpus();
  // Every rank joins the exchange, kind CPU too (with nothing), so MPMD ranks that differ in
  // kind still meet in it.
  NodeGpus node;
  for (const std::string& text : gather_on_node(world, join_bus_ids(usable_bus_ids(probe)))) {
    node.push_back(split_bus_ids(text));
  }
  return select_device(config, world, probe, make_cuda_device, node);
}

DeviceChoice select_device(const proto::DeviceConfig& config, const WorldInfo& world,
                           const GpuProbe& probe) {
  return select_device(config, world, probe, make_cuda_device);
}

DeviceChoice select_device(const proto::DeviceConfig& config, const WorldInfo& world,
                           const GpuProbe& probe, const GpuFactory& make_gpu,
                           const NodeGpus& node) {
  std::string why;
  if (config.kind() != proto::CPU) {
    const DeviceDecision decision = node.empty() ? decide_device(config.kind(), probe, world)
                                                 : decide_device(config.kind(), probe, world, node);
    if (decision.kind == DeviceKind::kCuda) {
      DeviceChoice choice;
      choice.device = make_gpu(decision.gpu);
      choice.reason = "device: " + choice.device->name() + "; " + decision.reason;
      choice.precision_reason = gpu_precision_reason(config.precision());
      return choice;
    }
    why = "; " + decision.reason;
  } else {
    why = "; kind CPU requested";
  }
  // Before pinning, so a precision this CPU lacks fails without side effects.
  PrecisionChoice precision =
      choose_precision(config.precision(), detect_cpu(), onednn_bf16_native());
  std::string note;
  const int share = share_cpus(world, note);
  CpuDeviceOptions options;
  options.threads = config.threads() > 0 ? config.threads() : share;
  options.gemm = gemm_library(config.cpu_gemm());
  options.matmul = precision.precision;
  DeviceChoice choice;
  choice.precision_reason = std::move(precision.reason);
  choice.device = std::make_unique<CpuDevice>(options);
  choice.reason = "device: " + choice.device->name() + why + note;
  return choice;
}

}  // namespace dpt
