// fp16 dynamic loss scaling in the training step and the trainer, tested on the CPU in float32
// through the seams (TrainStep's LossScaler*, TrainOptions::loss_scaling; the config enables it
// only for FP16 on a GPU):
// - with power-of-two scales every scaled value is exact, so a scaled run equals the unscaled run
//   bit for bit (a wrong unscale, or a scale applied twice or not at all, shows at once);
// - a scale of 2^127 overflows the gradients: the step is skipped (parameters and optimizer state
//   untouched), the scale halves, the skip is counted, logged and written to metrics;
// - the scaler state survives a checkpoint (exactly), resume equals the uninterrupted run (also
//   in a streak of overflows at min_scale: it stops at the same step), and a checkpoint without
//   the state resumes with a fresh scaler; two ranks agree on every verdict.
#include "launch/loss_scaling.h"

#include <gtest/gtest.h>

#include <fmt/core.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "comm/communicator.h"
#include "launch/device_transfer.h"
#include "launch/train_step.h"
#include "rank_threads.h"
#include "train_fixture.h"

namespace dpt {
namespace {

const float kHugeScale = std::ldexp(1.0f, 127);  // the largest power of two in float

class Recorder : public TrainListener {
 public:
  void on_skip(int64_t step, const std::string& reason) override {
    skips.push_back("step " + std::to_string(step) + ": " + reason);
  }
  void on_note(const std::string& line) override { notes.push_back(line); }
  std::vector<std::string> skips, notes;
};

class LossScalingTest : public testing::RandomDataTest {
 protected:
  LossScalingTest() : RandomDataTest("dpt_loss_scaling_test_", {{"train.h5", 240, 12, 3, 11}}) {}

  proto::Config config(const std::string& extra = "") const {
    return testing::with(parse_config(R"(
      model {
        input_size: 12
        layer { dense { units: 16 } }
        layer { activation { kind: RELU } }
        layer { dropout { rate: 0.1 } }
        layer { dense { units: 3 } }
      }
      optimizer { lr: 0.01 adam {} }
      train { batch_size: 24 epochs: 3 log_every_steps: 5 }
    )" + testing::data_text(dir_ + "/train.h5", "", "input_scale: 0.01"),
                                      "loss_scaling_test"),
                         extra);
  }

  struct Run {
    TrainSummary summary;
    std::vector<float> params;
  };

  Run run(const proto::Config& cfg, const std::string& name, bool scaling,
          TrainListener* listener = nullptr, const std::string& resume = "") {
    TrainListener quiet;
    TrainOptions options;
    options.loss_scaling = scaling;
    options.resume = resume;
    Run result;
    options.final_params = &result.params;
    auto comm = make_communicator(cfg.comm());
    result.summary =
        train(cfg, device_, *comm, dir_ + "/" + name, listener ? *listener : quiet, options);
    return result;
  }

  std::vector<nlohmann::json> train_records(const std::string& name) const {
    std::ifstream in(dir_ + "/" + name + "/metrics.jsonl");
    std::vector<nlohmann::json> records;
    for (std::string line; std::getline(in, line);) {
      nlohmann::json record = nlohmann::json::parse(line);
      if (record["kind"] == "train") records.push_back(record);
    }
    return records;
  }

  CpuDevice device_{CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn}};
};

// A training step on its own (one rank), for the step-level tests.
struct StepRig {
  explicit StepRig(const proto::Config& config, Device& device, LossScaler* scaler)
      : model(device, config),
        optimizer(make_optimizer(device, config.optimizer(), model.num_params())),
        comm(make_communicator(config.comm())),
        step(model, *optimizer, config, *comm, scaler) {}
  Model model;
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<Communicator> comm;
  TrainStep step;
};

BatchSource constant_batch(float value) {
  return [value](int64_t, int64_t n, Tensor& inputs, int32_t* labels) {
    float* x = inputs.data<float>();
    for (int64_t i = 0; i < n * inputs.dim(1); ++i) x[i] = value;
    for (int64_t i = 0; i < n; ++i) labels[i] = 0;
  };
}

