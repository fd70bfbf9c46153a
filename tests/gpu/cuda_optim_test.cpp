// Optimizer updates and the gradient norm on every device (tests/gpu/ops_harness.h): SGD (plain,
// momentum, Nesterov, weight decay) and Adam/AdamW fused over one flat buffer, several steps, and
// the sum of squares, each against optim/'s CPU implementation on the same inputs.
#include <gtest/gtest.h>

#include "devices/cuda/cuda_ops.h"
#include "optim/adam.h"
#include "optim/optimizer.h"
#include "optim/sgd.h"
#include "tests/gpu/ops_harness.h"

namespace dpt {
namespace {

constexpr int64_t kParams = 10007;  // not a multiple of any block size
constexpr int kSteps = 3;

std::vector<float> values_of(const Tensor& tensor) {
  return std::vector<float>(tensor.data<float>(), tensor.data<float>() + tensor.numel());
}

TEST_P(OpsOnDevice, SgdMatchesTheCpuOptimizer) {
  struct Case {
    float momentum, weight_decay;
    bool nesterov;
  };
  for (const Case& c : {Case{0, 0, false}, Case{0, 0.01f, false}, Case{0.9f, 0.001f, false},
                        Case{0.9f, 0.001f, true}}) {
    proto::SgdConfig config;
    config.set_momentum(c.momentum);
    config.set_weight_decay(c.weight_decay);
    config.set_nesterov(c.nesterov);
    Sgd reference(cpu(), config, kParams);
    Tensor params = cpu_tensor(cpu(), {kParams}, normal_values(kParams, 20));
    float* p = put(values_of(params));
    float* buf = c.momentum > 0 ? put(std::vector<float>(kParams, 0.0f)) : nullptr;
    Sgd on_cpu(cpu(), config, kParams);
    for (int step = 0; step < kSteps; ++step) {
      const std::vector<float> grads = normal_values(kParams, 21 + step);
      const float lr = 0.1f / (step + 1);
      reference.step(params, cpu_tensor(cpu(), {kParams}, grads), lr);
      if (on_gpu()) {
        cuda_sgd_step(cuda(), p, put(grads), buf, kParams, lr, c.weight_decay, c.momentum,
                      c.nesterov);
      } else {
        Tensor mine = cpu_tensor(cpu(), {kParams}, get(p, kParams));
        on_cpu.step(mine, cpu_tensor(cpu(), {kParams}, grads), lr);
        std::copy(mine.data<float>(), mine.data<float>() + kParams, p);
      }
    }
    expect_close(get(p, kParams), as_double(values_of(params)), 1e-6,
                 "sgd momentum=" + std::to_string(c.momentum) + (c.nesterov ? " nesterov" : ""));
  }
}

TEST_P(OpsOnDevice, AdamAndAdamWMatchTheCpuOptimizer) {
  for (bool decoupled : {false, true}) {
    proto::AdamConfig config;
    config.set_weight_decay(0.01f);
    Adam reference(cpu(), config, decoupled, kParams);
    Adam coefficients_source(cpu(), config, decoupled, kParams);
    Tensor params = cpu_tensor(cpu(), {kParams}, normal_values(kParams, 30));
    float* p = put(values_of(params));
    float* m = put(std::vector<float>(kParams, 0.0f));
    float* v = put(std::vector<float>(kParams, 0.0f));
    for (int step = 0; step < kSteps; ++step) {
      const std::vector<float> grads = normal_values(kParams, 31 + step);
      const float lr = 1e-3f * (step + 1);
      reference.step(params, cpu_tensor(cpu(), {kParams}, grads), lr);
      if (on_gpu()) {
        coefficients_source.set_steps(step);
        const AdamCoefficients a = coefficients_source.coefficients(lr);
        const CudaAdamCoefficients c{a.l2,    a.decay,           a.beta1,     a.one_minus_beta1,
                                     a.beta2, a.one_minus_beta2, a.step_size, a.bias2_sqrt,
                                     a.eps};
        cuda_adam_step(cuda(), p, put(grads), m, v, kParams, c);
      } else {
        Tensor mine = cpu_tensor(cpu(), {kParams}, get(p, kParams));
        coefficients_source.step(mine, cpu_tensor(cpu(), {kParams}, grads), lr);
        std::copy(mine.data<float>(), mine.data<float>() + kParams, p);
      }
    }
    const std::string name = decoupled ? "adamw" : "adam";
    expect_close(get(p, kParams), as_double(values_of(params)), 1e-6, name + " params");
    const std::vector<NamedTensor> state = reference.state();
    if (on_gpu()) {
      expect_close(get(m, kParams), as_double(values_of(state[0].tensor)), 1e-6, name + " m");
      expect_close(get(v, kParams), as_double(values_of(state[1].tensor)), 1e-6, name + " v");
    }
  }
}

TEST_P(OpsOnDevice, SumOfSquaresMatchesGlobalNorm) {
  for (int64_t n : {int64_t{1}, int64_t{4096}, int64_t{4097}, int64_t{100003}}) {
    const std::vector<float> grads = normal_values(n, 40);
    const double norm = global_norm(cpu_tensor(cpu(), {n}, grads));
    const float* g = put(grads);
    double sum = 0;
    if (on_gpu()) {
      sum = cuda_sum_squares(cuda(), g, n);
    } else {
      for (int64_t i = 0; i < n; ++i) sum += double(g[i]) * g[i];
    }
    EXPECT_NEAR(std::sqrt(sum), norm, 1e-12 * norm) << "n = " << n;
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, OpsOnDevice,
                         ::testing::Values(DeviceKind::kCpu, DeviceKind::kCuda), device_kind_name);

}  // namespace
}  // namespace dpt
