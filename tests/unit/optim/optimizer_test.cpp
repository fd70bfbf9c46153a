// make_optimizer's dispatch and validation, the step-argument checks, global_norm (bitwise the
// same for 1, 2 and 3 OpenMP threads, and equal to a double reference) and clip_grad_norm, and
// their dispatch (and the loss scaler's unscale_and_check's) to devices/gpu_ops.h on a device
// that claims to be CUDA (a test double).
#include "optim/optimizer.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "devices/cpu_device.h"
#include "devices/error.h"
#include "expect_error.h"
#include "fake_gpu.h"
#include "optim/loss_scaler.h"
#include "tensor_values.h"

namespace dpt {
namespace {

using testing::expect_error;
using testing::make_tensor;
using testing::values_of;

TEST(MakeOptimizer, PicksTheConfiguredKind) {
  CpuDevice device;
  proto::OptimizerConfig config;
  EXPECT_EQ(make_optimizer(device, config, 5)->name(), "sgd");
  config.mutable_sgd()->set_momentum(0.9f);
  auto sgd = make_optimizer(device, config, 5);
  EXPECT_EQ(sgd->name(), "sgd");
  ASSERT_EQ(sgd->state().size(), 1u);
  EXPECT_EQ(sgd->state()[0].tensor.numel(), 5);
  config.mutable_adam();
  EXPECT_EQ(make_optimizer(device, config, 5)->name(), "adam");
  config.mutable_adamw()->set_weight_decay(0.01f);
  auto adamw = make_optimizer(device, config, 5);
  EXPECT_EQ(adamw->name(), "adamw");
  EXPECT_EQ(adamw->steps(), 0);
  ASSERT_EQ(adamw->state().size(), 2u);
  EXPECT_EQ(adamw->state()[1].tensor.numel(), 5);
}

TEST(MakeOptimizer, DefaultIsPlainSgd) {
  CpuDevice device;
  auto sgd = make_optimizer(device, proto::OptimizerConfig(), 2);
  EXPECT_TRUE(sgd->state().empty());
  Tensor params = make_tensor(device, {1.0f, 2.0f});
  sgd->step(params, make_tensor(device, {0.5f, -1.0f}), 0.5f);
  EXPECT_EQ(values_of(params), (std::vector<float>{0.75f, 2.5f}));
}

TEST(MakeOptimizer, RejectsInvalidValuesNamingTheField) {
  CpuDevice device;
  auto expect_config_error = [&](const proto::OptimizerConfig& config, const std::string& text) {
    expect_error([&] { make_optimizer(device, config, 3); }, ErrorKind::kConfig, text);
  };
  proto::OptimizerConfig config;
  config.set_lr(0);
  expect_config_error(config, "optimizer.lr: must be > 0 (got 0)");
  config.set_lr(-0.5f);
  expect_config_error(config, "optimizer.lr: must be > 0 (got -0.5)");
  config.set_lr(0.1f);
  config.set_clip_grad_norm(-1);
  expect_config_error(config, "optimizer.clip_grad_norm: must be >= 0 (got -1)");
  config.set_clip_grad_norm(1);

  proto::OptimizerConfig sgd = config;
  sgd.mutable_sgd()->set_momentum(1);
  expect_config_error(sgd, "optimizer.sgd.momentum: must be in [0, 1) (got 1)");
  sgd.mutable_sgd()->set_momentum(0);
  sgd.mutable_sgd()->set_nesterov(true);
  expect_config_error(sgd, "optimizer.sgd.nesterov: requires optimizer.sgd.momentum > 0");

  proto::OptimizerConfig adam = config;
  adam.mutable_adam()->set_beta1(1);
  expect_config_error(adam, "optimizer.adam.beta1: must be in [0, 1) (got 1)");
  proto::OptimizerConfig adamw = config;
  adamw.mutable_adamw()->set_eps(-1e-8f);
  expect_config_error(adamw, "optimizer.adamw.eps: must be > 0 (got -1e-08)");
}

TEST(StepTensors, WrongDtypeOrSizeNamesBoth) {
  CpuDevice device;
  proto::OptimizerConfig config;
  config.mutable_adam();
  auto adam = make_optimizer(device, config, 3);
  Tensor params = make_tensor(device, {1, 2, 3});
  Tensor grads = make_tensor(device, {1, 2, 3});
  Tensor doubles(device, {3}, DType::kF64);
  expect_error([&] { adam->step(doubles, grads, 0.1f); }, ErrorKind::kInternal,
               "adam: params is float64[3] and grads is float32[3]; both must be float32 with 3 "
               "elements");
  expect_error([&] { adam->step(params, doubles, 0.1f); }, ErrorKind::kInternal,
               "params is float32[3] and grads is float64[3]");
  Tensor four = make_tensor(device, {1, 2, 3, 4});
  expect_error([&] { adam->step(params, four, 0.1f); }, ErrorKind::kInternal,
               "params is float32[3] and grads is float32[4]; both must be float32 with 3");
  auto sgd = make_optimizer(device, proto::OptimizerConfig(), 4);
  expect_error([&] { sgd->step(params, grads, 0.1f); }, ErrorKind::kInternal,
               "sgd: params is float32[3] and grads is float32[3]; both must be float32 with 4");
  expect_error([&] { sgd->step(four, four, -1.0f); }, ErrorKind::kInternal,
               "sgd: lr = -1 must be finite and >= 0");
  EXPECT_EQ(sgd->steps(), 0);
  EXPECT_EQ(adam->steps(), 0);
}

TEST(GlobalNorm, HandValues) {
  CpuDevice device;
  EXPECT_EQ(global_norm(make_tensor(device, {3.0f, -4.0f})), 5.0);
  EXPECT_EQ(global_norm(make_tensor(device, {})), 0.0);
  // 4097 ones cross a chunk boundary: sqrt(4097).
  EXPECT_DOUBLE_EQ(global_norm(make_tensor(device, std::vector<float>(4097, 1.0f))),
                   std::sqrt(4097.0));
  // Squares of float32 values beyond float range are fine in double.
  const double a = 3e30f, b = 4e30f;
  EXPECT_DOUBLE_EQ(global_norm(make_tensor(device, {3e30f, 4e30f})), std::sqrt(a * a + b * b));
}

TEST(GlobalNorm, SameBitsForAnyThreadCountAndMatchesDoubleReference) {
  CpuDevice device(CpuDeviceOptions{2});
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{4095}, int64_t{4096}, int64_t{40000},
                    (int64_t{1} << 20) + 3}) {
    std::vector<float> values(n);
    for (float& value : values) value = uniform(rng);
    Tensor grads = make_tensor(device, values);
    double reference = 0;
    for (float value : values) reference += double{value} * value;
    reference = std::sqrt(reference);
    double norms[3];
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      norms[threads - 1] = global_norm(grads);
    }
    EXPECT_EQ(norms[0], norms[1]) << "n = " << n;
    EXPECT_EQ(norms[0], norms[2]) << "n = " << n;
    EXPECT_NEAR(norms[0], reference, 1e-12 * reference) << "n = " << n;
  }
}

