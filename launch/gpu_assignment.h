// Which GPU each worker of a node takes, decided from what every worker of the node sees (pure;
// launch/device_select.h gathers the inputs and creates the device). Launchers expose GPUs in two
// ways: every process sees all of the node's GPUs (plain mpirun), or each sees only its own
// (srun --gpus-per-task=1, or a CUDA_VISIBLE_DEVICES per rank set by a wrapper script), where its
// GPU is cuda:0 in every process although the processes hold different physical GPUs. Comparing
// PCI bus ids tells the two apart; NCCL refuses two ranks on one GPU the same way.
#pragma once

#include <string>
#include <vector>

namespace dpt {

// What the workers of one node see, indexed by local rank: the PCI bus ids of each one's usable
// GPUs in CUDA ordinal order. Empty for a worker with no usable GPU or on the CPU by choice
// (device.kind CPU); such workers take no part in the assignment.
using NodeGpus = std::vector<std::vector<std::string>>;

struct NodeAssignment {
  // Per local rank: the index into its own list of the GPU it takes; -1 when it takes none.
  std::vector<int> position;
  // Every worker taking part sees the same GPUs (as a set), so the i-th of them by local rank
  // took the i-th GPU; false when they see different GPUs and each took its first.
  bool same_gpus = true;
  std::string error;  // non-empty: no valid assignment, and why (names the local ranks)
};

// The rule:
// - Every worker with GPUs sees the same set: the i-th such worker by local rank takes the i-th
//   GPU in the first one's CUDA order (with all workers on GPUs and one order, local rank k takes
//   cuda:k); more such workers than GPUs is an error naming the local ranks left without one.
// - Otherwise (each sees its own GPUs, or the sets only overlap): each takes the first GPU it
//   sees.
// Either way, two workers taking one physical GPU (the same bus id) is an error naming both
// local ranks and the bus id. Deterministic, so every worker of the node reaches the same answer.
NodeAssignment assign_node_gpus(const NodeGpus& node);

// Bus ids as one text for exchanging between processes ("0000:3b:00.0,0000:5e:00.0"; "" when
// empty), and back. Bus ids never contain a comma.
std::string join_bus_ids(const std::vector<std::string>& bus_ids);
std::vector<std::string> split_bus_ids(const std::string& text);

}  // namespace dpt
