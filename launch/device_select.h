// Picks the Device a worker owns from device { kind threads cpu_gemm precision } and says why,
// e.g. "device: cpu (AMD EPYC, 2 threads, oneDNN sgemm); kind AUTO found no usable GPU: no NVIDIA
// driver (...)", and the matmul precision, e.g. "precision: bf16 matmuls, float32
// weights (AUTO: the CPU lists avx512_bf16)". GPUs are found by the run-time probe
// (devices/cuda_support.h); the workers of a node exchange which GPUs they see (PCI bus ids) and
// launch/gpu_assignment.h's rule gives each its own; decide_device says which one a worker owns,
// select_device creates it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.pb.h"
#include "devices/cpu_device.h"
#include "devices/cpu_info.h"
#include "devices/device.h"
#include "devices/gpu_probe.h"
#include "launch/gpu_assignment.h"
#include "launch/world.h"

namespace dpt {

struct DeviceChoice {
  std::unique_ptr<Device> device;
  std::string reason;            // one line: what was chosen and why
  std::string precision_reason;  // one line: the matmul precision and why
};

struct PrecisionChoice {
  MatmulPrecision precision = MatmulPrecision::kFp32;
  std::string reason;  // "precision: ... (why)", one line
};

// Resolves device.precision on a CPU with `cpu`'s features: PRECISION_AUTO is bf16 when the CPU
// lists avx512_bf16 or amx_bf16 (oneDNN's bf16 matmul was measured faster than its float32 one
// on both kinds; README "bf16 mixed precision"), else float32. Throws kConfig naming
// device.precision when BF16 is requested and the CPU lists neither. `onednn_bf16`: whether
// oneDNN itself runs bf16 natively here (core/gemm_bf16.h's onednn_bf16_native()); when it does
// not although the CPU lists the features (an emulator such as valgrind, or AVX-512 state not
// enabled by the OS), AUTO is float32 and BF16 a config error, both saying why.
PrecisionChoice choose_precision(proto::Precision requested, const CpuInfo& cpu,
                                 bool onednn_bf16 = true);

// The precision line for a worker on a GPU (the Dense GEMMs' format there, core/model.cpp).
std::string gpu_precision_reason(proto::Precision requested);

// Where a worker's compute runs, from device.kind, the GPU probe, the worker's place on its node
// and what the node's other workers see. Pure (tests feed fake probes).
struct DeviceDecision {
  DeviceKind kind = DeviceKind::kCpu;
  int gpu = -1;        // CUDA ordinal when kind is kCuda
  std::string reason;  // one line: what was chosen and why
};

// CPU: the CPU. AUTO: the CPU when no GPU is usable here (the reason says why), else like CUDA.
// CUDA: the GPU assign_node_gpus gives local rank world.local_rank (with every worker seeing the
// same GPUs, local rank k owns the k-th usable one; with each seeing its own, its first); throws
// kConfig naming device.kind when no GPU is usable (with the probe's reason) or the node has no
// valid assignment (too few GPUs, two workers on one GPU). `node`: the usable GPUs' bus ids that
// each local rank sees (gather_on_node), local_size entries, entry local_rank this probe's.
DeviceDecision decide_device(proto::DeviceChoice kind, const GpuProbe& probe,
                             const WorldInfo& world, const NodeGpus& node);
// The same when every worker of the node sees what this one sees (no peers to ask).
DeviceDecision decide_device(proto::DeviceChoice kind, const GpuProbe& probe,
                             const WorldInfo& world);

// The PCI bus ids of `probe`'s usable GPUs in ordinal order: what this worker tells its node
// ("cuda:<ordinal>" for a GPU without one).
std::vector<std::string> usable_bus_ids(const GpuProbe& probe);

// Throws kConfig when the config asks for a device kind or precision this build or machine cannot
// provide (the CPU's features come from /proc/cpuinfo).
// On the CPU, workers sharing a node split its CPUs (see cpus_for_worker) unless the launcher
// already bound each to its own: this process is pinned to its share and uses that many threads
// (device.threads, when set, overrides the count), so 4 ranks on 4 cores don't oversubscribe.
// On a GPU (kind CUDA, or AUTO with a usable GPU; decide_device picks it) the worker owns a
// CudaDevice (make_cuda_device) and computes in float32; device.threads, cpu_gemm and precision
// are the CPU's and do not apply. Errors of decide_device and of creating the GPU's device
// (kConfig naming the GPU) pass through.
// Under mpirun (world.size > 1) the workers of each node exchange the GPUs they see
// (gather_on_node), so this is collective over MPI_COMM_WORLD: every rank calls it once with its
// world, whatever its device.kind (kind CPU is not probed and tells its node it takes no GPU).
DeviceChoice select_device(const proto::DeviceConfig& config, const WorldInfo& world = {});
// The same with a given probe result instead of probing this machine, every worker of the node
// seeing the same GPUs (tests).
DeviceChoice select_device(const proto::DeviceConfig& config, const WorldInfo& world,
                           const GpuProbe& probe);
// The same, creating the GPU's Device with `make_gpu(ordinal)` (tests pass a fake), with what
// the node's workers see (empty: every one sees what this one sees).
using GpuFactory = std::function<std::unique_ptr<Device>(int ordinal)>;
DeviceChoice select_device(const proto::DeviceConfig& config, const WorldInfo& world,
                           const GpuProbe& probe, const GpuFactory& make_gpu,
                           const NodeGpus& node = {});

// `config` for work that has only a CPU implementation (`what`, e.g. "dpt compress"): kind AUTO
// becomes CPU; kind CUDA throws kConfig naming device.kind and `what`.
proto::DeviceConfig cpu_only(proto::DeviceConfig config, const std::string& what);

// The CPUs (from `cpus`, this process's affinity) that worker `local_rank` of `local_size`
// pins to: contiguous groups as equal as possible. Empty when there are fewer CPUs than workers
// (then no worker pins, and each uses one thread).
std::vector<int> cpus_for_worker(const std::vector<int>& cpus, int local_rank, int local_size);

}  // namespace dpt
