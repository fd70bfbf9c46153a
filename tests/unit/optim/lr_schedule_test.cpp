// lr_at() against hand values at every boundary: step 0, the last warmup step, the first
// post-warmup step, milestones exactly, total_steps - 1, total_steps and beyond; degenerate run
// lengths; and the errors naming each invalid field.
#include "optim/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "devices/error.h"

namespace dpt {
namespace {

constexpr double kBase = 0.1;

// Checks lr_at(schedule, 0.1, step, total) for each {step, expected} pair. Float config fields
// (gamma 0.1f, ...) are off from the decimal by ~1e-8 relative.
void expect_lrs(const proto::LrScheduleConfig& schedule, int64_t total,
                const std::vector<std::pair<int64_t, double>>& expected) {
  for (const auto& [step, lr] : expected) {
    EXPECT_NEAR(lr_at(schedule, kBase, step, total), lr, 1e-7 * lr + 1e-15) << "step " << step;
  }
}

proto::LrScheduleConfig with_warmup(int64_t steps, float start_factor) {
  proto::LrScheduleConfig schedule;
  schedule.set_warmup_steps(steps);
  schedule.set_warmup_start_factor(start_factor);
  return schedule;
}

TEST(LrSchedule, ConstantWithAndWithoutKind) {
  proto::LrScheduleConfig schedule;
  expect_lrs(schedule, 0, {{0, 0.1}, {1, 0.1}, {1000000, 0.1}});
  schedule.mutable_constant();
  expect_lrs(schedule, 10, {{0, 0.1}, {10, 0.1}, {11, 0.1}});
}

TEST(LrSchedule, LinearWarmupFromStartFactor) {
  // 0.25 + 0.75 * step / 4.
  proto::LrScheduleConfig schedule = with_warmup(4, 0.25f);
  expect_lrs(schedule, 0,
             {{0, 0.025}, {1, 0.04375}, {2, 0.0625}, {3, 0.08125}, {4, 0.1}, {5, 0.1}});
  schedule.mutable_constant();
  expect_lrs(schedule, 0, {{0, 0.025}, {3, 0.08125}, {4, 0.1}});
  expect_lrs(with_warmup(4, 0), 0, {{0, 0.0}, {2, 0.05}, {4, 0.1}});
  expect_lrs(with_warmup(4, 1), 0, {{0, 0.1}, {3, 0.1}});
}

TEST(LrSchedule, StepDecaysEveryStepSizeFromStepZero) {
  proto::LrScheduleConfig schedule;
  schedule.mutable_step()->set_step_size(3);
  schedule.mutable_step()->set_gamma(0.5f);
  expect_lrs(schedule, 0, {{0, 0.1}, {2, 0.1}, {3, 0.05}, {5, 0.05}, {6, 0.025}, {9, 0.0125}});
  // Warmup multiplies; the decay still counts from step 0.
  schedule.set_warmup_steps(2);
  schedule.set_warmup_start_factor(0.5f);
  expect_lrs(schedule, 0, {{0, 0.05}, {1, 0.075}, {2, 0.1}, {3, 0.05}});
}

TEST(LrSchedule, MultiStepDecaysAtEachMilestone) {
  proto::LrScheduleConfig schedule;
  schedule.mutable_multistep()->add_milestones(2);
  schedule.mutable_multistep()->add_milestones(5);
  expect_lrs(schedule, 0, {{0, 0.1}, {1, 0.1}, {2, 0.01}, {4, 0.01}, {5, 0.001}, {1000, 0.001}});
}

TEST(LrSchedule, ExponentialDecaysEveryStep) {
  proto::LrScheduleConfig schedule;
  schedule.mutable_exponential()->set_gamma(0.5f);
  expect_lrs(schedule, 0, {{0, 0.1}, {1, 0.05}, {3, 0.0125}});
  schedule.set_warmup_steps(2);
  expect_lrs(schedule, 0, {{0, 0.0}, {1, 0.025}, {2, 0.025}});
}

TEST(LrSchedule, CosineOverThePostWarmupSpan) {
  proto::LrScheduleConfig schedule = with_warmup(2, 0);
  schedule.mutable_cosine()->set_final_lr_fraction(0.1f);
  // t = (step - 2) / 8; lr = 0.1 * (0.1 + 0.9 * 0.5 * (1 + cos(pi t))).
  const std::vector<std::pair<int64_t, double>> expected = {{0, 0.0},    {1, 0.05},
                                                            {2, 0.1},    {3, 0.09657457896300792},
                                                            {6, 0.055},  {9, 0.013425421036992097},
                                                            {10, 0.01},  {11, 0.01},
                                                            {1000, 0.01}};
  expect_lrs(schedule, 10, expected);
  // The config's total_steps, when set, wins over the argument.
  schedule.set_total_steps(10);
  expect_lrs(schedule, 1000, expected);
}

TEST(LrSchedule, PolynomialDecay) {
  proto::LrScheduleConfig schedule;
  schedule.mutable_polynomial()->set_power(2);
  // 0.1 * (1 - step / 4)^2.
  expect_lrs(schedule, 4, {{0, 0.1}, {1, 0.05625}, {2, 0.025}, {3, 0.00625}, {4, 0.0}, {5, 0.0}});

  schedule = with_warmup(2, 0.5f);
  schedule.mutable_polynomial()->set_power(1);
  schedule.mutable_polynomial()->set_final_lr_fraction(0.5f);
  expect_lrs(schedule, 6,
             {{0, 0.05}, {1, 0.075}, {2, 0.1}, {4, 0.075}, {5, 0.0625}, {6, 0.05}, {7, 0.05}});
}

TEST(LrSchedule, WarmupStableDecay) {
  proto::LrScheduleConfig schedule = with_warmup(2, 0);
  schedule.mutable_wsd()->set_decay_fraction(0.3f);
  schedule.mutable_wsd()->set_final_lr_fraction(0.1f);
  // Decay over round(0.3 * 10) = 3 steps from step 9: 0.1 * (0.1 + 0.9 * (1 - (step - 9) / 3)).
  expect_lrs(schedule, 12,
             {{0, 0.0},
              {1, 0.05},
              {2, 0.1},
              {8, 0.1},
              {9, 0.1},
              {10, 0.07},
              {11, 0.04},
              {12, 0.01},
              {50, 0.01}});
}

TEST(LrSchedule, WarmupStableDecayRoundsTheDecayLength) {
  proto::LrScheduleConfig schedule;
  // round(0.25 * 10) = round(2.5) = 3 decay steps, from step 7.
  schedule.mutable_wsd()->set_decay_fraction(0.25f);
  expect_lrs(schedule, 10, {{6, 0.1}, {7, 0.1}, {8, 0.1 * 2 / 3}, {9, 0.1 / 3}, {10, 0.0}});
  // round(0.01 * 10) = 0 decay steps: lr up to total_steps, then the final value.
  schedule.mutable_wsd()->set_decay_fraction(0.01f);
  schedule.mutable_wsd()->set_final_lr_fraction(0.5f);
  expect_lrs(schedule, 10, {{9, 0.1}, {10, 0.05}, {11, 0.05}});
  // decay_fraction 1: linear from the end of warmup.
  schedule.mutable_wsd()->set_decay_fraction(1);
  schedule.mutable_wsd()->set_final_lr_fraction(0);
  expect_lrs(schedule, 4, {{0, 0.1}, {1, 0.075}, {2, 0.05}, {4, 0.0}});
}

TEST(LrSchedule, DecayIsOverAfterWarmupWhenTotalStepsDoesNotExceedIt) {
  for (int kind = 0; kind < 3; ++kind) {
    proto::LrScheduleConfig schedule = with_warmup(5, 0);
    if (kind == 0) schedule.mutable_cosine()->set_final_lr_fraction(0.2f);
    if (kind == 1) schedule.mutable_polynomial()->set_final_lr_fraction(0.2f);
    if (kind == 2) schedule.mutable_wsd()->set_final_lr_fraction(0.2f);
    SCOPED_TRACE("kind " + std::to_string(kind));
    for (int64_t total : {0, 3, 5}) {
      expect_lrs(schedule, total, {{0, 0.0}, {4, 0.08}, {5, 0.02}, {100, 0.02}});
    }
  }
}

TEST(LrSchedule, RejectsInvalidFieldsNamingThem) {
  auto expect_error = [](const proto::LrScheduleConfig& schedule, const std::string& text,
                         ErrorKind kind = ErrorKind::kConfig, int64_t step = 0) {
    try {
      lr_at(schedule, kBase, step, 10);
      ADD_FAILURE() << "accepted; expected: " << text;
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), kind) << error.what();
      EXPECT_NE(std::string(error.what()).find(text), std::string::npos) << error.what();
    }
  };
  proto::LrScheduleConfig schedule;
  expect_error(schedule, "lr_at: step = -1 is negative", ErrorKind::kInternal, -1);
  EXPECT_THROW(lr_at(schedule, 0, 0, 10), Error);
  try {
    lr_at(schedule, -0.5, 0, 10);
    ADD_FAILURE() << "negative base_lr accepted";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), "optimizer.lr: must be > 0 (got -0.5)");
  }
  expect_error(with_warmup(-1, 0), "optimizer.schedule.warmup_steps: must be >= 0 (got -1)");
  expect_error(with_warmup(2, 1.5f),
               "optimizer.schedule.warmup_start_factor: must be in [0, 1] (got 1.5)");
  schedule.set_total_steps(-3);
  expect_error(schedule, "optimizer.schedule.total_steps: must be >= 0 (got -3)");

  proto::LrScheduleConfig step;
  step.mutable_step()->set_step_size(0);
  expect_error(step, "optimizer.schedule.step.step_size: must be > 0 (got 0)");
  step.mutable_step()->set_step_size(2);
  step.mutable_step()->set_gamma(1.5f);
  expect_error(step, "optimizer.schedule.step.gamma: must be in (0, 1] (got 1.5)");

  proto::LrScheduleConfig multistep;
  multistep.mutable_multistep()->add_milestones(5);
  multistep.mutable_multistep()->add_milestones(5);
  expect_error(multistep,
               "optimizer.schedule.multistep.milestones[1]: must be > 5 (the previous milestone) "
               "(got 5)");
  multistep.mutable_multistep()->set_milestones(0, 0);
  expect_error(multistep, "optimizer.schedule.multistep.milestones[0]: must be > 0 (got 0)");
  multistep.mutable_multistep()->set_milestones(0, 1);
  multistep.mutable_multistep()->set_gamma(0);
  expect_error(multistep, "optimizer.schedule.multistep.gamma: must be in (0, 1] (got 0)");

  proto::LrScheduleConfig exponential;
  exponential.mutable_exponential();  // gamma has no default
  expect_error(exponential, "optimizer.schedule.exponential.gamma: must be in (0, 1] (got 0)");

  proto::LrScheduleConfig cosine;
  cosine.mutable_cosine()->set_final_lr_fraction(-0.5f);
  expect_error(cosine, "optimizer.schedule.cosine.final_lr_fraction: must be in [0, 1] (got -0.5)");

  proto::LrScheduleConfig polynomial;
  polynomial.mutable_polynomial()->set_power(0);
  expect_error(polynomial, "optimizer.schedule.polynomial.power: must be > 0 (got 0)");
  polynomial.mutable_polynomial()->set_power(1);
  polynomial.mutable_polynomial()->set_final_lr_fraction(2);
  expect_error(polynomial,
               "optimizer.schedule.polynomial.final_lr_fraction: must be in [0, 1] (got 2)");

  proto::LrScheduleConfig wsd;
  wsd.mutable_wsd()->set_decay_fraction(0);
  expect_error(wsd, "optimizer.schedule.wsd.decay_fraction: must be in (0, 1] (got 0)");
  wsd.mutable_wsd()->set_decay_fraction(0.5f);
  wsd.mutable_wsd()->set_final_lr_fraction(1.25f);
  expect_error(wsd, "optimizer.schedule.wsd.final_lr_fraction: must be in [0, 1] (got 1.25)");
}

}  // namespace
}  // namespace dpt
