// Picks the Device a worker owns from device { kind threads cpu_gemm precision } and says why,
// e.g. "device: cpu (AMD EPYC, 2 threads, oneDNN sgemm); kind AUTO found no usable GPU: this
// build has no CUDA support", and the matmul precision, e.g. "precision: bf16 matmuls, float32
// weights (AUTO: the CPU lists avx512_bf16)". CUDA arrives with the CUDA devices issue.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/config.pb.h"
#include "devices/cpu_device.h"
#include "devices/cpu_info.h"
#include "devices/device.h"
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
// device.precision when BF16 is requested and the CPU lists neither.
PrecisionChoice choose_precision(proto::Precision requested, const CpuInfo& cpu);

// Throws kConfig when the config asks for a device kind or precision this build or machine cannot
// provide (the CPU's features come from /proc/cpuinfo).
// On the CPU, workers sharing a node split its CPUs (see cpus_for_worker) unless the launcher
// already bound each to its own: this process is pinned to its share and uses that many threads
// (device.threads, when set, overrides the count), so 4 ranks on 4 cores don't oversubscribe.
DeviceChoice select_device(const proto::DeviceConfig& config, const WorldInfo& world = {});

// The CPUs (from `cpus`, this process's affinity) that worker `local_rank` of `local_size`
// pins to: contiguous groups as equal as possible. Empty when there are fewer CPUs than workers
// (then no worker pins, and each uses one thread).
std::vector<int> cpus_for_worker(const std::vector<int>& cpus, int local_rank, int local_size);

}  // namespace dpt
