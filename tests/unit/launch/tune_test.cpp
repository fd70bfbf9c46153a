// Tests for launch/tuner (the procedure of `dpt tune`) and launch/tune_probe (its measurements).
// The tuner runs against a fake probe with a known cost model and a fake memory budget, so every
// decision has a hand-computed answer: the largest batch with and without accumulation, the
// step-down when a measurement exceeds the fit, the over-budget error, lr scaling and warmup, the
// LR range test's pick, the evaluation batch, and a tuned config that re-loads and differs only
// in the tuned fields. The real probe is checked for exact affine memory and for agreement
// between ranks.
#include "launch/tuner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <thread>

#include "comm/communicator.h"
#include "comm/thread_world.h"
#include "core/config.h"
#include "core/random.h"
#include "devices/cpu_device.h"
#include "devices/error.h"
#include "expect_error.h"
#include "launch/tune_probe.h"
#include "rank_threads.h"

namespace dpt {
namespace {

using testing::error_of;

// Bytes: fixed + per_sample x batch (+ bump from bump_from on, which the fit at 16 and 32 cannot
// see) + eval_per_sample x eval rows. Samples/s per worker from a table.
struct FakeProbe : TuneProbe {
  double fixed = 1'000'000, per_sample = 3000, bump = 0, eval_per_sample = 0;
  int64_t bump_from = 0;
  int workers = 1;
  std::map<int64_t, double> rate = {{1, 100},   {2, 200},   {4, 400},   {8, 800},
                                    {16, 1500}, {32, 2800}, {64, 3900}, {128, 4000}};
  double (*loss_of_lr)(double) = nullptr;
  std::vector<int64_t> peak_batches;
  std::pair<int64_t, int64_t> lr_test = {0, 0};

