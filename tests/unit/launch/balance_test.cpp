// Throughput-balanced shares (launch/balance.h): the apportionment against hand-computed splits
// (largest remainder, ties, at least one row, bad rates refused naming the rank), and the
// Balancer's schedule over a thread world with made-up timings: warm-up steps not measured, the
// decision on the same step with the same shares on every rank, re-balancing, restored shares.
#include "launch/balance.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <thread>

#include "comm/thread_world.h"
#include "core/random.h"
#include "devices/error.h"

namespace dpt {
namespace {

using Counts = std::vector<int64_t>;

std::string error_of(int64_t total, const std::vector<double>& weights) {
  try {
    apportion(total, weights);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInternal);
    return e.what();
  }
  return "";
}

proto::CommConfig throughput(int64_t warmup, int64_t steps, int64_t every) {
  proto::CommConfig config;
  config.set_balance(proto::BALANCE_THROUGHPUT);
  config.set_balance_warmup_steps(warmup);
  config.set_balance_steps(steps);
  config.set_rebalance_every_steps(every);
  return config;
}

TEST(Apportion, HandComputedSplits) {
  EXPECT_EQ(apportion(10, {1, 1}), (Counts{5, 5}));
  EXPECT_EQ(apportion(8, {3, 1}), (Counts{6, 2}));
  // 10/3 each: one row left over, ties go to the lower rank.
  EXPECT_EQ(apportion(10, {1, 1, 1}), (Counts{4, 3, 3}));
  // Quotas 3.5, 1.75, 1.75: floors 3, 1, 1; the two largest remainders (.75) get the 2 rows.
  EXPECT_EQ(apportion(7, {2, 1, 1}), (Counts{3, 2, 2}));
  // Quotas 34.29, 17.14, 8.57: the largest remainder is rank 2's.
  EXPECT_EQ(apportion(60, {1000, 500, 250}), (Counts{34, 17, 9}));
  // Only the proportions matter.
  EXPECT_EQ(apportion(60, {1e-6, 0.5e-6, 0.25e-6}), (Counts{34, 17, 9}));
  EXPECT_EQ(apportion(0, {1, 2}), (Counts{0, 0}));
}

TEST(Apportion, EveryRankGetsAtLeastOneRowWhenThereAreEnough) {
  // Quotas 9.99 and 0.01: rank 1 would get none; it takes one from rank 0.
  EXPECT_EQ(apportion(10, {1000, 1}), (Counts{9, 1}));
  EXPECT_EQ(apportion(3, {1e6, 1, 1}), (Counts{1, 1, 1}));
  // Two starved ranks take from the largest each time (ties: the lower rank).
  EXPECT_EQ(apportion(6, {1e6, 1e6, 1, 1}), (Counts{2, 2, 1, 1}));
  // Fewer rows than ranks: no minimum, plain largest remainder.
  EXPECT_EQ(apportion(1, {20, 4}), (Counts{1, 0}));
}

TEST(Apportion, SumsToTheTotalForRandomRates) {
  RandomStream random(11, 0);
  for (int trial = 0; trial < 500; ++trial) {
    const int n = 1 + static_cast<int>(random.below(9));
    std::vector<double> rates;
    for (int r = 0; r < n; ++r) rates.push_back(std::exp(8 * random.uniform() - 4));
    const int64_t total = static_cast<int64_t>(random.below(1000));
    const Counts counts = apportion(total, rates);
    ASSERT_EQ(std::accumulate(counts.begin(), counts.end(), int64_t{0}), total);
    const double sum = std::accumulate(rates.begin(), rates.end(), 0.0);
    const double smallest = *std::min_element(rates.begin(), rates.end());
    for (int r = 0; r < n; ++r) {
      if (total >= n) {
        ASSERT_GE(counts[r], 1);
      }
      // When no rank's quota is below one row, each count is within one row of its quota.
      const double quota = static_cast<double>(total) * rates[r] / sum;
      if (static_cast<double>(total) * smallest / sum >= 1) {
        ASSERT_LT(std::fabs(static_cast<double>(counts[r]) - quota), 1.0);
      }
    }
  }
}

TEST(Apportion, RatesThatAreNotPositiveAndFiniteAreRefusedNamingTheRank) {
  EXPECT_NE(error_of(10, {1, 0}).find("rank 1 has weight 0"), std::string::npos);
  EXPECT_NE(error_of(10, {std::nan(""), 1}).find("rank 0 has weight nan"), std::string::npos);
  EXPECT_NE(error_of(10, {1, 2, -3}).find("rank 2 has weight -3"), std::string::npos);
  EXPECT_NE(error_of(10, {1, std::numeric_limits<double>::infinity()}).find("rank 1"),
            std::string::npos);
  EXPECT_NE(error_of(10, {}).find("between 0 ranks"), std::string::npos);
}

TEST(Shares, EqualSharesAndShardsCoverTheBatchInOrder) {
  EXPECT_EQ(equal_shares(25, 2), (Counts{12, 13}));
  EXPECT_EQ(equal_shares(24, 3), (Counts{8, 8, 8}));
  const Counts counts{5, 0, 3};
  EXPECT_EQ(shard_in(counts, 0).begin, 0);
  EXPECT_EQ(shard_in(counts, 0).end, 5);
  EXPECT_EQ(shard_in(counts, 1).begin, 5);
  EXPECT_EQ(shard_in(counts, 1).end, 5);
  EXPECT_EQ(shard_in(counts, 2).begin, 5);
  EXPECT_EQ(shard_in(counts, 2).end, 8);
}

TEST(Balancer, MeasuresAfterWarmUpAndDecidesTheSameSharesOnEveryRank) {
  constexpr int kWorld = 3;
  ThreadWorld world(kWorld, CommOptions{10.0});
  std::vector<std::vector<BalanceDecision>> decisions(kWorld);
  std::vector<Counts> final_shares(kWorld);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < kWorld; ++rank) {
    threads.emplace_back([&, rank] {
      auto comm = world.communicator(rank);
      Balancer balancer(throughput(1, 2, 3), kWorld, 60, 0, {});
      EXPECT_FALSE(balancer.balanced());
      EXPECT_EQ(balancer.shares(), (Counts{20, 20, 20}));
      for (int64_t step = 1; step <= 8; ++step) {
        // Seconds per row: 1, 2, 4 ms; from step 4 on rank 2 speeds up to 1 ms. Step 1 is the
        // warm-up: rank 0's 100 s there must not count.
        const double per_row[kWorld] = {1e-3, 2e-3, step >= 4 ? 1e-3 : 4e-3};
        const Shard shard = balancer.shard(60, rank);
        const int64_t rows = shard.end - shard.begin;
        const double seconds = step == 1 && rank == 0 ? 100.0 : per_row[rank] * rows;
        if (auto decision = balancer.record(*comm, step, seconds, rows)) {
          decisions[rank].push_back(*decision);
        }
      }
      final_shares[rank] = balancer.shares();
      EXPECT_TRUE(balancer.balanced());
    });
  }
  for (auto& thread : threads) thread.join();
  for (int rank = 0; rank < kWorld; ++rank) {
    ASSERT_EQ(decisions[rank].size(), 2u) << "steps 3 and 6";
    const BalanceDecision& first = decisions[rank][0];
    EXPECT_EQ(first.first_step, 1);
    EXPECT_EQ(first.last_step, 3);
    EXPECT_NEAR(first.samples_per_s[0], 1000, 1e-6);
    EXPECT_NEAR(first.samples_per_s[1], 500, 1e-6);
    EXPECT_NEAR(first.samples_per_s[2], 250, 1e-6);
    EXPECT_EQ(first.previous, (Counts{20, 20, 20}));
    EXPECT_EQ(first.shares, (Counts{34, 17, 9}));
    const BalanceDecision& second = decisions[rank][1];
    EXPECT_EQ(second.first_step, 3);
    EXPECT_EQ(second.last_step, 6);
    EXPECT_EQ(second.previous, (Counts{34, 17, 9}));
    EXPECT_EQ(second.shares, (Counts{24, 12, 24}));
    EXPECT_EQ(final_shares[rank], (Counts{24, 12, 24}));
  }
  EXPECT_EQ(describe(decisions[0][0]),
            "balance: steps 2-3 measured 1000, 500, 250 samples/s per rank; shares 34, 17, 9 of "
            "60 rows (were 20, 20, 20)");
}

