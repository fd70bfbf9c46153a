// Gradient checks by central differences, in double precision, for every layer kind (Dense with
// and without bias and with each fused activation, each activation alone, dropout) and both
// losses. Objective for a layer: sum(upstream * layer(x)), so backward(upstream) is its gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "core/activation.h"
#include "core/dense.h"
#include "core/dropout.h"
#include "core/loss.h"
#include "core/random.h"
#include "devices/cpu_device.h"
#include "devices/error.h"
#include "gradient_check.h"

namespace dpt {
namespace {
using testing::check_gradient;

constexpr int64_t kBatch = 3;

// Fills t with values in [-1, -0.05] u [0.05, 1], away from the ReLU kink.
void fill_away_from_zero(Tensor& t, uint64_t stream) {
  RandomStream random(42, stream);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    double u = 0.05 + 0.95 * random.uniform();
    p[i] = random.uniform() < 0.5 ? -u : u;
  }
}

double dot(const Tensor& a, const Tensor& b) {
  double sum = 0;
  for (int64_t i = 0; i < a.numel(); ++i) sum += a.data<double>()[i] * b.data<double>()[i];
  return sum;
}

// Checks grad_input and parameter gradients of `layer` (params already bound and initialised).
void check_layer(Device& device, Layer& layer, Tensor* params, Tensor* grads, const Pass& pass) {
  Tensor input(device, {kBatch, layer.input_size()}, DType::kF64);
  Tensor output(device, {kBatch, layer.output_size()}, DType::kF64);
  Tensor upstream(device, {kBatch, layer.output_size()}, DType::kF64);
  Tensor grad_input(device, {kBatch, layer.input_size()}, DType::kF64);
  fill_away_from_zero(input, 1);
  fill_away_from_zero(upstream, 2);
  auto objective = [&] {
    layer.forward(input, output, pass);
    return dot(upstream, output);
  };
  objective();
  if (grads) grads->fill_zero();
  layer.backward(upstream, &grad_input);
  // Copy: analytic gradients must not change while the objective is re-evaluated.
  std::vector<double> analytic_input(grad_input.data<double>(),
                                     grad_input.data<double>() + grad_input.numel());
  check_gradient(objective, input.data<double>(), input.numel(), analytic_input.data(),
                 layer.kind() + " input");
  if (params) {
    std::vector<double> analytic(grads->data<double>(), grads->data<double>() + grads->numel());
    check_gradient(objective, params->data<double>(), params->numel(), analytic.data(),
                   layer.kind() + " params");
  }
}

TEST(LayerGradient, DenseWithBiasAndEveryFusedActivation) {
  CpuDevice device;
  std::vector<std::optional<ActivationSpec>> epilogues = {std::nullopt};
  for (auto kind : {proto::RELU, proto::LEAKY_RELU, proto::GELU, proto::TANH, proto::SIGMOID}) {
    epilogues.push_back(ActivationSpec{kind, 0.1f});
  }
  for (bool bias : {true, false}) {
    for (const auto& epilogue : epilogues) {
      proto::DenseConfig config;
      config.set_units(4);
      config.set_bias(bias);
      Dense dense(device, "d", 0, 5, config, epilogue);
      Tensor params(device, {dense.num_params()}, DType::kF64);
      Tensor grads(device, {dense.num_params()}, DType::kF64);
      dense.bind_params(params, grads);
      fill_away_from_zero(params, 3);
      SCOPED_TRACE(dense.kind() + (bias ? " with bias" : " without bias"));
      check_layer(device, dense, &params, &grads, Pass{});
    }
  }
}

TEST(LayerGradient, EachActivationLayer) {
  CpuDevice device;
  for (auto kind : {proto::RELU, proto::LEAKY_RELU, proto::GELU, proto::TANH, proto::SIGMOID}) {
    Activation activation("a", 0, 6, ActivationSpec{kind, 0.2f});
    SCOPED_TRACE(activation.kind());
    check_layer(device, activation, nullptr, nullptr, Pass{});
  }
}

TEST(LayerGradient, DropoutInTrainingAndEvaluation) {
  CpuDevice device;
  Dropout dropout(device, "drop", 0, 8, 0.5f, 7);
  check_layer(device, dropout, nullptr, nullptr, Pass{true, 3, 0});
  check_layer(device, dropout, nullptr, nullptr, Pass{false, 3, 0});
}

TEST(LayerGradient, Losses) {
  CpuDevice device;
  const int64_t classes = 5;
  std::vector<int32_t> labels = {0, 4, 2};
  for (auto kind : {proto::SOFTMAX_CROSS_ENTROPY, proto::MEAN_SQUARED_ERROR}) {
    Tensor logits(device, {kBatch, classes}, DType::kF64);
    Tensor grad(device, {kBatch, classes}, DType::kF64);
    fill_away_from_zero(logits, 4);
    compute_loss(kind, logits, labels.data(), &grad, 1.0);
    std::vector<double> analytic(grad.data<double>(), grad.data<double>() + grad.numel());
    auto objective = [&] {
      return compute_loss(kind, logits, labels.data(), nullptr, 1.0).loss_sum;
    };
    check_gradient(objective, logits.data<double>(), logits.numel(), analytic.data(),
                   kind == proto::SOFTMAX_CROSS_ENTROPY ? "softmax_ce" : "mse");
  }
}

TEST(Loss, SoftmaxCrossEntropyValuesByHand) {
  CpuDevice device;
  Tensor logits(device, {2, 3}, DType::kF64);
  double values[] = {1, 2, 3, 1000, 0, -1000};  // the second row would overflow without shifting
  std::copy(values, values + 6, logits.data<double>());
  int32_t labels[] = {2, 1};
  LossResult result = compute_loss(proto::SOFTMAX_CROSS_ENTROPY, logits, labels, nullptr, 1.0);
  const double first = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0;
  EXPECT_NEAR(result.loss_sum, first + 1000.0, 1e-9);
  EXPECT_EQ(result.correct, 1);
}

TEST(Loss, MeanSquaredErrorValuesByHand) {
  CpuDevice device;
  Tensor outputs(device, {1, 2}, DType::kF64);
  outputs.data<double>()[0] = 0.5;
  outputs.data<double>()[1] = 2.0;
  int32_t label = 0;
  Tensor grad(device, {1, 2}, DType::kF64);
  LossResult result = compute_loss(proto::MEAN_SQUARED_ERROR, outputs, &label, &grad, 0.5);
  EXPECT_DOUBLE_EQ(result.loss_sum, (0.25 + 4.0) / 2);
  EXPECT_DOUBLE_EQ(grad.data<double>()[0], 0.5 * 2 * -0.5 / 2);
  EXPECT_DOUBLE_EQ(grad.data<double>()[1], 0.5 * 2 * 2.0 / 2);
  EXPECT_EQ(result.correct, 0);
}

TEST(Loss, RejectsLabelOutsideClasses) {
  CpuDevice device;
  Tensor logits(device, {1, 3}, DType::kF32);
  int32_t label = 3;
  try {
    compute_loss(proto::SOFTMAX_CROSS_ENTROPY, logits, &label, nullptr, 1.0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 3 of sample 0 is outside [0, 3)"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace dpt
