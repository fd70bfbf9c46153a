// Straggler windows: the slowest rank against the (lower) median, and the whole-run statistics
// over a thread world where one rank is made slow.
#include "launch/straggler.h"

#include <gtest/gtest.h>

#include <thread>

#include "comm/thread_world.h"

namespace dpt {
namespace {

TEST(MakeWindow, FindsTheSlowestRankAgainstTheMedian) {
  // {compute, wait} per rank: rank 2 computes 3x the median, the others wait for it.
  const RankWindow w = make_window({10, 20, 11, 19, 30, 0, 10, 20}, 1.25);
  EXPECT_EQ(w.slowest, 2);
  EXPECT_DOUBLE_EQ(w.ratio, 3.0);  // lower median of {10, 10, 11, 30} is 10
  EXPECT_TRUE(w.straggler);
  EXPECT_EQ(w.wait_ms, (std::vector<double>{20, 19, 0, 20}));
  // Two ranks: the lower median is the faster one, so the slow one still shows.
  EXPECT_TRUE(make_window({10, 5, 20, 0}, 1.25).straggler);
  EXPECT_FALSE(make_window({10, 0, 11, 0}, 1.25).straggler);
  EXPECT_FALSE(make_window({10, 0}, 1.25).straggler);  // one rank: nobody to wait
}

TEST(StragglerMonitor, WindowsAndFinalStatsAgreeOnEveryRank) {
  ThreadWorld world(3, CommOptions{10.0});
  std::vector<std::vector<RankWindow>> windows(3);
  std::vector<std::vector<RankStats>> stats(3);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 3; ++rank) {
    threads.emplace_back([&, rank] {
      auto comm = world.communicator(rank);
      StragglerMonitor monitor(*comm, 4, 1.5);
      for (int64_t step = 1; step <= 10; ++step) {
        // Rank 1 computes 40 ms a step, the others 10 ms and then wait 30 ms for it.
        const double step_s = 0.040, wait_s = rank == 1 ? 0.0 : 0.030;
        if (auto w = monitor.record(step, step_s + (step == 10 ? 0.1 : 0), wait_s)) {
          windows[rank].push_back(*w);
        }
      }
      stats[rank] = monitor.final_stats();
    });
  }
  for (auto& thread : threads) thread.join();
  for (int rank = 0; rank < 3; ++rank) {
    ASSERT_EQ(windows[rank].size(), 2u);  // steps 4 and 8
    EXPECT_EQ(windows[rank][1].first_step, 4);
    EXPECT_EQ(windows[rank][1].last_step, 8);
    EXPECT_EQ(windows[rank][0].slowest, 1);
    EXPECT_NEAR(windows[rank][0].ratio, 4.0, 1e-9);
    EXPECT_TRUE(windows[rank][0].straggler);
    ASSERT_EQ(stats[rank].size(), 3u);
    EXPECT_NEAR(stats[rank][1].mean_ms, 50.0, 1e-3);  // (9 x 40 + 140) / 10
    EXPECT_NEAR(stats[rank][1].p99_ms, 140.0, 1e-3);  // nearest rank: the slowest step
    EXPECT_NEAR(stats[rank][0].wait_mean_ms, 30.0, 1e-3);
  }
}

}  // namespace
}  // namespace dpt
