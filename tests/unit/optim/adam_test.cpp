// Adam and AdamW against a naive double-precision reference of the textbook formulas
// (p -= lr * m_hat / (sqrt(v_hat) + eps)) and hand values for the first step; their state, its
// restoration, set_steps and the bias correction; and a 2^20 + 3 element buffer.
#include "optim/adam.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <vector>

#include "devices/cpu_device.h"
#include "devices/error.h"
#include "expect_error.h"
#include "tensor_values.h"

namespace dpt {
namespace {

using testing::expect_error;
using testing::make_tensor;
using testing::values_of;

// Hyper-parameters as the user writes them; the reference uses these decimals, the optimizer
// gets them through the float config fields.
struct Hyper {
  double weight_decay = 0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

proto::AdamConfig adam_config(const Hyper& hyper) {
  proto::AdamConfig config;
  config.set_beta1(static_cast<float>(hyper.beta1));
  config.set_beta2(static_cast<float>(hyper.beta2));
  config.set_eps(static_cast<float>(hyper.eps));
  config.set_weight_decay(static_cast<float>(hyper.weight_decay));
  return config;
}

// The textbook algorithm in double, one parameter vector, starting at step `first_t`.
struct ReferenceAdam {
  double beta1, beta2, eps, weight_decay;
  bool decoupled;
  std::vector<double> m, v;
  int64_t t;