TEST(Balancer, ARankThatCannotBeMeasuredStopsEveryRankNamingIt) {
  ThreadWorld world(2, CommOptions{10.0});
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      auto comm = world.communicator(rank);
      Balancer balancer(throughput(0, 1, 0), 2, 8, 0, {});
      try {
        balancer.record(*comm, 1, rank == 1 ? 0.0 : 0.01, 4);
      } catch (const Error& e) {
        errors[rank] = e.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const std::string& error : errors) {
    EXPECT_NE(error.find("balance: rank 1 computed 4 rows in 0 s over steps 1-1"),
              std::string::npos)
        << error;
  }
}

TEST(Balancer, RestoredSharesAreKeptWhenTheyFitElseMeasuredAgain) {
  ThreadWorld world(1, CommOptions{10.0});
  auto comm = world.communicator(0);
  Balancer kept(throughput(2, 5, 0), 2, 24, 10, {20, 4});
  EXPECT_TRUE(kept.balanced());
  EXPECT_EQ(kept.shares(), (Counts{20, 4}));
  ASSERT_EQ(kept.notes().size(), 1u);
  EXPECT_EQ(kept.notes()[0], "balance: continuing with the checkpoint's shares 20, 4 of 24 rows");
  // No re-balancing configured: no step is a collective.
  for (int64_t step = 11; step <= 40; ++step) EXPECT_FALSE(kept.record(*comm, step, 1.0, 20));
  // A smaller last batch is split in the shares' proportions; with fewer rows than ranks a rank
  // may get none.
  EXPECT_EQ(kept.shard(24, 1).begin, 20);
  EXPECT_EQ(kept.shard(12, 0).end, 10);
  EXPECT_EQ(kept.shard(12, 1).begin, 10);
  EXPECT_EQ(kept.shard(12, 1).end, 12);
  EXPECT_EQ(kept.shard(1, 1).begin, kept.shard(1, 1).end);

  Balancer other_world(throughput(2, 5, 0), 3, 24, 10, {20, 4});
  EXPECT_FALSE(other_world.balanced());
  EXPECT_EQ(other_world.shares(), (Counts{8, 8, 8}));
  ASSERT_EQ(other_world.notes().size(), 1u);
  EXPECT_EQ(other_world.notes()[0],
            "balance: the checkpoint's shares 20, 4 are for 2 workers, this run has 3; measuring "
            "again");

  proto::CommConfig equal;
  Balancer off(equal, 2, 24, 10, {20, 4});
  EXPECT_FALSE(off.balanced());
  EXPECT_EQ(off.shares(), (Counts{12, 12}));
  EXPECT_EQ(off.shard(13, 1).begin, 6);  // shard_of's rule
  for (int64_t step = 11; step <= 40; ++step) EXPECT_FALSE(off.record(*comm, step, 1.0, 12));
}

}  // namespace
}  // namespace dpt
