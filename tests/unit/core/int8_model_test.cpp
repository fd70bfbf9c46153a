// Tests for core/int8_model: int8 logits against a float64 forward pass of the fp32 weights
// within an error bound propagated layer by layer from the scales (ReLU chains that stay in int8,
// and tanh / gelu / leaky ReLU / identity layers that go through fp32, with u8 zero point and s8
// symmetric inputs), and against the int8 arithmetic simulated in float64 from the codes (catches
// a wrongly folded bias, zero point or scale); argmax agreement on a trained toy model; rows that
// do not depend on the batch.
#include "core/int8_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/quantize.h"
#include "devices/cpu_device.h"
#include "quantize_fixture.h"

namespace dpt {
namespace {

using testing::kMixed;
using testing::kReluChain;
using testing::model_config;

// Random biases so that they matter in the comparison.
void randomize_biases(Model& model) {
  RandomStream random(21, 0);
  for (const NamedParam& param : model.named_params()) {
    if (param.name.find("/bias") == std::string::npos) continue;
    for (int64_t i = 0; i < param.value.numel(); ++i) {
      param.value.data<float>()[i] = static_cast<float>(random.uniform() - 0.5);
    }
  }
}

// For each sample row: the float64 forward pass of the fp32 weights (the reference) and a bound
// on |int8 logits - reference| carried layer by layer. With x the true input of a layer and e a
// bound on the int8 path's error in it, the codes stand for x' with |x' - x| <= e + s_x / 2 (x
// lies in the calibrated range), W' = s_w q with |W' - W| <= s_w / 2, so
// |x' W'^T - x W^T|_j <= sum_k (e_k + s_x / 2)(|W_jk| + s_wj / 2) + |x_k| s_wj / 2; an activation
// multiplies the bound by its Lipschitz constant. A small term covers float32 rounding.
struct Reference {
  std::vector<double> logits, bound;
};
Reference reference(const Model& model, const QuantizedModel& q, const float* input) {
  std::map<std::string, const float*> params;
  for (const NamedParam& param : model.named_params())
    params[param.name] = param.value.data<float>();
  std::vector<double> x(input, input + q.input_size), e(x.size(), 0.0);
  for (const QuantizedDense& layer : q.layers) {
    const float* w = params.at(layer.name + "/weight");
    const double half_x = layer.input.scale / 2;
    std::vector<double> y(layer.output_size), error(layer.output_size);
    for (int64_t j = 0; j < layer.output_size; ++j) {
      const double half_w = layer.weight.scales[j] / 2;
      double sum = layer.bias.empty() ? 0.0 : layer.bias[j], bound = 0, magnitude = std::fabs(sum);
      for (int64_t k = 0; k < layer.input_size; ++k) {
        const double wk = w[j * layer.input_size + k];
        sum += wk * x[k];
        const double ex = e[k] + half_x + 1e-6 * (std::fabs(x[k]) + 1);
        bound += ex * (std::fabs(wk) + half_w) + std::fabs(x[k]) * half_w;
        magnitude += std::fabs(wk * x[k]);
      }
      y[j] = sum;
      error[j] = bound + 1e-5 * (magnitude + 1);
    }
    for (const ActivationSpec& spec : layer.activations) {
      for (int64_t j = 0; j < layer.output_size; ++j) {
        y[j] = testing::activate(spec, y[j]);
        error[j] *= testing::lipschitz(spec);
      }
    }
    x = std::move(y);
    e = std::move(error);
  }
  return {x, e};
}

// The int8 arithmetic simulated in float64 from the stored codes and scales: quantize each
// layer's input with its parameters, integer product, dequantize, activations. The int8 model
// must match it up to float32 rounding (a code may flip at a rounding tie).
std::vector<double> simulate(const QuantizedModel& q, const float* input) {
  std::vector<double> x(input, input + q.input_size);
  for (const QuantizedDense& layer : q.layers) {
    const QuantParams& in = layer.input;
    const double lo = in.is_signed ? -127 : 0, hi = in.is_signed ? 127 : 255;
    std::vector<double> codes(x.size());
    for (std::size_t k = 0; k < x.size(); ++k) {
      codes[k] = std::clamp(std::nearbyint(x[k] / in.scale) + in.zero_point, lo, hi);
    }
    std::vector<double> y(layer.output_size);
    for (int64_t j = 0; j < layer.output_size; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < layer.input_size; ++k) {
        acc += (codes[k] - in.zero_point) * layer.weight.values[j * layer.input_size + k];
      }
      y[j] = static_cast<double>(in.scale) * layer.weight.scales[j] * acc +
             (layer.bias.empty() ? 0.0 : layer.bias[j]);
      for (const ActivationSpec& spec : layer.activations) y[j] = testing::activate(spec, y[j]);
    }
    x = std::move(y);
  }
  return x;
}

struct Case {
  const char* layers;
  proto::SignedInputs signed_inputs;
};

class Int8ModelBound : public ::testing::TestWithParam<Case> {};

TEST_P(Int8ModelBound, LogitsWithinTheBoundDerivedFromTheScales) {
  CpuDevice device;
  Model model(device, model_config(GetParam().layers, 24));
  randomize_biases(model);
  const Dataset data = testing::synthetic_dataset(300, 24, 5, 7);
  const Normalization norm{1.0f / 255, 0.45f, 0.25f};  // inputs in about [-1.8, 2.2]
  QuantizeOptions options;
  options.signed_inputs = GetParam().signed_inputs;
  const QuantizedModel q = quantize_model(model, data, norm, options);
  EXPECT_EQ(q.calibration_samples, 300);
  EXPECT_EQ(q.layers[0].input.is_signed, GetParam().signed_inputs == proto::S8_SYMMETRIC);
  EXPECT_EQ(q.layers[0].input.zero_point != 0, GetParam().signed_inputs == proto::U8_ZERO_POINT);

  Int8Model int8(device, q);
  const Tensor inputs = testing::dataset_batch(device, data, norm, data.size);
  const Tensor& logits = int8.forward(inputs);
  const Tensor& fp32 = model.forward(inputs, Pass{});
  double worst = 0, mean_bound = 0, mean_error = 0;
  int64_t simulated = 0;
  for (int64_t i = 0; i < data.size; ++i) {
    const Reference ref = reference(model, q, inputs.data<float>() + i * q.input_size);
    const std::vector<double> sim = simulate(q, inputs.data<float>() + i * q.input_size);
    for (int64_t j = 0; j < q.output_size(); ++j) {
      const double got = logits.data<float>()[i * q.output_size() + j];
      simulated += std::fabs(got - sim[j]) <= 1e-4 * (1 + std::fabs(sim[j]));
      const double error = std::fabs(got - ref.logits[j]);
      ASSERT_LE(error, ref.bound[j]) << "sample " << i << " logit " << j;
      ASSERT_NEAR(fp32.data<float>()[i * q.output_size() + j], ref.logits[j], 1e-4);
      worst = std::max(worst, error / ref.bound[j]);
      mean_bound += ref.bound[j];
      mean_error += error;
    }
  }
  EXPECT_GE(simulated, data.size * q.output_size() * 99 / 100)
      << "logits equal to the simulated int8 arithmetic: " << simulated;
  // Informative: how tight the bound is (the error is far below it, as rounding errors cancel).
  std::printf("  worst error / bound %.3f, mean error %.4f, mean bound %.4f\n", worst,
              mean_error / (data.size * 5), mean_bound / (data.size * 5));
}

INSTANTIATE_TEST_SUITE_P(Layers, Int8ModelBound,
                         ::testing::Values(Case{kReluChain, proto::U8_ZERO_POINT},
                                           Case{kReluChain, proto::S8_SYMMETRIC},
                                           Case{kMixed, proto::U8_ZERO_POINT},
                                           Case{kMixed, proto::S8_SYMMETRIC}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.layers == kReluChain ? "relu" : "mixed") +
                                  (info.param.signed_inputs == proto::S8_SYMMETRIC ? "_s8" : "_u8");
                         });