std::vector<float> optimizer_state(Optimizer& optimizer) {
  std::vector<float> all;
  for (const NamedTensor& state : optimizer.state()) {
    const std::vector<float> values = to_host(state.tensor);
    all.insert(all.end(), values.begin(), values.end());
  }
  return all;
}

TEST_F(LossScalingTest, OnlyFp16TurnsItOnFromTheConfig) {
  EXPECT_EQ(LossScaling(config(), false).scaler(), nullptr);
  EXPECT_EQ(LossScaling(config("device { precision: BF16 }"), false).scaler(), nullptr);
  LossScaling fp16(config("device { kind: CUDA precision: FP16 loss_scale { init_scale: 512 } }"),
                   false);
  ASSERT_NE(fp16.scaler(), nullptr);
  EXPECT_EQ(fp16.scaler()->scale(), 512.0f);
  ASSERT_NE(LossScaling(config(), true).scaler(), nullptr);
}

// One Dense layer from zero weights, every row labelled 0 with inputs of 10: the logits stay
// near 0, so dW[0, :] sums 24 rows of about -0.6 * scale / 24 * 10, which overflows at 2^127.
TEST_F(LossScalingTest, AnOverflowingStepIsSkippedWithParametersAndOptimizerStateUntouched) {
  proto::Config cfg = config();
  cfg.mutable_model()->mutable_layer()->DeleteSubrange(0, 3);
  ASSERT_EQ(cfg.model().layer_size(), 1);
  LossScaler scaler(cfg.device().loss_scale());
  StepRig rig(cfg, device_, &scaler);
  from_host(rig.model.params(), std::vector<float>(rig.model.num_params(), 0.0f).data());
  // One clean step at scale 1 first, so the optimizer has state worth protecting.
  scaler.restore({1.0f, 0, 0});
  StepResult clean = rig.step.compute_gradients(0, 24, {0, 24}, constant_batch(1.0f));
  ASSERT_FALSE(clean.overflow);
  rig.step.apply(0.001f, clean.times);
  scaler.restore({kHugeScale, 0, 0});
  const std::vector<float> params = to_host(rig.model.params());
  const std::vector<float> state = optimizer_state(*rig.optimizer);
  ASSERT_EQ(rig.optimizer->steps(), 1);

  const StepResult result = rig.step.compute_gradients(1, 24, {0, 24}, constant_batch(10.0f));
  EXPECT_TRUE(result.overflow);
  EXPECT_TRUE(std::isfinite(result.loss)) << result.loss;
  EXPECT_TRUE(std::isnan(result.grad_norm));
  EXPECT_EQ(scaler.scale(), std::ldexp(1.0f, 126));
  EXPECT_EQ(scaler.skipped_steps(), 1);
  // What the trainer does with it: nothing reaches the parameters or the optimizer.
  EXPECT_EQ(to_host(rig.model.params()), params);
  EXPECT_EQ(optimizer_state(*rig.optimizer), state);
  EXPECT_EQ(rig.optimizer->steps(), 1);

  // The same step at scale 1 is clean, and its unscaled gradient is the scaled one's / 1.
  scaler.restore({1.0f, 0, 0});
  const StepResult unscaled = rig.step.compute_gradients(1, 24, {0, 24}, constant_batch(10.0f));
  EXPECT_FALSE(unscaled.overflow);
  EXPECT_GT(unscaled.grad_norm, 1.0);
}

TEST_F(LossScalingTest, UnscaleAndCheckFindsInfAndNanAndScalesEveryValue) {
  Tensor grads(device_, {5}, DType::kF32);
  const float values[] = {1.0f, -2.0f, 4.0f, 0.5f, 8.0f};
  from_host(grads, values);
  EXPECT_FALSE(unscale_and_check(grads, 0.25f));
  EXPECT_EQ(to_host(grads), (std::vector<float>{0.25f, -0.5f, 1.0f, 0.125f, 2.0f}));
  for (const float bad : {INFINITY, -INFINITY, NAN}) {
    float with_bad[] = {1.0f, 2.0f, bad, 3.0f, 4.0f};
    from_host(grads, with_bad);
    EXPECT_TRUE(unscale_and_check(grads, 0.5f)) << bad;
    EXPECT_EQ(to_host(grads)[4], 2.0f);
  }
  const float big[] = {3e38f, 1.0f, 1.0f, 1.0f, 1.0f};
  from_host(grads, big);
  EXPECT_TRUE(unscale_and_check(grads, 2.0f));  // finite before, inf after
}