  void step(std::vector<double>& p, const std::vector<float>& grad, double lr) {
    ++t;
    for (std::size_t i = 0; i < p.size(); ++i) {
      double g = grad[i];
      if (decoupled) {
        p[i] -= lr * weight_decay * p[i];
      } else {
        g += weight_decay * p[i];
      }
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      const double m_hat = m[i] / (1 - std::pow(beta1, static_cast<double>(t)));
      const double v_hat = v[i] / (1 - std::pow(beta2, static_cast<double>(t)));
      p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
};

ReferenceAdam reference_for(const Hyper& hyper, bool decoupled, std::size_t n,
                            int64_t steps_done = 0) {
  return ReferenceAdam{hyper.beta1,
                       hyper.beta2,
                       hyper.eps,
                       hyper.weight_decay,
                       decoupled,
                       std::vector<double>(n),
                       std::vector<double>(n),
                       steps_done};
}

const std::vector<float> kParams = {1.0f, -2.0f, 0.5f, 0.0f};
// Gradients of three steps; element 0 changes sign, element 3 is zero at first.
const std::vector<std::vector<float>> kGrads = {
    {0.5f, -1.0f, 2.0f, 0.0f}, {-0.25f, -0.5f, 1.5f, 0.1f}, {0.75f, -2.0f, 0.5f, -0.3f}};

// Runs three steps of lr 0.01 and compares each step with the reference.
std::vector<float> run_three_steps(const Hyper& hyper, bool decoupled) {
  CpuDevice device;
  Adam adam(device, adam_config(hyper), decoupled, 4);
  ReferenceAdam reference = reference_for(hyper, decoupled, 4);
  Tensor params = make_tensor(device, kParams);
  std::vector<double> expected(kParams.begin(), kParams.end());
  for (const std::vector<float>& grad : kGrads) {
    adam.step(params, make_tensor(device, grad), 0.01f);
    reference.step(expected, grad, 0.01);
    for (int i = 0; i < 4; ++i) {
      EXPECT_NEAR(params.data<float>()[i], expected[i], 4e-7) << "step " << adam.steps();
    }
  }
  EXPECT_EQ(adam.steps(), 3);
  return values_of(params);
}

TEST(Adam, FirstStepMovesEachParameterByLrTimesSignOfGradient) {
  // m_hat = g, v_hat = g^2: the step is lr * g / (|g| + eps). Adam's g includes 0.1 * p.
  CpuDevice device;
  Adam adam(device, adam_config({0.1}), /*decoupled=*/false, 4);
  Tensor params = make_tensor(device, kParams);
  adam.step(params, make_tensor(device, kGrads[0]), 0.01f);
  EXPECT_EQ(adam.name(), "adam");
  EXPECT_NEAR(params.data<float>()[0], 0.99, 3e-7);
  EXPECT_NEAR(params.data<float>()[1], -1.99, 3e-7);
  EXPECT_NEAR(params.data<float>()[2], 0.49, 3e-7);
  EXPECT_EQ(params.data<float>()[3], 0.0f);  // g = 0 and p = 0: no movement

  // AdamW: p * (1 - 0.01 * 0.1) first, then lr * sign(grad).
  Adam adamw(device, adam_config({0.1}), /*decoupled=*/true, 4);
  Tensor params_w = make_tensor(device, kParams);
  adamw.step(params_w, make_tensor(device, kGrads[0]), 0.01f);
  EXPECT_EQ(adamw.name(), "adamw");
  EXPECT_NEAR(params_w.data<float>()[0], 0.989, 3e-7);
  EXPECT_NEAR(params_w.data<float>()[1], -1.988, 3e-7);
  EXPECT_NEAR(params_w.data<float>()[2], 0.4895, 3e-7);
}

TEST(Adam, ThreeStepsWithWeightDecayMatchReference) {
  const std::vector<float> adam = run_three_steps({0.1}, false);
  const std::vector<float> adamw = run_three_steps({0.1}, true);
  EXPECT_NE(adam, adamw);
}

TEST(Adam, AdamWEqualsAdamWithoutWeightDecay) {
  const std::vector<float> adam = run_three_steps({0}, false);
  const std::vector<float> adamw = run_three_steps({0}, true);
  EXPECT_EQ(adam, adamw);
}

TEST(Adam, OtherBetasAndEpsMatchReference) {
  run_three_steps({0.05, 0.5, 0.75, 0.1}, false);
  run_three_steps({0.05, 0.0, 0.0, 1e-3}, true);
}

TEST(Adam, StateIsTheMomentsByStableNames) {
  CpuDevice device;
  Adam adam(device, adam_config({0}), false, 4);
  Tensor params = make_tensor(device, kParams);
  adam.step(params, make_tensor(device, kGrads[0]), 0.01f);
  std::vector<NamedTensor> state = adam.state();
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[0].name, "adam.m");
  EXPECT_EQ(state[1].name, "adam.v");
  for (int i = 0; i < 4; ++i) {
    const double g = kGrads[0][i];
    // (1 - beta1) and (1 - beta2) from the decimals 0.9 and 0.999, as PyTorch computes them.
    EXPECT_FLOAT_EQ(state[0].tensor.data<float>()[i], 0.1 * g);
    EXPECT_FLOAT_EQ(state[1].tensor.data<float>()[i], 0.001 * g * g);
  }
}

TEST(Adam, RestoredStateContinuesExactly) {
  for (bool decoupled : {false, true}) {
    CpuDevice device;
    Adam original(device, adam_config({0.1}), decoupled, 4);
    Tensor params = make_tensor(device, kParams);
    original.step(params, make_tensor(device, kGrads[0]), 0.01f);
    original.step(params, make_tensor(device, kGrads[1]), 0.01f);

    Adam restored(device, adam_config({0.1}), decoupled, 4);
    for (std::size_t k = 0; k < 2; ++k) {
      restored.state()[k].tensor.copy_from(original.state()[k].tensor);
    }
    restored.set_steps(original.steps());
    Tensor restored_params = make_tensor(device, values_of(params));
    original.step(params, make_tensor(device, kGrads[2]), 0.01f);
    restored.step(restored_params, make_tensor(device, kGrads[2]), 0.01f);
    EXPECT_EQ(values_of(restored_params), values_of(params)) << restored.name();
    for (std::size_t k = 0; k < 2; ++k) {
      EXPECT_EQ(values_of(restored.state()[k].tensor), values_of(original.state()[k].tensor));
    }
  }
}

TEST(Adam, SetStepsChangesTheBiasCorrection) {
  CpuDevice device;
  const Hyper hyper;
  Adam adam(device, adam_config(hyper), false, 4);
  adam.set_steps(10);
  EXPECT_EQ(adam.steps(), 10);
  Tensor params = make_tensor(device, kParams);
  adam.step(params, make_tensor(device, kGrads[0]), 0.01f);
  EXPECT_EQ(adam.steps(), 11);

  // With fresh moments at t = 11: m_hat = 0.1 g / (1 - 0.9^11), v_hat = 0.001 g^2 / (1 - 0.999^11).
  ReferenceAdam reference = reference_for(hyper, false, 4, /*steps_done=*/10);
  std::vector<double> expected(kParams.begin(), kParams.end());
  reference.step(expected, kGrads[0], 0.01);
  // 0.01 * (0.1 / 0.686189) / sqrt(0.001 / 0.010945) = 0.004821...: not the t = 1 step of 0.01.
  EXPECT_NEAR(kParams[0] - expected[0], 0.0048213, 1e-6);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(params.data<float>()[i], expected[i], 4e-7);
}

TEST(Adam, LargeBufferMatchesScalarReference) {
  const int64_t n = (int64_t{1} << 20) + 3;
  CpuDevice device(CpuDeviceOptions{2});
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> p0(n);
  std::vector<std::vector<float>> grads(2, std::vector<float>(n));
  for (int64_t i = 0; i < n; ++i) {
    p0[i] = uniform(rng);
    grads[0][i] = uniform(rng);
    grads[1][i] = uniform(rng);
  }
  const Hyper hyper{0.01};
  for (bool decoupled : {false, true}) {
    ReferenceAdam reference = reference_for(hyper, decoupled, n);
    std::vector<double> expected(p0.begin(), p0.end());
    for (const auto& grad : grads) reference.step(expected, grad, 1e-3);
    std::vector<float> by_threads[2];
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      Adam adam(device, adam_config(hyper), decoupled, n);
      Tensor params = make_tensor(device, p0);
      for (const auto& grad : grads) adam.step(params, make_tensor(device, grad), 1e-3f);
      by_threads[threads - 1] = values_of(params);
    }
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_NEAR(by_threads[1][i], expected[i], 4e-7) << "element " << i << " " << decoupled;
    }
    EXPECT_EQ(by_threads[0], by_threads[1]);
  }
}

TEST(Adam, RejectsInvalidConfigNamingTheField) {
  CpuDevice device;
  struct Case {
    proto::AdamConfig config;
    bool decoupled;
    const char* message;
  };
  const Case cases[] = {
      {adam_config({0, 1.0}), false, "optimizer.adam.beta1: must be in [0, 1) (got 1)"},
      {adam_config({0, -0.1}), true, "optimizer.adamw.beta1: must be in [0, 1) (got -0.1)"},
      {adam_config({0, 0.9, 1.0}), false, "optimizer.adam.beta2: must be in [0, 1) (got 1)"},
      {adam_config({0, 0.9, NAN}), true, "optimizer.adamw.beta2: must be in [0, 1) (got nan)"},
      {adam_config({0, 0.9, 0.999, 0}), false, "optimizer.adam.eps: must be > 0 (got 0)"},
      {adam_config({-1}), true, "optimizer.adamw.weight_decay: must be >= 0 (got -1)"},
  };
  for (const Case& c : cases) {
    expect_error([&] { Adam adam(device, c.config, c.decoupled, 4); }, ErrorKind::kConfig,
                 c.message);
  }
}

}  // namespace
}  // namespace dpt
