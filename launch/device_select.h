// Picks the Device a worker owns from device { kind threads cpu_gemm } and says why, e.g.
// "device: cpu (AMD EPYC, 2 threads, oneDNN sgemm); kind AUTO found no usable GPU: this build
// has no CUDA support". CUDA arrives with the CUDA devices issue.
#pragma once

#include <memory>
#include <string>

#include <vector>

#include "core/config.pb.h"
#include "devices/device.h"
#include "launch/world.h"

namespace dpt {

struct DeviceChoice {
  std::unique_ptr<Device> device;
  std::string reason;  // one line: what was chosen and why
};

// Throws kConfig when the config asks for a device kind this build or machine cannot provide.
// On the CPU, workers sharing a node split its CPUs (see cpus_for_worker) unless the launcher
// already bound each to its own: this process is pinned to its share and uses that many threads
// (device.threads, when set, overrides the count), so 4 ranks on 4 cores don't oversubscribe.
DeviceChoice select_device(const proto::DeviceConfig& config, const WorldInfo& world = {});

// The CPUs (from `cpus`, this process's affinity) that worker `local_rank` of `local_size`
// pins to: contiguous groups as equal as possible. Empty when there are fewer CPUs than workers
// (then no worker pins, and each uses one thread).
std::vector<int> cpus_for_worker(const std::vector<int>& cpus, int local_rank, int local_size);

}  // namespace dpt