// Power-of-two scales (growing every 3 steps, 2^10 to 2^20) scale every value exactly.
TEST_F(LossScalingTest, ScaledRunEqualsTheUnscaledRunBitForBit) {
  const proto::Config cfg = config("device { loss_scale { init_scale: 1024 growth_interval: 3 } }");
  const Run plain = run(cfg, "plain", false);
  const Run scaled = run(cfg, "scaled", true);
  EXPECT_EQ(scaled.summary.loss_scale_skipped, 0);
  EXPECT_EQ(plain.summary.loss_scale_skipped, 0);
  ASSERT_EQ(scaled.params.size(), plain.params.size());
  EXPECT_EQ(scaled.params, plain.params);
  EXPECT_EQ(scaled.summary.final_loss, plain.summary.final_loss);
  const std::vector<nlohmann::json> records = train_records("scaled");
  ASSERT_EQ(records.size(), 6u);
  // 30 clean steps: the scale grew 10 times.
  EXPECT_EQ(records.back()["loss_scale"].get<double>(), std::ldexp(1.0, 20));
  EXPECT_EQ(records.back()["loss_scale_skipped"], 0);
  EXPECT_FALSE(train_records("plain").back().contains("loss_scale"));
}

// Raw pixel inputs (0..250) and a scale of 2^127 overflow the first steps' gradients.
const char* kHuge = "data { input_scale: 1 } device { loss_scale { init_scale: 1.7014118e38 ";

TEST_F(LossScalingTest, OverflowsAreSkippedCountedLoggedAndWrittenToMetrics) {
  // Skips while the scale falls towards its floor are not "in a row" for max_consecutive_skips.
  const proto::Config cfg =
      config(std::string(kHuge) + "growth_interval: 1000 } } train { max_consecutive_skips: 1 }");
  Recorder recorder;
  const Run scaled = run(cfg, "huge", true, &recorder);
  const int64_t skipped = scaled.summary.loss_scale_skipped;
  ASSERT_GE(skipped, 2);
  ASSERT_LT(skipped, 30);
  EXPECT_EQ(scaled.summary.skipped_steps, 0);  // the non-finite guard saw nothing
  ASSERT_EQ(recorder.skips.size(), static_cast<std::size_t>(skipped));
  EXPECT_EQ(recorder.skips[0].rfind("step 0: ", 0), 0u) << recorder.skips[0];
  EXPECT_EQ(recorder.skips[1].rfind("step 1: ", 0), 0u) << recorder.skips[1];
  for (int64_t k = 0; k < skipped; ++k) {
    // One line per skip, naming the new scale (halved each time: it never grows here).
    const std::string tail = fmt::format(
        ": fp16 gradients overflowed (inf/NaN); loss scale lowered to {:g} ({} skipped so far)",
        std::ldexp(1.0f, 126 - static_cast<int>(k)), k + 1);
    const std::string& line = recorder.skips[static_cast<std::size_t>(k)];
    EXPECT_TRUE(line.size() > tail.size() &&
                line.compare(line.size() - tail.size(), tail.size(), tail) == 0)
        << line << " should end with " << tail;
  }
  const std::vector<nlohmann::json> records = train_records("huge");
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.back()["loss_scale_skipped"], skipped);
  EXPECT_EQ(records.back()["loss_scale"].get<double>(),
            std::ldexp(1.0, 127 - static_cast<int>(skipped)));
  // Skipped steps did not reach the optimizer.
  const Checkpoint last = read_checkpoint(scaled.summary.last_checkpoint);
  EXPECT_EQ(last.state.optimizer_steps, 30 - skipped);
  ASSERT_TRUE(last.state.loss_scaler.has_value());
  EXPECT_EQ(last.state.loss_scaler->skipped_steps, skipped);
  EXPECT_EQ(last.state.loss_scaler->scale, std::ldexp(1.0f, 127 - static_cast<int>(skipped)));

  // A run of one overflowing step ends with its initial parameters.
  const Run first_only = run(testing::with(cfg, "train { max_steps: 1 }"), "first_only", true);
  EXPECT_EQ(first_only.summary.loss_scale_skipped, 1);
  Model fresh(device_, cfg);
  EXPECT_EQ(first_only.params, to_host(fresh.params()));
}

