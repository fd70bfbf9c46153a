// How workers on one node split its CPUs, and what select_device does with the split.
#include <gtest/gtest.h>
#include <sched.h>

#include <numeric>

#include "devices/cpu_device.h"
#include "launch/device_select.h"

namespace dpt {
namespace {

std::vector<int> range(int first, int count) {
  std::vector<int> v(static_cast<std::size_t>(count));
  std::iota(v.begin(), v.end(), first);
  return v;
}

TEST(CpusForWorker, SplitsIntoContiguousNearlyEqualGroupsCoveringEveryCpu) {
  const std::vector<int> cpus = {0, 1, 2, 3, 8, 9, 10};  // 7 CPUs, not contiguous ids
  std::vector<int> seen;
  for (int rank = 0; rank < 3; ++rank) {
    const std::vector<int> mine = cpus_for_worker(cpus, rank, 3);
    EXPECT_GE(mine.size(), 2u);
    EXPECT_LE(mine.size(), 3u);
    seen.insert(seen.end(), mine.begin(), mine.end());
  }
  EXPECT_EQ(seen, cpus);  // each CPU exactly once, in order
  EXPECT_EQ(cpus_for_worker(range(0, 4), 1, 2), (std::vector<int>{2, 3}));
  EXPECT_EQ(cpus_for_worker(range(0, 4), 0, 1), range(0, 4));
}

TEST(CpusForWorker, FewerCpusThanWorkersGivesNoPinning) {
  EXPECT_TRUE(cpus_for_worker(range(0, 2), 0, 4).empty());
  EXPECT_TRUE(cpus_for_worker(range(0, 2), 3, 4).empty());
}

TEST(SelectDevice, OversubscribedWorkersUseOneThreadEachAndSayWhy) {
  cpu_set_t before;
  ASSERT_EQ(sched_getaffinity(0, sizeof(before), &before), 0);
  WorldInfo world;
  world.size = world.local_size = CPU_COUNT(&before) + 1;  // more workers than CPUs
  world.rank = world.local_rank = 1;
  const DeviceChoice choice = select_device(proto::DeviceConfig(), world);
  EXPECT_EQ(static_cast<CpuDevice&>(*choice.device).threads(), 1);
  EXPECT_NE(choice.reason.find("share"), std::string::npos) << choice.reason;
  cpu_set_t after;
  ASSERT_EQ(sched_getaffinity(0, sizeof(after), &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after));  // not pinned
}

TEST(SelectDevice, LauncherBoundWorkersKeepTheirCpus) {
  WorldInfo world;
  world.size = world.local_size = 2;
  world.local_affinity_shared = false;
  const DeviceChoice choice = select_device(proto::DeviceConfig(), world);
  EXPECT_NE(choice.reason.find("launcher bound"), std::string::npos) << choice.reason;
}

}  // namespace
}  // namespace dpt
