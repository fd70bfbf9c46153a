// SGD against hand-computed updates (3 steps on 3 elements): plain, momentum, Nesterov, weight
// decay; its state; and a 2^20 + 3 element buffer against a scalar double reference, which runs
// the parallel, vectorised loop and its tail.
#include "optim/sgd.h"

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

proto::SgdConfig sgd_config(float momentum, bool nesterov, float weight_decay) {
  proto::SgdConfig config;
  config.set_momentum(momentum);
  config.set_nesterov(nesterov);
  config.set_weight_decay(weight_decay);
  return config;
}

// Three steps of lr 0.1 from p = {1, -2, 0.5} with the constant gradient {0.5, -1, 2}.
std::vector<float> three_steps(const proto::SgdConfig& config) {
  CpuDevice device;
  Sgd sgd(device, config, 3);
  Tensor params = make_tensor(device, {1.0f, -2.0f, 0.5f});
  Tensor grads = make_tensor(device, {0.5f, -1.0f, 2.0f});
  for (int step = 0; step < 3; ++step) sgd.step(params, grads, 0.1f);
  EXPECT_EQ(sgd.steps(), 3);
  return values_of(params);
}

void expect_near_all(const std::vector<float>& actual, const std::vector<double>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], 1e-6) << "element " << i;
  }
}

TEST(Sgd, PlainIsThreeGradientSteps) {
  // p - 3 * 0.1 * g.
  expect_near_all(three_steps(sgd_config(0, false, 0)), {0.85, -1.7, -0.1});
}

TEST(Sgd, MomentumAccumulatesFromTheFirstGradient) {
  // buf = g, 1.9 g, 2.71 g; p - 0.1 * 5.61 g.
  expect_near_all(three_steps(sgd_config(0.9f, false, 0)), {0.7195, -1.439, -0.622});
}

TEST(Sgd, NesterovAddsMomentumTimesBuffer) {
  // Updates g + 0.9 buf = 1.9 g, 2.71 g, 3.439 g; p - 0.1 * 8.049 g.
  expect_near_all(three_steps(sgd_config(0.9f, true, 0)), {0.59755, -1.1951, -1.1098});
}

TEST(Sgd, WeightDecayIsAddedToTheGradient) {
  // p' = 0.99 p - 0.1 g three times: 0.970299 p - 0.29701 g.
  expect_near_all(three_steps(sgd_config(0, false, 0.1f)), {0.821794, -1.643588, -0.1088705});
}

TEST(Sgd, NesterovWithWeightDecay) {
  expect_near_all(three_steps(sgd_config(0.9f, true, 0.1f)),
                  {0.525363646, -1.050727292, -1.1216742095});
}

TEST(Sgd, StateIsTheMomentumBufferOnlyWithMomentum) {
  CpuDevice device;
  Sgd plain(device, sgd_config(0, false, 0), 3);
  EXPECT_EQ(plain.name(), "sgd");
  EXPECT_TRUE(plain.state().empty());

  Sgd sgd(device, sgd_config(0.5f, false, 0), 3);
  Tensor params = make_tensor(device, {1.0f, 2.0f, 3.0f});
  Tensor grads = make_tensor(device, {0.25f, -0.5f, 1.0f});
  sgd.step(params, grads, 0.1f);
  std::vector<NamedTensor> state = sgd.state();
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].name, "sgd.momentum");
  EXPECT_EQ(values_of(state[0].tensor), (std::vector<float>{0.25f, -0.5f, 1.0f}));
}

TEST(Sgd, RestoredStateContinuesExactly) {
  CpuDevice device;
  const proto::SgdConfig config = sgd_config(0.9f, true, 0.01f);
  Sgd original(device, config, 3);
  Tensor params = make_tensor(device, {1.0f, -2.0f, 0.5f});
  Tensor grads = make_tensor(device, {0.3f, -0.7f, 1.1f});
  original.step(params, grads, 0.1f);
  original.step(params, grads, 0.1f);

  Sgd restored(device, config, 3);
  restored.state()[0].tensor.copy_from(original.state()[0].tensor);
  restored.set_steps(original.steps());
  Tensor restored_params = make_tensor(device, values_of(params));
  original.step(params, grads, 0.05f);
  restored.step(restored_params, grads, 0.05f);
  EXPECT_EQ(values_of(restored_params), values_of(params));
  EXPECT_EQ(values_of(restored.state()[0].tensor), values_of(original.state()[0].tensor));
  EXPECT_EQ(restored.steps(), 3);
}

TEST(Sgd, LargeBufferMatchesScalarReference) {
  const int64_t n = (int64_t{1} << 20) + 3;
  CpuDevice device(CpuDeviceOptions{2});
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> p0(n), g0(n), g1(n);
  for (int64_t i = 0; i < n; ++i) {
    p0[i] = uniform(rng);
    g0[i] = uniform(rng);
    g1[i] = uniform(rng);
  }
  const float lr = 0.05f, momentum = 0.8f, wd = 0.02f;
  std::vector<double> p(p0.begin(), p0.end()), buf(n, 0.0);
  for (const std::vector<float>* g : {&g0, &g1}) {
    for (int64_t i = 0; i < n; ++i) {
      const double d = (*g)[i] + double{wd} * p[i];
      buf[i] = double{momentum} * buf[i] + d;
      p[i] -= double{lr} * (d + double{momentum} * buf[i]);
    }
  }
  std::vector<float> by_threads[2];
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    Sgd sgd(device, sgd_config(momentum, true, wd), n);
    Tensor params = make_tensor(device, p0);
    sgd.step(params, make_tensor(device, g0), lr);
    sgd.step(params, make_tensor(device, g1), lr);
    by_threads[threads - 1] = values_of(params);
  }
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_NEAR(by_threads[1][i], p[i], 1e-6) << "element " << i;
  }
  EXPECT_EQ(by_threads[0], by_threads[1]);
}

TEST(Sgd, RejectsInvalidConfigNamingTheField) {
  CpuDevice device;
  struct Case {
    proto::SgdConfig config;
    const char* message;
  };
  const Case cases[] = {
      {sgd_config(1.0f, false, 0), "optimizer.sgd.momentum: must be in [0, 1) (got 1)"},
      {sgd_config(-0.5f, false, 0), "optimizer.sgd.momentum: must be in [0, 1) (got -0.5)"},
      {sgd_config(0, true, 0), "optimizer.sgd.nesterov: requires optimizer.sgd.momentum > 0"},
      {sgd_config(0, false, -1), "optimizer.sgd.weight_decay: must be >= 0 (got -1)"},
      {sgd_config(0, false, NAN), "optimizer.sgd.weight_decay: must be >= 0 (got nan)"},
  };
  for (const Case& c : cases) {
    expect_error([&] { Sgd sgd(device, c.config, 3); }, ErrorKind::kConfig, c.message);
  }
}

}  // namespace
}  // namespace dpt