// At its floor the scale cannot help: overflowing there for more than max_consecutive_skips steps
// in a row stops the run.
TEST_F(LossScalingTest, OverflowingAtTheFloorStopsTheRun) {
  const proto::Config cfg =
      config(std::string(kHuge) + "min_scale: 1.7014118e38 } } train { max_consecutive_skips: 3 }");
  Recorder recorder;
  try {
    run(cfg, "floor", true, &recorder);
    FAIL() << "the run went on";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNonFinite);
    EXPECT_NE(std::string(e.what()).find("step 3: gradients overflowed (inf/NaN) for 4 steps in a "
                                         "row with the loss scale at device.loss_scale.min_scale"),
              std::string::npos)
        << e.what();
  }
  ASSERT_EQ(recorder.skips.size(), 3u);
  EXPECT_NE(recorder.skips[2].find("loss scale held at its floor 1.70141e+38 (3 skipped so far)"),
            std::string::npos)
      << recorder.skips[2];
}

// A run resumed in the middle of a streak of overflows at the floor continues the streak: it
// stops at the same step as the uninterrupted run (without the saved streak it would go on for
// max_consecutive_skips more steps).
TEST_F(LossScalingTest, ResumeInAFloorStreakStopsAtTheSameStep) {
  const proto::Config cfg = config(std::string(kHuge) +
                                   "min_scale: 1.7014118e38 } } train { max_consecutive_skips: 5 } "
                                   "checkpoint { every_steps: 3 }");
  auto stop_message = [&](const proto::Config& c, const std::string& name,
                          const std::string& resume) -> std::string {
    try {
      run(c, name, true, nullptr, resume);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kNonFinite) << e.what();
      return e.what();
    }
    return "the run went on";
  };
  const std::string whole = stop_message(cfg, "whole", "");
  EXPECT_NE(whole.find("step 5: gradients overflowed (inf/NaN) for 6 steps in a row"),
            std::string::npos)
      << whole;
  const Run first = run(testing::with(cfg, "train { max_steps: 3 }"), "split", true);
  const Checkpoint saved = read_checkpoint(first.summary.last_checkpoint);
  EXPECT_EQ(saved.state.step, 3);
  EXPECT_EQ(saved.state.loss_scale_floor_skips, 3);
  EXPECT_EQ(stop_message(cfg, "split", "auto"), whole);
}

TEST_F(LossScalingTest, CheckpointsKeepTheScalerStateExactly) {
  const proto::Config cfg = config();
  Model model(device_, cfg);
  auto optimizer = make_optimizer(device_, cfg.optimizer(), model.num_params());
  TrainState state;
  state.global_batch = 24;
  state.optimizer = optimizer->name();
  state.loss_scaler = LossScalerState{3.3f, 17, 4};  // not a power of two
  save_checkpoint(dir_ + "/with.h5", model, *optimizer, state);
  const Checkpoint with = read_checkpoint(dir_ + "/with.h5");
  ASSERT_TRUE(with.state.loss_scaler.has_value());
  EXPECT_EQ(with.state.loss_scaler->scale, 3.3f);
  EXPECT_EQ(with.state.loss_scaler->clean_steps, 17);
  EXPECT_EQ(with.state.loss_scaler->skipped_steps, 4);
  // Outside a floor streak the file has no floor attribute, as files from before it existed.
  EXPECT_EQ(with.state.loss_scale_floor_skips, 0);
  EXPECT_EQ(with.file.attributes.count("loss_scale_floor_skips"), 0u);
  state.loss_scale_floor_skips = 2;
  save_checkpoint(dir_ + "/streak.h5", model, *optimizer, state);
  EXPECT_EQ(read_checkpoint(dir_ + "/streak.h5").state.loss_scale_floor_skips, 2);
  state.loss_scaler.reset();
  save_checkpoint(dir_ + "/without.h5", model, *optimizer, state);
  const Checkpoint without = read_checkpoint(dir_ + "/without.h5");
  EXPECT_FALSE(without.state.loss_scaler.has_value());
  EXPECT_EQ(without.file.attributes.count("loss_scale"), 0u);
}

