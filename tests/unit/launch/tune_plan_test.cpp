// Tests for launch/tune_plan: each decision of `dpt tune` against hand-computed values (memory
// fit and largest batch, accumulation split, candidates, throughput pick, lr rules, schedule
// rescaling, the CPU budget) and the LR range test's smoothing and pick on synthetic curves.
#include "launch/tune_plan.h"

#include <gtest/gtest.h>

#include <cmath>

#include "devices/error.h"

namespace dpt {
namespace {

TEST(TunePlanTest, MemoryFitIsTheLineThroughTwoMeasurements) {
  // 1 000 000 fixed + 3 000 per sample, measured at 16 and 32.
  const MemoryFit fit = fit_memory(16, 1'048'000, 32, 1'096'000);
  EXPECT_DOUBLE_EQ(fit.per_sample_bytes, 3000);
  EXPECT_DOUBLE_EQ(fit.fixed_bytes, 1'000'000);
  EXPECT_DOUBLE_EQ(fit.bytes_at(200), 1'600'000);
  // One point: all of it counts as fixed.
  const MemoryFit one = fit_memory(1, 5000, 1, 5000);
  EXPECT_DOUBLE_EQ(one.fixed_bytes, 5000);
  EXPECT_DOUBLE_EQ(one.per_sample_bytes, 0);
  EXPECT_THROW(fit_memory(32, 1, 16, 2), Error);
}

TEST(TunePlanTest, LargestBatchIsExactAtTheBoundary) {
  const MemoryFit fit{1'000'000, 3000};
  EXPECT_EQ(largest_fitting_batch(fit, 1'600'000, 100'000), 200);  // (1.6M - 1M) / 3000
  EXPECT_EQ(largest_fitting_batch(fit, 1'599'999, 100'000), 199);
  EXPECT_EQ(largest_fitting_batch(fit, 1'602'999, 100'000), 200);
  EXPECT_EQ(largest_fitting_batch(fit, 1'600'000, 150), 150);    // the cap
  EXPECT_EQ(largest_fitting_batch(fit, 1'002'999, 100'000), 0);  // not even 1
  EXPECT_EQ(largest_fitting_batch(fit, 1'003'000, 100'000), 1);
  EXPECT_EQ(largest_fitting_batch(MemoryFit{10, 0}, 10, 77), 77);
}

TEST(TunePlanTest, AccumulationUsesTheFewestEqualMicroBatchesThatFit) {
  // 500 rows, at most 200 per pass: 3 steps do not divide 500, 4 steps of 125 do.
  Accumulation a = plan_accumulation(500, 200);
  EXPECT_EQ(a.steps, 4);
  EXPECT_EQ(a.micro, 125);
  a = plan_accumulation(64, 64);
  EXPECT_EQ(a.steps, 1);
  EXPECT_EQ(a.micro, 64);
  a = plan_accumulation(7, 3);  // a prime: only single rows divide it
  EXPECT_EQ(a.steps, 7);
  EXPECT_EQ(a.micro, 1);
  a = plan_accumulation(96, 40);  // 3 steps of 32
  EXPECT_EQ(a.steps, 3);
  EXPECT_EQ(a.micro, 32);
}

TEST(TunePlanTest, CandidatesArePowersOfTwoInRange) {
  EXPECT_EQ(candidate_batches(3, 40), (std::vector<int64_t>{4, 8, 16, 32}));
  EXPECT_EQ(candidate_batches(1, 4), (std::vector<int64_t>{1, 2, 4}));
  EXPECT_EQ(candidate_batches(3, 3), (std::vector<int64_t>{3}));
}

TEST(TunePlanTest, ThroughputPickIsTheSmallestBatchNearTheBest) {
  std::vector<BatchTiming> table;
  const double rates[] = {100, 200, 400, 800, 1500, 2800, 3900, 4000, 3950};
  for (int i = 0; i < 9; ++i) table.push_back({int64_t{1} << i, 0, rates[i], 0});
  EXPECT_EQ(fastest(table), 7u);                             // batch 128: 4000/s
  EXPECT_EQ(table[pick_throughput(table, 0.05)].batch, 64);  // 3900 >= 0.95 x 4000 = 3800
  // 0.98 x 4000 = 3920: 64 (3900) is out, 256 (3950) is in but larger than 128.
  EXPECT_EQ(table[pick_throughput(table, 0.02)].batch, 128);
}

TEST(TunePlanTest, ThroughputPickWithZeroToleranceIsTheFastest) {
  std::vector<BatchTiming> table = {{1, 0, 10, 0}, {2, 0, 30, 0}, {4, 0, 29.5, 0}};
  EXPECT_EQ(table[pick_throughput(table, 0.0)].batch, 2);
  EXPECT_EQ(table[pick_throughput(table, 0.5)].batch, 2);  // 10 < 15
  EXPECT_EQ(table[pick_throughput(table, 0.7)].batch, 1);  // 10 >= 9
}

TEST(TunePlanTest, LrRules) {
  proto::OptimizerConfig sgd, adam, adamw;
  sgd.mutable_sgd();
  adam.mutable_adam();
  adamw.mutable_adamw();
  EXPECT_EQ(resolve_lr_scaling(proto::LR_SCALING_AUTO, sgd), proto::LR_SCALING_LINEAR);
  EXPECT_EQ(resolve_lr_scaling(proto::LR_SCALING_AUTO, adam), proto::LR_SCALING_SQRT);
  EXPECT_EQ(resolve_lr_scaling(proto::LR_SCALING_AUTO, adamw), proto::LR_SCALING_SQRT);
  EXPECT_EQ(resolve_lr_scaling(proto::LR_SCALING_LINEAR, adam), proto::LR_SCALING_LINEAR);
  EXPECT_DOUBLE_EQ(scale_lr(0.1, 4, proto::LR_SCALING_LINEAR), 0.4);
  EXPECT_DOUBLE_EQ(scale_lr(0.1, 4, proto::LR_SCALING_SQRT), 0.2);
  EXPECT_DOUBLE_EQ(scale_lr(0.1, 0.25, proto::LR_SCALING_SQRT), 0.05);
  EXPECT_DOUBLE_EQ(scale_lr(0.1, 4, proto::LR_SCALING_NONE), 0.1);
  EXPECT_THROW(scale_lr(0.1, 4, proto::LR_SCALING_AUTO), Error);
}

TEST(TunePlanTest, StepsPerEpochCountsLikeTheTrainer) {
  EXPECT_EQ(steps_per_epoch(1000, 300, true), 3);
  EXPECT_EQ(steps_per_epoch(1000, 300, false), 4);
}

TEST(TunePlanTest, ScheduleStepCountsCoverTheSameSamples) {
  proto::LrScheduleConfig schedule;
  schedule.set_warmup_steps(200);
  schedule.set_total_steps(1000);
  for (int64_t m : {100, 200, 201}) schedule.mutable_multistep()->add_milestones(m);
  const std::vector<std::string> notes = rescale_schedule(schedule, 4.0);
  EXPECT_EQ(schedule.warmup_steps(), 50);
  EXPECT_EQ(schedule.total_steps(), 250);
  // 201 / 4 rounds to 50, which must stay above the previous milestone.
  EXPECT_EQ(std::vector<int64_t>(schedule.multistep().milestones().begin(),
                                 schedule.multistep().milestones().end()),
            (std::vector<int64_t>{25, 50, 51}));
  ASSERT_EQ(notes.size(), 3u);
  EXPECT_EQ(notes[0], "optimizer.schedule.warmup_steps: 200 -> 50");
  EXPECT_EQ(notes[2], "optimizer.schedule.multistep.milestones: [100, 200, 201] -> [25, 50, 51]");

  proto::LrScheduleConfig step;
  step.mutable_step()->set_step_size(100);
  rescale_schedule(step, 3.0);
  EXPECT_EQ(step.step().step_size(), 33);
  proto::LrScheduleConfig exponential;
  exponential.mutable_exponential()->set_gamma(0.99f);
  rescale_schedule(exponential, 2.0);  // one step now does what two did: 0.99^2
  EXPECT_FLOAT_EQ(exponential.exponential().gamma(), 0.9801f);
  proto::LrScheduleConfig unchanged;
  EXPECT_TRUE(rescale_schedule(unchanged, 8.0).empty());  // nothing counted in steps
  EXPECT_EQ(unchanged.warmup_steps(), 0);
}

TEST(TunePlanTest, CpuBudgetSharesMemAvailableAndSubtractsTheData) {
  // 0.8 x 10 GiB / 2 workers = 4 GiB each, less 100 MiB of data.
  EXPECT_EQ(cpu_memory_budget(int64_t{10} << 30, 0.8, 2, int64_t{100} << 20),
            (int64_t{4} << 30) - (int64_t{100} << 20));
  EXPECT_LT(cpu_memory_budget(1000, 0.5, 1, 600), 0);
}

TEST(TunePlanTest, SweepIsGeometric) {
  const std::vector<double> lrs = lr_sweep(1e-4, 1, 5);
  ASSERT_EQ(lrs.size(), 5u);
  const double expected[] = {1e-4, 1e-3, 1e-2, 1e-1, 1};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(lrs[i], expected[i], expected[i] * 1e-12);
}

TEST(TunePlanTest, SmootherIsTheBiasCorrectedAverage) {
  // A constant loss stays itself from the first point on (that is what the correction is for).
  LossSmoother constant;
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(constant.add(2.5), 2.5, 1e-12);
  // Against the closed form: sum_i (1 - b) b^(n - i) x_i / (1 - b^n).
  const double beta = 0.9, xs[] = {4, 1, 3, 2};
  LossSmoother smoother(beta);
  for (int n = 1; n <= 4; ++n) {
    double sum = 0;
    for (int i = 1; i <= n; ++i) sum += (1 - beta) * std::pow(beta, n - i) * xs[i - 1];
    EXPECT_NEAR(smoother.add(xs[n - 1]), sum / (1 - std::pow(beta, n)), 1e-12) << n;
  }
}

TEST(TunePlanTest, RangeTestPicksTheMinimumOverTenAndReportsTheSteepestDescent) {
  // Smoothed loss (given directly) falls slowly, then steeply around lr 1e-3, bottoms out at
  // 1e-2 and turns up.
  const double lrs[] = {1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1};
  const double smoothed[] = {2.30, 2.25, 1.20, 0.80, 1.50, 9.00};
  std::vector<LrPoint> points;
  for (int i = 0; i < 6; ++i) points.push_back({lrs[i], smoothed[i], smoothed[i]});
  const LrPick pick = pick_lr(points);
  EXPECT_EQ(pick.min_index, 3u);
  EXPECT_DOUBLE_EQ(pick.lr, 1e-3);
  // Central differences per decade: (1.20-2.30)/2, (0.80-2.25)/2, (1.50-1.20)/2, (9-0.8)/2:
  // steepest at index 2 (lr 1e-3).
  EXPECT_EQ(pick.steepest_index, 2u);
}

TEST(TunePlanTest, RangeTestThatDivergesAtOnceNamesLrMin) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<LrPoint> points = {{1e-3, 2.0, 2.0}, {2e-3, inf, inf}};
  try {
    pick_lr(points);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find("tune.lr_min"), std::string::npos) << e.what();
  }
  // Points after the first non-finite one are not considered.
  points = {{1, 3, 3}, {2, 2, 2}, {3, 1.5, 1.5}, {4, inf, inf}, {5, 0.1, 0.1}};
  EXPECT_EQ(pick_lr(points).min_index, 2u);
}

}  // namespace
}  // namespace dpt