TEST(ClipGradNorm, BelowThresholdLeavesGradsUntouched) {
  CpuDevice device;
  Tensor grads = make_tensor(device, {3.0f, -4.0f, 0.0f});
  EXPECT_EQ(clip_grad_norm(grads, 5.0), 5.0);  // equal is not above
  EXPECT_EQ(values_of(grads), (std::vector<float>{3.0f, -4.0f, 0.0f}));
  EXPECT_EQ(clip_grad_norm(grads, 10.0), 5.0);
  EXPECT_EQ(values_of(grads), (std::vector<float>{3.0f, -4.0f, 0.0f}));
}

TEST(ClipGradNorm, AboveThresholdScalesToMaxNorm) {
  CpuDevice device;
  Tensor grads = make_tensor(device, {3.0f, -4.0f, 0.0f});
  EXPECT_EQ(clip_grad_norm(grads, 1.0), 5.0);
  EXPECT_FLOAT_EQ(grads.data<float>()[0], 0.6f);
  EXPECT_FLOAT_EQ(grads.data<float>()[1], -0.8f);
  EXPECT_EQ(grads.data<float>()[2], 0.0f);
  EXPECT_NEAR(global_norm(grads), 1.0, 1e-7);

  std::vector<float> big(100000, 0.5f);  // norm 0.5 * sqrt(1e5) = 158.11...
  Tensor large = make_tensor(device, big);
  EXPECT_NEAR(clip_grad_norm(large, 2.0), 0.5 * std::sqrt(1e5), 1e-9);
  EXPECT_NEAR(global_norm(large), 2.0, 1e-5);
  EXPECT_FLOAT_EQ(large.data<float>()[99999], static_cast<float>(2.0 / std::sqrt(1e5)));
}