TEST_F(LossScalingTest, ResumeEqualsTheUninterruptedRun) {
  // Skips at the start and growth every 4 clean steps, so the state at step 15 matters.
  const proto::Config cfg =
      config(std::string(kHuge) + "growth_interval: 4 } } checkpoint { every_steps: 15 }");
  const Run whole = run(cfg, "whole", true);
  run(testing::with(cfg, "train { max_steps: 15 }"), "split", true);
  Recorder recorder;
  const Run resumed = run(cfg, "split", true, &recorder, "auto");
  EXPECT_EQ(resumed.summary.first_step, 15);
  EXPECT_GE(whole.summary.loss_scale_skipped, 1);
  EXPECT_EQ(resumed.summary.loss_scale_skipped, whole.summary.loss_scale_skipped);
  EXPECT_EQ(resumed.params, whole.params);
  const nlohmann::json a = train_records("split").back(), b = train_records("whole").back();
  for (const char* key : {"step", "loss", "loss_scale", "loss_scale_skipped"}) {
    EXPECT_EQ(a[key], b[key]) << key;
  }
  for (const std::string& note : recorder.notes) {
    EXPECT_EQ(note.find("starts fresh"), std::string::npos) << note;
  }
}

TEST_F(LossScalingTest, ACheckpointWithoutScalerStateResumesWithAFreshScaler) {
  const proto::Config cfg = config("checkpoint { every_steps: 10 }");
  run(testing::with(cfg, "train { max_steps: 10 }"), "old", false);
  Recorder recorder;
  const Run resumed = run(cfg, "old", true, &recorder, "auto");
  EXPECT_EQ(resumed.summary.first_step, 10);
  bool noted = false;
  for (const std::string& note : recorder.notes) {
    noted = noted || note.find("loss scaling starts fresh at scale 65536") != std::string::npos;
  }
  EXPECT_TRUE(noted);
  const Checkpoint last = read_checkpoint(resumed.summary.last_checkpoint);
  ASSERT_TRUE(last.state.loss_scaler.has_value());
}

TEST_F(LossScalingTest, TwoRanksAgreeOnEveryVerdict) {
  const proto::Config cfg =
      config(std::string(kHuge) + "growth_interval: 5 } } comm { bucket_mb: 0.0001 }");
  std::vector<Run> runs(2);
  const std::vector<std::string> errors =
      testing::on_ranks(2, 30.0, [&](int rank, Communicator& comm) {
        CpuDevice device(CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn});
        TrainListener quiet;
        TrainOptions options;
        options.loss_scaling = true;
        options.final_params = &runs[static_cast<std::size_t>(rank)].params;
        runs[static_cast<std::size_t>(rank)].summary =
            train(cfg, device, comm, dir_ + "/two", quiet, options);
      });
  ASSERT_EQ(errors, (std::vector<std::string>{"", ""}));
  EXPECT_GE(runs[0].summary.loss_scale_skipped, 1);
  EXPECT_EQ(runs[1].summary.loss_scale_skipped, runs[0].summary.loss_scale_skipped);
  EXPECT_EQ(runs[1].params, runs[0].params);
}

}  // namespace
}  // namespace dpt
