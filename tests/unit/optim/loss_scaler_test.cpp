// LossScaler against hand-computed scale sequences: PyTorch GradScaler's defaults (2^16, x2 after
// 2000 clean steps, x0.5 on inf/NaN), skip counting, the floor, growth that would overflow,
// the 1 / scale handed to the unscale function, checkpoint state round trip and bad state; and
// the config rules of device.loss_scale and device.precision FP16 / TF32.
#include "optim/loss_scaler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/config.h"
#include "devices/error.h"
#include "expect_error.h"

namespace dpt {
namespace {

using testing::error_of;

proto::LossScaleConfig small_config() {
  proto::LossScaleConfig config;
  config.set_init_scale(8);
  config.set_growth_factor(2);
  config.set_backoff_factor(0.5f);
  config.set_growth_interval(3);
  config.set_min_scale(1);
  return config;
}

TEST(LossScalerTest, PyTorchDefaultsGrowAfter2000CleanSteps) {
  LossScaler scaler{proto::LossScaleConfig()};
  EXPECT_EQ(scaler.scale(), 65536.0f);
  for (int step = 0; step < 1999; ++step) ASSERT_TRUE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), 65536.0f);
  EXPECT_EQ(scaler.state().clean_steps, 1999);
  EXPECT_TRUE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), 131072.0f);
  EXPECT_EQ(scaler.state().clean_steps, 0);
  EXPECT_FALSE(scaler.update(true));
  EXPECT_EQ(scaler.scale(), 65536.0f);
  EXPECT_EQ(scaler.skipped_steps(), 1);
}

TEST(LossScalerTest, HandComputedSequenceWithSkipsAndFloor) {
  LossScaler scaler(small_config());
  struct Step {
    bool found_inf;
    float scale_after;
    int64_t skipped_after;
  };
  // interval 3, x2 / x0.5, floor 1.
  const std::vector<Step> steps = {{false, 8, 0}, {false, 8, 0}, {true, 4, 1}, {false, 4, 1},
                                   {false, 4, 1}, {false, 8, 1}, {true, 4, 2}, {true, 2, 3},
                                   {true, 1, 4},  {true, 1, 5},  {true, 1, 6}, {false, 1, 6},
                                   {false, 1, 6}, {false, 2, 6}, {false, 2, 6}};
  for (std::size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(scaler.update(steps[i].found_inf), !steps[i].found_inf) << "step " << i;
    EXPECT_EQ(scaler.scale(), steps[i].scale_after) << "step " << i;
    EXPECT_EQ(scaler.skipped_steps(), steps[i].skipped_after) << "step " << i;
  }
}

TEST(LossScalerTest, FloorThatIsNotAPowerOfTwoAndNeverZero) {
  proto::LossScaleConfig config = small_config();
  config.set_init_scale(10);
  config.set_min_scale(3);
  LossScaler scaler(config);
  scaler.update(true);
  EXPECT_EQ(scaler.scale(), 5.0f);
  scaler.update(true);
  EXPECT_EQ(scaler.scale(), 3.0f);  // 2.5 is below the floor
  for (int i = 0; i < 10000; ++i) scaler.update(true);
  EXPECT_EQ(scaler.scale(), 3.0f);
  EXPECT_EQ(scaler.skipped_steps(), 10002);
}

TEST(LossScalerTest, GrowthThatWouldOverflowKeepsTheScale) {
  proto::LossScaleConfig config = small_config();
  config.set_init_scale(std::ldexp(1.0f, 127));
  config.set_growth_interval(1);
  LossScaler scaler(config);
  EXPECT_TRUE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), std::ldexp(1.0f, 127));
  EXPECT_EQ(scaler.state().clean_steps, 0);
}

TEST(LossScalerTest, UnscaleFunctionGetsOneOverScaleAndDecidesTheStep) {
  LossScaler scaler(small_config());
  std::vector<float> grads = {16.0f, -8.0f};
  float seen = 0;
  auto unscale = [&](bool inject_inf) {
    return [&, inject_inf](float inv_scale) {
      seen = inv_scale;
      for (float& g : grads) g *= inv_scale;
      return inject_inf;
    };
  };
  EXPECT_TRUE(scaler.unscale_and_update(unscale(false)));
  EXPECT_EQ(seen, 0.125f);
  EXPECT_EQ(grads, (std::vector<float>{2.0f, -1.0f}));
  EXPECT_FALSE(scaler.unscale_and_update(unscale(true)));
  EXPECT_EQ(scaler.scale(), 4.0f);
  EXPECT_TRUE(scaler.unscale_and_update(unscale(false)));
  EXPECT_EQ(seen, 0.25f);
}