  double bytes(int64_t batch, int64_t eval_batch) const {
    return fixed + per_sample * batch + (bump_from > 0 && batch >= bump_from ? bump : 0) +
           eval_per_sample * eval_batch;
  }
  int64_t peak_bytes(int64_t batch, int64_t eval_batch) override {
    peak_batches.push_back(batch);
    return static_cast<int64_t>(bytes(batch, eval_batch));
  }
  BatchTiming time_steps(int64_t batch) override {
    const double global_rate = rate.at(batch) * workers;
    return {batch, batch * workers / global_rate, global_rate,
            static_cast<int64_t>(bytes(batch, 0))};
  }
  void start_lr_test(int64_t global_batch, int64_t micro) override {
    lr_test = {global_batch, micro};
  }
  double lr_test_step(double lr) override { return loss_of_lr(lr); }
};

// An 8-16-4 MLP with Adam at lr 0.001 and batch 256, with --set style overrides.
proto::Config config_with(const std::vector<std::string>& overrides = {}) {
  return parse_config(
      "model { input_size: 8 layer { dense { units: 16 } } layer { activation { } }"
      " layer { dense { units: 4 } } }\n"
      "data { train_path: \"unused.h5\" input_scale: 0.004 }\n"
      "optimizer { lr: 0.001 adam {} }\n"
      "train { batch_size: 256 }\n",
      "test.prototxt", overrides);
}

TuneInputs inputs(int64_t budget, int workers = 1, int64_t train = 10240, int64_t test = 0) {
  TuneInputs in;
  in.budget_bytes = budget;
  in.budget_source = "test";
  in.workers = workers;
  in.train_samples = train;
  in.test_samples = test;
  return in;
}

TEST(TuneTest, LargestBatchAndThroughputPickMatchHandComputation) {
  FakeProbe probe;
  const TuneResult r = tune(config_with(), inputs(1'600'000), probe);
  EXPECT_EQ(r.fit_batches[0], 16);
  EXPECT_EQ(r.fit_batches[1], 32);
  EXPECT_DOUBLE_EQ(r.fit.fixed_bytes, 1'000'000);
  EXPECT_DOUBLE_EQ(r.fit.per_sample_bytes, 3000);
  EXPECT_EQ(r.largest, 200);  // (1 600 000 - 1 000 000) / 3000
  EXPECT_EQ(r.largest_peak, 1'600'000);
  EXPECT_EQ(probe.peak_batches, (std::vector<int64_t>{16, 32, 200}));  // fit, fit, verify
  ASSERT_EQ(r.table.size(), 8u);                                       // 1, 2, ..., 128
  EXPECT_EQ(r.table[r.fastest].batch, 128);
  ASSERT_TRUE(r.chosen);
  EXPECT_EQ(r.table[*r.chosen].batch, 64);  // 3900 >= 0.95 x 4000
  EXPECT_EQ(r.tuned.train().batch_size(), 64);
  EXPECT_EQ(r.tuned.train().micro_batch_size(), 0);
}

TEST(TuneTest, LargestBatchStopsAtMaxBatchAndTheTrainingSet) {
  FakeProbe probe;
  EXPECT_EQ(tune(config_with({"tune.max_batch=100"}), inputs(1'600'000), probe).largest, 100);
  EXPECT_EQ(tune(config_with(), inputs(1'600'000, 1, 150), probe).largest, 150);
  probe.workers = 2;
  EXPECT_EQ(tune(config_with(), inputs(1'600'000, 2, 300), probe).largest, 150);
}

TEST(TuneTest, AccumulationReachesTheWantedGlobalBatch) {
  FakeProbe probe;
  probe.workers = 2;
  // 1000 over 2 workers = 500 rows each; at most 200 fit: 4 micro-batches of 125.
  const TuneResult r = tune(config_with({"tune.global_batch=1000"}), inputs(1'600'000, 2), probe);
  EXPECT_EQ(r.largest, 200);
  EXPECT_EQ(r.accumulation.steps, 4);
  EXPECT_EQ(r.tuned.train().batch_size(), 1000);
  EXPECT_EQ(r.tuned.train().micro_batch_size(), 125);
  EXPECT_FALSE(r.chosen);
  // A share that fits needs no accumulation.
  const TuneResult fits = tune(config_with({"tune.global_batch=300"}), inputs(1'600'000, 2), probe);
  EXPECT_EQ(fits.tuned.train().micro_batch_size(), 0);
  EXPECT_NE(error_of([&] {
              tune(config_with({"tune.global_batch=301"}), inputs(1'600'000, 2), probe);
            }).find("tune.global_batch: 301 is not a multiple of the 2 workers"),
            std::string::npos);
}

TEST(TuneTest, VerificationStepsDownWhenTheMeasurementExceedsTheFit) {
  FakeProbe probe;
  probe.bump_from = 150;  // 10 samples' worth the fit at 16 and 32 cannot see
  probe.bump = 30'000;
  const TuneResult r = tune(config_with(), inputs(1'600'000), probe);
  // 200 measures 1 630 000: 30 000 over = 10 samples, so 190, which measures exactly the budget.
  EXPECT_EQ(probe.peak_batches, (std::vector<int64_t>{16, 32, 200, 190}));
  EXPECT_EQ(r.largest, 190);
  EXPECT_EQ(r.largest_peak, 1'600'000);
}

TEST(TuneTest, OverBudgetModelIsAConfigErrorWithTheFigures) {
  FakeProbe probe;
  probe.fixed = 2 << 20;
  const std::string message = error_of([&] { tune(config_with(), inputs(1 << 20), probe); });
  EXPECT_NE(message.find("tune.memory_budget_mb: the model alone does not fit: 1.0 MiB per worker "
                         "(test) against 2.0 MiB measured"),
            std::string::npos)
      << message;
  probe.fixed = 1'000'000;  // room for 3 samples of 3000 in 1 010 000
  EXPECT_NE(error_of([&] {
              tune(config_with({"tune.min_batch=4"}), inputs(1'010'000), probe);
            }).find("tune.memory_budget_mb: not even tune.min_batch = 4"),
            std::string::npos);
}

TEST(TuneTest, LrScalesByTheRuleAndWarmupIsAdded) {
  FakeProbe probe;
  probe.workers = 16;  // batch 64 per worker: global 1024, 4x the reference 256
  TuneResult r = tune(config_with(), inputs(1'600'000, 16, 102400), probe);
  EXPECT_EQ(r.global_batch, 1024);
  EXPECT_EQ(r.rule, proto::LR_SCALING_SQRT);          // AUTO with Adam
  EXPECT_FLOAT_EQ(r.tuned.optimizer().lr(), 0.002f);  // 0.001 x sqrt(4)
  // One epoch of 102400 / 1024 = 100 steps, from 0.001 = half the tuned lr.
  EXPECT_EQ(r.tuned.optimizer().schedule().warmup_steps(), 100);
  EXPECT_FLOAT_EQ(r.tuned.optimizer().schedule().warmup_start_factor(), 0.5f);

  proto::Config sgd = config_with();
  sgd.mutable_optimizer()->mutable_sgd();
  r = tune(sgd, inputs(1'600'000, 16, 102400), probe);
  EXPECT_FLOAT_EQ(r.tuned.optimizer().lr(), 0.004f);  // linear: 0.001 x 4
  EXPECT_FLOAT_EQ(r.tuned.optimizer().schedule().warmup_start_factor(), 0.25f);

  // The reference batch may differ from train.batch_size; rule forced linear.
  r = tune(config_with({"tune.reference_batch=128", "tune.lr_scaling=LR_SCALING_LINEAR"}),
           inputs(1'600'000, 16, 102400), probe);
  EXPECT_FLOAT_EQ(r.tuned.optimizer().lr(), 0.008f);

  // A configured warmup of 800 steps at batch 256 becomes 200 at 1024: longer than one epoch
  // (100), so it is kept.
  r = tune(config_with({"optimizer.schedule.warmup_steps=800"}), inputs(1'600'000, 16, 102400),
           probe);
  EXPECT_EQ(r.tuned.optimizer().schedule().warmup_steps(), 200);
  EXPECT_FLOAT_EQ(r.tuned.optimizer().schedule().warmup_start_factor(), 0.0f);
}

TEST(TuneTest, NoWarmupWhenTheLrGoesDown) {
  FakeProbe probe;
  const TuneResult r = tune(config_with(), inputs(1'600'000), probe);  // global 64 < 256
  EXPECT_FLOAT_EQ(r.tuned.optimizer().lr(), 0.0005f);                  // 0.001 x sqrt(1/4)
  EXPECT_EQ(r.tuned.optimizer().schedule().warmup_steps(), 0);
}

// Falls until lr 1e-2, rises after, and diverges past 0.1.
double synthetic_loss(double lr) {
  if (lr > 0.1) return 1e3;
  const double x = std::log10(lr) + 2;
  return 0.5 + x * x;
}

TEST(TuneTest, RangeTestPicksTheMinimumOfTheSmoothedCurveOverTen) {
  FakeProbe probe;
  probe.loss_of_lr = synthetic_loss;
  const TuneResult r =
      tune(config_with({"tune={lr_range_test: true lr_min: 1e-6 lr_max: 1 lr_range_steps: 61}"}),
           inputs(1'600'000), probe);
  EXPECT_EQ(probe.lr_test, (std::pair<int64_t, int64_t>{64, 64}));
  // The expected pick, computed here from the closed form of the smoothed loss.
  const double beta = 0.98;
  double best = INFINITY, best_lr = 0;
  std::size_t stop = 0;
  for (int n = 1; n <= 61; ++n) {
    double sum = 0;
    for (int i = 1; i <= n; ++i) {
      sum +=
          (1 - beta) * std::pow(beta, n - i) * synthetic_loss(1e-6 * std::pow(10, (i - 1) / 10.0));
    }
    const double smoothed = sum / (1 - std::pow(beta, n));
    if (smoothed > 4 * best) {
      stop = n;
      break;
    }
    if (smoothed < best) {
      best = smoothed;
      best_lr = 1e-6 * std::pow(10, (n - 1) / 10.0);
    }
  }
  ASSERT_GT(stop, 0u);
  EXPECT_EQ(r.lr_points.size(), stop);  // stopped on divergence
  ASSERT_TRUE(r.lr_pick);
  // (lr_min is a float: 1e-6f differs from 1e-6 in the 9th digit.)
  EXPECT_NEAR(r.lr_pick->lr, best_lr / 10, best_lr * 1e-6);
  EXPECT_FLOAT_EQ(r.tuned.optimizer().lr(), static_cast<float>(best_lr / 10));
}

TEST(TuneTest, EvalBatchHalvesUntilEvaluationFits) {
  FakeProbe probe;
  probe.eval_per_sample = 2000;
  // After steps at 64: 1 192 000 + 2000 x eval rows <= 1 600 000 needs <= 204 rows:
  // 1000 -> 500 -> 250 -> 125.
  const TuneResult r = tune(config_with(), inputs(1'600'000, 1, 10240, 5000), probe);
  EXPECT_EQ(r.tuned.train().eval_batch_size(), 125);
  // No test set: nothing to fit.
  EXPECT_EQ(tune(config_with(), inputs(1'600'000), probe).tuned.train().eval_batch_size(), 1000);
}

TEST(TuneTest, TunedConfigReloadsAndDiffersOnlyInTheTunedFields) {
  FakeProbe probe;
  probe.workers = 16;
  const proto::Config config = config_with({"train.max_steps=4000"});
  const TuneResult r = tune(config, inputs(1'600'000, 16, 102400, 5000), probe);
  const std::string text = "# header comment\n" + config_to_text(r.tuned);
  const proto::Config reloaded = parse_config(text, "tuned.prototxt");  // validates
  EXPECT_EQ(reloaded.train().batch_size(), 1024);
  EXPECT_EQ(reloaded.train().max_steps(), 1000);  // the same samples at 4x the batch
  proto::Config expected = config;
  *expected.mutable_optimizer()->mutable_schedule() = reloaded.optimizer().schedule();
  expected.mutable_optimizer()->set_lr(reloaded.optimizer().lr());
  proto::TrainConfig& train = *expected.mutable_train();
  train.set_batch_size(reloaded.train().batch_size());
  train.set_micro_batch_size(reloaded.train().micro_batch_size());
  train.set_eval_batch_size(reloaded.train().eval_batch_size());
  train.set_max_steps(reloaded.train().max_steps());
  EXPECT_EQ(reloaded.SerializeAsString(), expected.SerializeAsString());
  EXPECT_NE(reloaded.optimizer().lr(), config.optimizer().lr());
}

// ---- the real probe ----

Dataset memory_dataset(int64_t n) {
  Dataset data;
  data.path = "memory";
  data.size = n;
  data.sample_shape = {8};
  data.feature_size = 8;
  data.num_classes = 4;
  RandomStream random(5, 0);
  for (int64_t i = 0; i < n * 8; ++i) data.inputs_u8.push_back(uint8_t(random.below(256)));
  for (int64_t i = 0; i < n; ++i) data.labels.push_back(int32_t(random.below(4)));
  return data;
}

TEST(StepProbeTest, MemoryIsExactlyAffineAndReturnsToWhereItWas) {
  const proto::Config config = config_with();
  CpuDevice device(CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn});
  std::unique_ptr<Communicator> comm = make_communicator(config.comm());
  const Dataset data = memory_dataset(256);
  StepProbe probe(config, device, *comm, data);
  const int64_t before = device.memory_counters().current_bytes;
  // Every per-row buffer is a multiple of 64 bytes at multiples of 16 rows, so no rounding.
  const int64_t p16 = probe.peak_bytes(16, 0), p32 = probe.peak_bytes(32, 0);
  const int64_t p48 = probe.peak_bytes(48, 0);
  EXPECT_EQ(p48 - p32, p32 - p16);
  // Per sample at least the input row and every layer's output row, float32.
  EXPECT_GE((p32 - p16) / 16, 4 * (8 + 16 + 16 + 4));
  // Fixed: parameters, gradients and Adam's two moments, 4 x (8x16+16 + 16x4+4) floats, plus
  // a 64-byte header and rounding for each of the few fixed allocations.
  const int64_t fixed = p16 - 16 * (p32 - p16) / 16;
  const int64_t moments = 4 * 4 * (8 * 16 + 16 + 16 * 4 + 4);
  EXPECT_GE(fixed, moments);
  EXPECT_LT(fixed, moments + 16 * 128);
  EXPECT_EQ(probe.time_steps(32).peak_bytes, p32);  // the same step, timed
  EXPECT_GT(probe.peak_bytes(16, 100), p16);        // evaluation adds its batch
  EXPECT_EQ(device.memory_counters().current_bytes, before);
  probe.start_lr_test(64, 32);
  const double loss = probe.lr_test_step(1e-3);
  EXPECT_TRUE(std::isfinite(loss) && loss > 0) << loss;
}

// fp16 (set here past validation, which allows it on a GPU only: the CPU computes in float32
// and only the loss scaling differs): a step whose scaled gradients overflow is the loss scale's
// problem, as in training; the range test gets the step's finite loss, not divergence, and the
// next step runs at the lowered scale.
TEST(StepProbeTest, RangeTestSkipsAnFp16OverflowAsTrainingDoes) {
  proto::Config config = config_with();
  config.mutable_device()->set_precision(proto::FP16);
  // Inputs up to 255 make the weight gradients' sums far above 1: scaled by 3e38 they overflow.
  config.mutable_data()->set_input_scale(1.0f);
  config.mutable_device()->mutable_loss_scale()->set_init_scale(3e38);
  CpuDevice device(CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn});
  std::unique_ptr<Communicator> comm = make_communicator(config.comm());
  const Dataset data = memory_dataset(256);
  StepProbe probe(config, device, *comm, data);
  probe.start_lr_test(64, 32);
  const double overflowed = probe.lr_test_step(1e-3);
  EXPECT_TRUE(std::isfinite(overflowed) && overflowed > 0) << overflowed;
  // The scale falls by half per overflow (3e38, 1.5e38, ...) until the gradients fit: every step's
  // loss stays finite, and the steps are not divergence.
  for (int step = 0; step < 10; ++step) {
    const double loss = probe.lr_test_step(1e-3);
    ASSERT_TRUE(std::isfinite(loss)) << "step " << step;
  }
}

TEST(StepProbeTest, TwoRanksMeasureAndDecideAlike) {
  const proto::Config config =
      config_with({"tune={max_batch: 32 timing_steps: 2 lr_range_test: true lr_range_steps: 12}"});
  const Dataset data = memory_dataset(256);
  std::vector<std::string> texts(2);
  const std::vector<std::string> errors =
      testing::on_ranks(2, 60, [&](int rank, Communicator& comm) {
        CpuDevice device(CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn});
        StepProbe probe(config, device, comm, data);
        texts[rank] = config_to_text(tune(config, inputs(int64_t{1} << 30, 2, 256), probe).tuned);
      });
  EXPECT_EQ(errors, (std::vector<std::string>{"", ""}));
  EXPECT_EQ(texts[0], texts[1]);
  EXPECT_NE(texts[0].find("batch_size: "), std::string::npos);
}

}  // namespace
}  // namespace dpt
