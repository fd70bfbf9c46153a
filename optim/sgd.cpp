// SGD update loops: one fused, branch-free OpenMP loop per variant (plain, momentum, Nesterov),
// chosen once per step so that GCC vectorises each; on a CUDA device one fused kernel
// (gpu_sgd_step). Semantics follow torch.optim.SGD.
#include "optim/sgd.h"

#include <cmath>

#include "devices/error.h"
#include "devices/gpu_ops.h"

namespace dpt {
namespace {

void sgd_plain(float* __restrict p, const float* __restrict g, int64_t n, float lr, float wd) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    p[i] -= lr * (g[i] + wd * p[i]);
  }
}

void sgd_momentum(float* __restrict p, const float* __restrict g, float* __restrict buf, int64_t n,
                  float lr, float wd, float momentum) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float d = g[i] + wd * p[i];
    const float b = momentum * buf[i] + d;
    buf[i] = b;
    p[i] -= lr * b;
  }
}

void sgd_nesterov(float* __restrict p, const float* __restrict g, float* __restrict buf, int64_t n,
                  float lr, float wd, float momentum) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float d = g[i] + wd * p[i];
    const float b = momentum * buf[i] + d;
    buf[i] = b;
    p[i] -= lr * (d + momentum * b);
  }
}

}  // namespace

Sgd::Sgd(Device& device, const proto::SgdConfig& config, int64_t num_params)
    : device_(device),
      momentum_(config.momentum()),
      nesterov_(config.nesterov()),
      weight_decay_(config.weight_decay()),
      num_params_(num_params) {
  DPT_CHECK_AS(ErrorKind::kConfig, momentum_ >= 0 && momentum_ < 1)
      << "optimizer.sgd.momentum: must be in [0, 1) (got " << momentum_ << ")";
  DPT_CHECK_AS(ErrorKind::kConfig, !nesterov_ || momentum_ > 0)
      << "optimizer.sgd.nesterov: requires optimizer.sgd.momentum > 0 (got " << momentum_ << ")";
  DPT_CHECK_AS(ErrorKind::kConfig, weight_decay_ >= 0 && std::isfinite(weight_decay_))
      << "optimizer.sgd.weight_decay: must be >= 0 (got " << weight_decay_ << ")";
  DPT_CHECK(num_params >= 0) << "sgd: num_params = " << num_params << " is negative";
  if (momentum_ > 0) momentum_buffer_ = Tensor(device, {num_params}, DType::kF32);
}

void Sgd::step(Tensor& params, const Tensor& grads, float lr) {
  check_step_tensors("sgd", device_, params, grads, num_params_);
  DPT_CHECK(lr >= 0 && std::isfinite(lr)) << "sgd: lr = " << lr << " must be finite and >= 0";
  float* p = params.data<float>();
  const float* g = grads.data<float>();
  if (device_.kind() == DeviceKind::kCuda) {
    gpu_sgd_step(device_, p, g, momentum_ > 0 ? momentum_buffer_.data<float>() : nullptr,
                 num_params_, lr, weight_decay_, momentum_, nesterov_);
  } else if (momentum_ == 0) {
    sgd_plain(p, g, num_params_, lr, weight_decay_);
  } else if (nesterov_) {
    sgd_nesterov(p, g, momentum_buffer_.data<float>(), num_params_, lr, weight_decay_, momentum_);
  } else {
    sgd_momentum(p, g, momentum_buffer_.data<float>(), num_params_, lr, weight_decay_, momentum_);
  }
  ++steps_;
}

std::vector<NamedTensor> Sgd::state() {
  if (!momentum_buffer_.defined()) return {};
  return {{"sgd.momentum", momentum_buffer_}};
}

}  // namespace dpt