TEST(ClipGradNorm, NonFiniteNormIsReturnedWithoutScaling) {
  CpuDevice device;
  const float inf = std::numeric_limits<float>::infinity();
  Tensor with_inf = make_tensor(device, {1.0f, inf});
  EXPECT_EQ(clip_grad_norm(with_inf, 1.0), std::numeric_limits<double>::infinity());
  EXPECT_EQ(values_of(with_inf), (std::vector<float>{1.0f, inf}));
  Tensor with_nan = make_tensor(device, {2.0f, NAN});
  EXPECT_TRUE(std::isnan(clip_grad_norm(with_nan, 1.0)));
  EXPECT_EQ(with_nan.data<float>()[0], 2.0f);
}

TEST(ClipGradNorm, RejectsNonPositiveMaxNorm) {
  CpuDevice device;
  Tensor grads = make_tensor(device, {1.0f});
  expect_error([&] { clip_grad_norm(grads, 0); }, ErrorKind::kInternal,
               "clip_grad_norm: max_norm must be > 0 (got 0)");
  Tensor doubles(device, {2}, DType::kF64);
  expect_error([&] { global_norm(doubles); }, ErrorKind::kInternal,
               "global_norm: grads must be a float32 tensor");
}

// On a device that claims to be CUDA, updates and norms go to devices/gpu_ops.h, which refuses the
// double (not a CudaDevice; or, without CUDA, says so): errors, never a host loop over device
// memory. Tensors on another kind of device than the optimizer's state are refused first.
TEST(GpuDispatch, OptimizersAndNormsOnAClaimedGpuReachGpuOps) {
  FakeGpu gpu;
  CpuDevice cpu;
  Tensor params(gpu, {3}, DType::kF32), grads(gpu, {3}, DType::kF32);
  for (const char* kind : {"sgd", "adam", "adamw"}) {
    proto::OptimizerConfig config;
    if (kind == std::string("sgd")) config.mutable_sgd()->set_momentum(0.9f);
    if (kind == std::string("adam")) config.mutable_adam();
    if (kind == std::string("adamw")) config.mutable_adamw();
    auto optimizer = make_optimizer(gpu, config, 3);
    EXPECT_THROW(optimizer->step(params, grads, 0.1f), Error) << kind;
    EXPECT_EQ(optimizer->steps(), 0) << kind;
    Tensor cpu_params = make_tensor(cpu, {1, 2, 3}), cpu_grads = make_tensor(cpu, {1, 2, 3});
    expect_error([&] { optimizer->step(cpu_params, cpu_grads, 0.1f); }, ErrorKind::kInternal,
                 "the optimizer's state is on fake-gpu:0");
  }
  EXPECT_THROW(global_norm(grads), Error);
  EXPECT_THROW(clip_grad_norm(grads, 1.0), Error);
  // The loss scaler's unscale-and-check too (devices/gpu_ops.h gpu_unscale_and_check).
  try {
    unscale_and_check(grads, 0.5f);
    ADD_FAILURE() << "unscale_and_check ran a host loop over a claimed GPU's memory";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("unscale and check"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace dpt
