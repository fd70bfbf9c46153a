// The node's GPU assignment from what each worker sees: the same GPUs (local rank k takes the
// k-th), each its own (srun --gpus-per-task=1: each takes its first), partial overlaps, too few
// GPUs and two workers on one GPU (errors naming the local ranks), workers without GPUs.
#include "launch/gpu_assignment.h"

#include <gtest/gtest.h>

namespace dpt {
namespace {

// Bus ids as the CUDA probe writes them.
const std::string kA = "0000:1b:00.0", kB = "0000:3b:00.0", kC = "0000:5e:00.0",
                  kD = "0000:86:00.0";

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(AssignNodeGpus, SameGpusEverywhereGiveLocalRankKTheKthGpu) {
  const NodeAssignment assignment =
      assign_node_gpus({{kA, kB, kC, kD}, {kA, kB, kC, kD}, {kA, kB, kC, kD}, {kA, kB, kC, kD}});
  EXPECT_TRUE(assignment.error.empty()) << assignment.error;
  EXPECT_TRUE(assignment.same_gpus);
  EXPECT_EQ(assignment.position, (std::vector<int>{0, 1, 2, 3}));
  // Fewer workers than GPUs: the first ones are taken.
  EXPECT_EQ(assign_node_gpus({{kA, kB, kC}, {kA, kB, kC}}).position, (std::vector<int>{0, 1}));
  // One worker alone takes its first GPU.
  EXPECT_EQ(assign_node_gpus({{kC, kA}}).position, (std::vector<int>{0}));
}

// The same set listed in another order (another CUDA_DEVICE_ORDER) is still the same GPUs: the
// i-th worker takes the i-th in local rank 0's order, found by bus id in its own list.
TEST(AssignNodeGpus, TheSameGpusInAnotherOrderAreTakenByBusId) {
  const NodeAssignment assignment = assign_node_gpus({{kA, kB}, {kB, kA}});
  EXPECT_TRUE(assignment.error.empty()) << assignment.error;
  EXPECT_TRUE(assignment.same_gpus);
  EXPECT_EQ(assignment.position, (std::vector<int>{0, 0}));  // rank 0: kA; rank 1: its kB
}

TEST(AssignNodeGpus, MoreWorkersThanTheSharedGpusIsAnErrorNamingTheRanksLeftOut) {
  NodeAssignment assignment = assign_node_gpus({{kA, kB}, {kA, kB}, {kA, kB}});
  EXPECT_EQ(assignment.error,
            "3 workers on this node but only 2 usable GPU(s); start at most one worker per GPU "
            "(local rank 2 has none)");
  // Every worker sees the one same GPU (a wrapper that exported the same CUDA_VISIBLE_DEVICES).
  assignment = assign_node_gpus({{kA}, {kA}, {kA}});
  EXPECT_TRUE(contains(assignment.error, "3 workers on this node but only 1 usable GPU(s)"))
      << assignment.error;
  EXPECT_TRUE(contains(assignment.error, "(local ranks 1 and 2 have none)")) << assignment.error;
}

// srun --gpus-per-task=1 or a per-rank CUDA_VISIBLE_DEVICES: each worker sees one GPU, a
// different one, as its cuda:0.
TEST(AssignNodeGpus, EachWorkerSeeingItsOwnGpusTakesItsFirst) {
  NodeAssignment assignment = assign_node_gpus({{kA}, {kB}, {kC}, {kD}});
  EXPECT_TRUE(assignment.error.empty()) << assignment.error;
  EXPECT_FALSE(assignment.same_gpus);
  EXPECT_EQ(assignment.position, (std::vector<int>{0, 0, 0, 0}));
  // Two GPUs each (--gpus-per-task=2): the first of each.
  assignment = assign_node_gpus({{kA, kB}, {kC, kD}});
  EXPECT_TRUE(assignment.error.empty()) << assignment.error;
  EXPECT_EQ(assignment.position, (std::vector<int>{0, 0}));
}

TEST(AssignNodeGpus, TwoWorkersOnOnePhysicalGpuIsAnErrorNamingBothAndTheBusId) {
  // Ranks 0 and 1 were given the same GPU, rank 2 another.
  const NodeAssignment assignment = assign_node_gpus({{kA}, {kA, kB}, {kC}});
  EXPECT_FALSE(assignment.same_gpus);
  EXPECT_EQ(assignment.error,
            "local ranks 0 and 1 would share GPU 0000:1b:00.0 (the workers on this node see "
            "different GPUs, so each takes the first it sees; give each worker its own GPU, or "
            "every worker all of them)");
  // Three on one, and another pair on a second: every group is named.
  const std::string error = assign_node_gpus({{kA}, {kA, kB}, {kA, kC}, {kD}, {kD, kB}}).error;
  EXPECT_TRUE(contains(error,
                       "local ranks 0, 1 and 2 would share GPU 0000:1b:00.0; local ranks "
                       "3 and 4 would share GPU 0000:86:00.0"))
      << error;
}

// Sets that overlap without being equal follow the different-GPUs rule: first visible, valid
// when those differ.
TEST(AssignNodeGpus, PartlyOverlappingSetsTakeTheirFirstGpuWhenThoseDiffer) {
  NodeAssignment assignment = assign_node_gpus({{kA, kB}, {kB, kC}});
  EXPECT_TRUE(assignment.error.empty()) << assignment.error;
  EXPECT_FALSE(assignment.same_gpus);
  EXPECT_EQ(assignment.position, (std::vector<int>{0, 0}));
  assignment = assign_node_gpus({{kA, kB}, {kA, kC}});
  EXPECT_TRUE(contains(assignment.error, "local ranks 0 and 1 would share GPU 0000:1b:00.0"))
      << assignment.error;
}

// A worker with no usable GPU, or on the CPU by choice, takes no part; the others are counted
// among themselves.
TEST(AssignNodeGpus, WorkersWithoutGpusTakeNoPart) {
  NodeAssignment assignment = assign_node_gpus({{}, {kA, kB}, {kA, kB}});
  EXPECT_TRUE(assignment.error.empty()) << assignment.error;
  EXPECT_TRUE(assignment.same_gpus);
  EXPECT_EQ(assignment.position, (std::vector<int>{-1, 0, 1}));
  assignment = assign_node_gpus({{kA}, {}, {kB}});
  EXPECT_TRUE(assignment.error.empty()) << assignment.error;
  EXPECT_EQ(assignment.position, (std::vector<int>{0, -1, 0}));
  assignment = assign_node_gpus({{}, {}});
  EXPECT_TRUE(assignment.error.empty());
  EXPECT_EQ(assignment.position, (std::vector<int>{-1, -1}));
  EXPECT_TRUE(assign_node_gpus({}).position.empty());
}

TEST(BusIds, JoinAndSplitRoundTrip) {
  for (const std::vector<std::string>& ids :
       {std::vector<std::string>{}, std::vector<std::string>{kA},
        std::vector<std::string>{kA, kB, kC}}) {
    EXPECT_EQ(split_bus_ids(join_bus_ids(ids)), ids);
  }
  EXPECT_EQ(join_bus_ids({kA, kB}), "0000:1b:00.0,0000:3b:00.0");
  EXPECT_TRUE(split_bus_ids("").empty());
}

}  // namespace
}  // namespace dpt