// fp16 training in miniature: gradients of magnitude 10 are computed as 10 * scale and stored in
// fp16 (max 65504, beyond is inf). From 65536 the scale must back off to 4096 (40960 fits; 8192
// gives 81920, which does not): four skipped steps, then every step applies with the true
// gradient recovered exactly.
TEST(LossScalerTest, BacksOffUntilScaledGradientsFitInFp16) {
  LossScaler scaler{proto::LossScaleConfig()};
  const std::vector<float> true_grads = {10.0f, -3.0f, 0.5f};
  int applied = 0;
  for (int step = 0; step < 10; ++step) {
    std::vector<float> grads;
    for (float g : true_grads) {
      const float scaled = g * scaler.scale();
      grads.push_back(std::fabs(scaled) > 65504.0f ? std::copysign(INFINITY, scaled) : scaled);
    }
    const bool apply = scaler.unscale_and_update([&](float inv_scale) {
      bool found = false;
      for (float& g : grads) {
        found = found || !std::isfinite(g);
        g *= inv_scale;
      }
      return found;
    });
    EXPECT_EQ(apply, step >= 4) << "step " << step;
    if (apply) {
      EXPECT_EQ(grads, true_grads) << "step " << step;
      ++applied;
    }
  }
  EXPECT_EQ(scaler.scale(), 4096.0f);
  EXPECT_EQ(scaler.skipped_steps(), 4);
  EXPECT_EQ(applied, 6);
}

TEST(LossScalerTest, RestoredStateContinuesExactlyAsTheUninterruptedRun) {
  const std::vector<bool> pattern = {false, true, false, false, true, false, false, false, false};
  LossScaler whole(small_config()), first(small_config());
  for (std::size_t i = 0; i < 5; ++i) {
    whole.update(pattern[i]);
    first.update(pattern[i]);
  }
  const LossScalerState saved = first.state();
  LossScaler resumed(small_config());
  resumed.restore(saved);
  for (std::size_t i = 5; i < pattern.size(); ++i) {
    whole.update(pattern[i]);
    resumed.update(pattern[i]);
    EXPECT_EQ(resumed.scale(), whole.scale()) << "step " << i;
    EXPECT_EQ(resumed.state().clean_steps, whole.state().clean_steps) << "step " << i;
  }
  EXPECT_EQ(resumed.skipped_steps(), 2);
}

TEST(LossScalerTest, ImpossibleStateIsACheckpointError) {
  LossScaler scaler(small_config());
  LossScalerState nan_scale;
  nan_scale.scale = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NE(error_of([&] { scaler.restore(nan_scale); }, ErrorKind::kCheckpoint).find("scale"),
            std::string::npos);
  LossScalerState zero;
  zero.scale = 0;
  error_of([&] { scaler.restore(zero); }, ErrorKind::kCheckpoint);
  LossScalerState too_many;
  too_many.clean_steps = 3;
  error_of([&] { scaler.restore(too_many); }, ErrorKind::kCheckpoint);
  LossScalerState negative;
  negative.skipped_steps = -1;
  error_of([&] { scaler.restore(negative); }, ErrorKind::kCheckpoint);
  EXPECT_EQ(scaler.scale(), 8.0f);  // unchanged by the failed restores
}

TEST(LossScalerTest, BadConfigValuesAreConfigErrorsNamingTheField) {
  proto::LossScaleConfig config = small_config();
  config.set_backoff_factor(1.0f);
  EXPECT_NE(error_of([&] { LossScaler{config}; }, ErrorKind::kConfig).find("backoff_factor"),
            std::string::npos);
  config = small_config();
  config.set_min_scale(16);
  EXPECT_NE(error_of([&] { LossScaler{config}; }, ErrorKind::kConfig).find("init_scale"),
            std::string::npos);
}

constexpr const char* kMinimal =
    "model { input_size: 4 layer { dense { units: 2 } } }\n"
    "data { train_path: \"t.h5\" }\n";

std::string config_error(const std::string& device) {
  return error_of([&] { parse_config(kMinimal + device, "cfg.prototxt"); }, ErrorKind::kConfig);
}

TEST(LossScalerTest, ConfigRulesNameTheFieldAndLocation) {
  EXPECT_EQ(config_error("device { precision: FP16 }"),
            "cfg.prototxt:3:10: device.precision: fp16 needs a CUDA device: set device.kind: "
            "CUDA (got AUTO)");
  // TF32 on the CPU is float32 (launch/device_select logs it), not an error.
  EXPECT_NO_THROW(
      parse_config(std::string(kMinimal) + "device { kind: CPU precision: TF32 }", "cfg.prototxt"));
  EXPECT_EQ(config_error("device { loss_scale { growth_factor: 1 } }"),
            "cfg.prototxt:3:23: device.loss_scale.growth_factor: must be > 1 (got 1)");
  EXPECT_EQ(config_error("device { loss_scale { backoff_factor: 0 } }"),
            "cfg.prototxt:3:23: device.loss_scale.backoff_factor: must be in (0, 1) (got 0)");
  EXPECT_EQ(config_error("device { loss_scale { growth_interval: 0 } }"),
            "cfg.prototxt:3:23: device.loss_scale.growth_interval: must be > 0 (got 0)");
  EXPECT_EQ(config_error("device { loss_scale { min_scale: 0 } }"),
            "cfg.prototxt:3:23: device.loss_scale.min_scale: must be > 0 (got 0)");
  EXPECT_EQ(config_error("device { loss_scale { init_scale: 2 min_scale: 4 } }"),
            "cfg.prototxt:3:23: device.loss_scale.init_scale: must be >= min_scale 4 (got 2)");
  const proto::Config ok =
      parse_config(std::string(kMinimal) + "device { kind: CUDA precision: FP16 }", "ok");
  EXPECT_EQ(ok.device().loss_scale().init_scale(), 65536.0f);
  EXPECT_EQ(ok.device().loss_scale().growth_interval(), 2000);
}

}  // namespace
}  // namespace dpt
