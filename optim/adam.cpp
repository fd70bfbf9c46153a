// Adam/AdamW update: the per-step scalars (bias corrections, step size, decoupled decay factor)
// are computed once in double; the per-element loop is one fused, branch-free OpenMP loop in
// float that GCC vectorises (on a CUDA device: gpu_adam_step, same coefficients). Semantics and
// operation order follow torch.optim.Adam / AdamW.
#include "optim/adam.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "devices/error.h"
#include "devices/gpu_ops.h"

namespace dpt {
namespace {

// The decimal the user wrote for a float config field (0.999f -> 0.999, not 0.99900001287), so
// that 1 - beta2 and beta^t match what PyTorch computes from the same Python floats.
double decimal_value(float value) {
  char text[32];
  const std::to_chars_result result = std::to_chars(text, text + sizeof(text) - 1, value);
  *result.ptr = '\0';
  return std::strtod(text, nullptr);
}

void adam_update(float* __restrict p, const float* __restrict g, float* __restrict m,
                 float* __restrict v, int64_t n, const AdamCoefficients& c) {
  // Locals so the outlined OpenMP body reads them from registers, not through a reference.
  const float l2 = c.l2, decay = c.decay, beta1 = c.beta1, one_minus_beta1 = c.one_minus_beta1;
  const float beta2 = c.beta2, one_minus_beta2 = c.one_minus_beta2, step_size = c.step_size;
  const float bias2_sqrt = c.bias2_sqrt, eps = c.eps;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float grad = g[i] + l2 * p[i];
    const float mi = beta1 * m[i] + one_minus_beta1 * grad;
    const float vi = beta2 * v[i] + one_minus_beta2 * grad * grad;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / bias2_sqrt + eps;
    p[i] = p[i] * decay - step_size * (mi / denom);
  }
}

}  // namespace

Adam::Adam(Device& device, const proto::AdamConfig& config, bool decoupled, int64_t num_params)
    : device_(device),
      beta1_(decimal_value(config.beta1())),
      beta2_(decimal_value(config.beta2())),
      eps_(config.eps()),
      weight_decay_(decimal_value(config.weight_decay())),
      decoupled_(decoupled),
      num_params_(num_params) {
  const char* field = decoupled ? "optimizer.adamw" : "optimizer.adam";
  DPT_CHECK_AS(ErrorKind::kConfig, beta1_ >= 0 && beta1_ < 1)
      << field << ".beta1: must be in [0, 1) (got " << beta1_ << ")";
  DPT_CHECK_AS(ErrorKind::kConfig, beta2_ >= 0 && beta2_ < 1)
      << field << ".beta2: must be in [0, 1) (got " << beta2_ << ")";
  DPT_CHECK_AS(ErrorKind::kConfig, eps_ > 0 && std::isfinite(eps_))
      << field << ".eps: must be > 0 (got " << eps_ << ")";
  DPT_CHECK_AS(ErrorKind::kConfig, weight_decay_ >= 0 && std::isfinite(weight_decay_))
      << field << ".weight_decay: must be >= 0 (got " << weight_decay_ << ")";
  DPT_CHECK(num_params >= 0) << name() << ": num_params = " << num_params << " is negative";
  m_ = Tensor(device, {num_params}, DType::kF32);
  v_ = Tensor(device, {num_params}, DType::kF32);
}

void Adam::step(Tensor& params, const Tensor& grads, float lr) {
  const std::string optimizer = name();
  check_step_tensors(optimizer.c_str(), device_, params, grads, num_params_);
  DPT_CHECK(lr >= 0 && std::isfinite(lr))
      << optimizer << ": lr = " << lr << " must be finite and >= 0";
  const AdamCoefficients c = coefficients(lr);
  if (device_.kind() == DeviceKind::kCuda) {
    const GpuAdamCoefficients gpu{c.l2,    c.decay,           c.beta1,     c.one_minus_beta1,
                                  c.beta2, c.one_minus_beta2, c.step_size, c.bias2_sqrt,
                                  c.eps};
    gpu_adam_step(device_, params.data<float>(), grads.data<float>(), m_.data<float>(),
                  v_.data<float>(), num_params_, gpu);
    ++steps_;
    return;
  }
  adam_update(params.data<float>(), grads.data<float>(), m_.data<float>(), v_.data<float>(),
              num_params_, c);
  ++steps_;
}

AdamCoefficients Adam::coefficients(float lr) const {
  const double t = static_cast<double>(steps_ + 1);
  const double bias1 = 1.0 - std::pow(beta1_, t);
  const double bias2 = 1.0 - std::pow(beta2_, t);
  AdamCoefficients c;
  c.l2 = decoupled_ ? 0.0f : static_cast<float>(weight_decay_);
  c.decay = decoupled_ ? static_cast<float>(1.0 - lr * weight_decay_) : 1.0f;
  c.beta1 = static_cast<float>(beta1_);
  c.one_minus_beta1 = static_cast<float>(1.0 - beta1_);
  c.beta2 = static_cast<float>(beta2_);
  c.one_minus_beta2 = static_cast<float>(1.0 - beta2_);
  c.step_size = static_cast<float>(lr / bias1);
  c.bias2_sqrt = static_cast<float>(std::sqrt(bias2));
  c.eps = eps_;
  return c;
}

std::vector<NamedTensor> Adam::state() { return {{"adam.m", m_}, {"adam.v", v_}}; }

}  // namespace dpt