TEST(Int8Model, TrainedToyModelAgreesWithFp32OnArgmax) {
  CpuDevice device;
  const char* layers =
      "layer { dense { units: 64 } } layer { activation { kind: RELU } } "
      "layer { dropout { rate: 0.1 } } layer { dense { units: 64 } } "
      "layer { activation { kind: RELU } } layer { dense { units: 4 } }";
  Model model(device, model_config(layers, 32));
  const Dataset train = testing::synthetic_dataset(2000, 32, 4, 1);
  const Dataset test = testing::synthetic_dataset(1000, 32, 4, 2);
  const Normalization norm{1.0f / 255, 0.4f, 0.3f};
  testing::train_sgd(model, train, norm, 8, 50, 0.05f);
  QuantizeOptions options;
  options.calibration_samples = 500;
  Int8Model int8(device, quantize_model(model, train, norm, options));
  const Tensor inputs = testing::dataset_batch(device, test, norm, test.size);
  const Tensor& a = model.forward(inputs, Pass{});
  const Tensor& b = int8.forward(inputs);
  int64_t agree = 0, correct = 0;
  for (int64_t i = 0; i < test.size; ++i) {
    const float* ra = a.data<float>() + i * 4;
    const float* rb = b.data<float>() + i * 4;
    const auto arg_a = std::max_element(ra, ra + 4) - ra;
    agree += arg_a == std::max_element(rb, rb + 4) - rb;
    correct += arg_a == test.labels[i];
  }
  EXPECT_GT(correct, 900) << "the toy model did not learn";
  EXPECT_GE(agree, 990) << "int8 and fp32 argmax agree on " << agree << " of 1000";
}

TEST(Int8Model, RowsDoNotDependOnTheBatch) {
  CpuDevice device;
  Model model(device, model_config(kMixed, 24));
  const Dataset data = testing::synthetic_dataset(64, 24, 5, 3);
  const Normalization norm{1.0f / 255, 0.45f, 0.25f};
  Int8Model int8(device, quantize_model(model, data, norm, {}));
  const Tensor inputs = testing::dataset_batch(device, data, norm, 64);
  const std::vector<float> full(int8.forward(inputs).data<float>(),
                                int8.forward(inputs).data<float>() + 64 * 5);
  for (int64_t i : {0, 17, 63}) {
    const Tensor& one = int8.forward(inputs.slice(i * 24, {1, 24}));
    for (int j = 0; j < 5; ++j) EXPECT_EQ(one.data<float>()[j], full[i * 5 + j]) << i << "," << j;
  }
}

}  // namespace
}  // namespace dpt
