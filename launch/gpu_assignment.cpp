// The node's GPU assignment (launch/gpu_assignment.h): same set -> i-th, else first visible, and
// no physical GPU twice.
#include "launch/gpu_assignment.h"

#include <fmt/core.h>

#include <algorithm>
#include <map>

namespace dpt {
namespace {

std::vector<std::string> sorted(std::vector<std::string> items) {
  std::sort(items.begin(), items.end());
  return items;
}

// "local rank 2", "local ranks 0 and 1", "local ranks 0, 1 and 3".
std::string ranks_text(const std::vector<int>& ranks) {
  std::string text = ranks.size() == 1 ? "local rank " : "local ranks ";
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    if (i > 0) text += i + 1 == ranks.size() ? " and " : ", ";
    text += std::to_string(ranks[i]);
  }
  return text;
}

// An error text for every bus id taken by more than one worker; "" when none is.
std::string shared_gpus(const NodeGpus& node, const std::vector<int>& position) {
  std::map<std::string, std::vector<int>> takers;
  for (std::size_t r = 0; r < node.size(); ++r) {
    if (position[r] < 0) continue;
    takers[node[r][static_cast<std::size_t>(position[r])]].push_back(static_cast<int>(r));
  }
  std::string error;
  for (const auto& [bus_id, ranks] : takers) {
    if (ranks.size() < 2) continue;
    error += (error.empty() ? "" : "; ") + ranks_text(ranks) + " would share GPU " + bus_id;
  }
  return error;
}

}  // namespace

NodeAssignment assign_node_gpus(const NodeGpus& node) {
  NodeAssignment assignment;
  assignment.position.assign(node.size(), -1);
  std::vector<int> takers;
  for (std::size_t r = 0; r < node.size(); ++r) {
    if (!node[r].empty()) takers.push_back(static_cast<int>(r));
  }
  if (takers.empty()) return assignment;
  const std::vector<std::string> first_set = sorted(node[static_cast<std::size_t>(takers[0])]);
  for (int r : takers) {
    if (sorted(node[static_cast<std::size_t>(r)]) != first_set) assignment.same_gpus = false;
  }
  if (assignment.same_gpus) {
    // The i-th taker takes the i-th GPU in the first taker's order, found by bus id in its own
    // list, so a worker listing the same GPUs in another order cannot take one twice.
    const std::vector<std::string>& order = node[static_cast<std::size_t>(takers[0])];
    const std::size_t gpus = order.size();
    std::vector<int> left_out;
    for (std::size_t i = 0; i < takers.size(); ++i) {
      const std::vector<std::string>& mine = node[static_cast<std::size_t>(takers[i])];
      if (i < gpus) {
        const auto found = std::find(mine.begin(), mine.end(), order[i]);
        assignment.position[static_cast<std::size_t>(takers[i])] =
            static_cast<int>(found - mine.begin());
      } else {
        left_out.push_back(takers[i]);
      }
    }
    if (!left_out.empty()) {
      assignment.error = fmt::format(
          "{} workers on this node but only {} usable GPU(s); start at most one worker per GPU "
          "({} {} none)",
          takers.size(), gpus, ranks_text(left_out), left_out.size() == 1 ? "has" : "have");
      return assignment;
    }
  } else {
    for (int r : takers) assignment.position[static_cast<std::size_t>(r)] = 0;
  }
  // Only possible when the sets differ; checked always, as the one rule that must hold.
  const std::string shared = shared_gpus(node, assignment.position);
  if (!shared.empty()) {
    assignment.error = shared +
                       " (the workers on this node see different GPUs, so each takes the first it "
                       "sees; give each worker its own GPU, or every worker all of them)";
  }
  return assignment;
}

std::string join_bus_ids(const std::vector<std::string>& bus_ids) {
  std::string text;
  for (const std::string& id : bus_ids) text += (text.empty() ? "" : ",") + id;
  return text;
}

std::vector<std::string> split_bus_ids(const std::string& text) {
  std::vector<std::string> ids;
  std::size_t begin = 0;
  while (begin < text.size()) {
    const std::size_t end = std::min(text.find(',', begin), text.size());
    ids.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return ids;
}

}  // namespace dpt
