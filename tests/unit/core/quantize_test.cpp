// Tests for core/quantize: per-channel weight quantization against hand computed scales and the
// scale / 2 bound; quantization parameters for each kind of range and the codes they give;
// calibration options (percentile) and bad input; QuantizeConfig validation.
#include "core/quantize.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/config.h"
#include "devices/cpu_device.h"
#include "devices/error.h"
#include "quantize_fixture.h"

namespace dpt {
namespace {

using testing::kReluChain;
using testing::model_config;

TEST(QuantizeWeights, HandComputedScalesAndCodes) {
  // Row 0: max |w| 2.54 -> scale 0.02; row 1 all zero -> scale 1; row 2: max 0.127 -> 0.001.
  const std::vector<float> w = {2.54f, -1.0f, 0.011f, 0, 0, 0, -0.127f, 0.0634f, 0.0004f};
  const QuantizedWeights q = quantize_weights(w.data(), 3, 3, "w");
  EXPECT_FLOAT_EQ(q.scales[0], 0.02f);
  EXPECT_EQ(q.scales[1], 1.0f);
  EXPECT_FLOAT_EQ(q.scales[2], 0.001f);
  const std::vector<int8_t> expected = {127, -50, 1, 0, 0, 0, -127, 63, 0};
  EXPECT_EQ(q.values, expected);
}

TEST(QuantizeWeights, EveryWeightWithinHalfAScale) {
  RandomStream random(5, 0);
  const int64_t rows = 37, cols = 53;
  std::vector<float> w(rows * cols);
  for (int64_t j = 0; j < rows; ++j) {
    const double magnitude = std::pow(10.0, static_cast<double>(j % 7) - 3);  // 1e-3 .. 1e3
    for (int64_t k = 0; k < cols; ++k) {
      w[j * cols + k] = static_cast<float>((2 * random.uniform() - 1) * magnitude);
    }
  }
  const QuantizedWeights q = quantize_weights(w.data(), rows, cols, "w");
  for (int64_t j = 0; j < rows; ++j) {
    float largest = 0;
    for (int64_t k = 0; k < cols; ++k) largest = std::max(largest, std::fabs(w[j * cols + k]));
    EXPECT_FLOAT_EQ(q.scales[j], largest / 127);
    for (int64_t k = 0; k < cols; ++k) {
      const double error =
          std::fabs(static_cast<double>(q.scales[j]) * q.values[j * cols + k] - w[j * cols + k]);
      ASSERT_LE(error, q.scales[j] * 0.5 * (1 + 1e-6)) << "row " << j << " col " << k;
    }
  }
}

TEST(QuantizeWeights, NonFiniteWeightIsACheckpointError) {
  const std::vector<float> w = {1, NAN, 2, 3};
  try {
    quantize_weights(w.data(), 2, 2, "dense0/weight");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCheckpoint);
    EXPECT_NE(std::string(e.what()).find("dense0/weight: row 0"), std::string::npos) << e.what();
  }
}

TEST(QuantParamsTest, RangesGiveTheDocumentedParameters) {
  QuantParams p = choose_quant_params(0.5f, 5.1f, proto::U8_ZERO_POINT);  // widened to [0, 5.1]
  EXPECT_FALSE(p.is_signed);
  EXPECT_EQ(p.zero_point, 0);
  EXPECT_FLOAT_EQ(p.scale, 0.02f);
  EXPECT_EQ(p.min, 0.0f);
  p = choose_quant_params(-1.0f, 1.55f, proto::U8_ZERO_POINT);  // 255 levels of 0.01
  EXPECT_FALSE(p.is_signed);
  EXPECT_FLOAT_EQ(p.scale, 0.01f);
  EXPECT_EQ(p.zero_point, 100);
  p = choose_quant_params(-1.0f, 2.54f, proto::S8_SYMMETRIC);
  EXPECT_TRUE(p.is_signed);
  EXPECT_FLOAT_EQ(p.scale, 0.02f);
  EXPECT_EQ(p.zero_point, 0);
  p = choose_quant_params(0.0f, 0.0f, proto::U8_ZERO_POINT);
  EXPECT_EQ(p.scale, 1.0f);
  EXPECT_THROW(choose_quant_params(-INFINITY, 1.0f, proto::U8_ZERO_POINT), Error);

  const std::vector<float> x = {-1.0f, -0.004f, 0.0f, 0.006f, 1.56f, 9.0f};
  std::vector<uint8_t> codes(x.size());
  quantize_values(x.data(), 6, choose_quant_params(-1.0f, 1.55f, proto::U8_ZERO_POINT),
                  codes.data());
  EXPECT_EQ(codes, (std::vector<uint8_t>{0, 100, 100, 101, 255, 255}));
  std::vector<int8_t> signed_codes(x.size());
  quantize_values(x.data(), 6, choose_quant_params(-1.0f, 2.54f, proto::S8_SYMMETRIC),
                  signed_codes.data());
  EXPECT_EQ(signed_codes, (std::vector<int8_t>{-50, 0, 0, 0, 78, 127}));
}

TEST(QuantizeModel, BadInputGivesClearErrors) {
  CpuDevice device;
  Model model(device, model_config(kReluChain, 24));
  const Normalization norm;
  const Dataset wrong = testing::synthetic_dataset(10, 20, 5, 3);
  EXPECT_THROW(quantize_model(model, wrong, norm, {}), Error);
  const Dataset data = testing::synthetic_dataset(10, 24, 5, 3);
  QuantizeOptions options;
  options.calibration_percentile = 40;
  try {
    quantize_model(model, data, norm, options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find("calibration_percentile"), std::string::npos);
  }
  Model f64(device, model_config(kReluChain, 24), ModelOptions{DType::kF64});
  EXPECT_THROW(quantize_model(f64, data, norm, {}), Error);
}

TEST(QuantizeModel, PercentileNarrowsTheRange) {
  CpuDevice device;
  Model model(device, model_config(kReluChain, 24));
  const Dataset data = testing::synthetic_dataset(200, 24, 5, 3);
  const Normalization norm{1.0f / 255, 0.45f, 0.25f};
  const QuantizedModel full = quantize_model(model, data, norm, {});
  QuantizeOptions options;
  options.calibration_percentile = 99.0;
  const QuantizedModel clipped = quantize_model(model, data, norm, options);
  for (std::size_t d = 0; d < full.layers.size(); ++d) {
    EXPECT_LT(clipped.layers[d].input.max, full.layers[d].input.max) << d;
    EXPECT_GE(clipped.layers[d].input.min, full.layers[d].input.min) << d;
  }
  // The input layer's values are (pixel / 255 - 0.45) / 0.25: the range ends are exact.
  EXPECT_NEAR(full.layers[0].input.min, -1.8, 1e-5);
}

TEST(QuantizeConfigTest, ValidatedWithTheFieldName) {
  proto::QuantizeConfig config;
  EXPECT_NO_THROW(validate_quantize_config(config, "c.prototxt"));
  EXPECT_EQ(quantize_options_from(config).calibration_samples, 1024);
  config.set_calibration_samples(0);
  try {
    validate_quantize_config(config, "c.prototxt");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "c.prototxt: compress.quantize.calibration_samples: must be > 0 (got 0)");
  }
  config.set_calibration_samples(5);
  config.set_calibration_percentile(101);
  EXPECT_THROW(validate_quantize_config(config, "c.prototxt"), Error);
}

}  // namespace
}  // namespace dpt
