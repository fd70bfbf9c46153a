// Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay, with
// PyTorch's torch.optim.SGD semantics (dampening 0). Updates the flat float32 parameter buffer in
// one fused OpenMP loop, or one kernel on a CUDA device (devices/gpu_ops.h). State: "sgd.momentum"
// (num_params floats), only when momentum > 0.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.pb.h"
#include "core/tensor.h"
#include "optim/optimizer.h"

namespace dpt {

class Sgd : public Optimizer {
 public:
  // Validates `config` (throws kConfig naming the field under optimizer.sgd) and allocates the
  // momentum buffer (zeros) on `device` when momentum > 0.
  Sgd(Device& device, const proto::SgdConfig& config, int64_t num_params);

  std::string name() const override { return "sgd"; }
  // g = grad + wd * p; with momentum: buf = momentum * buf + g, and g = buf (or g + momentum * buf
  // for Nesterov); then p -= lr * g.
  void step(Tensor& params, const Tensor& grads, float lr) override;
  int64_t steps() const override { return steps_; }
  void set_steps(int64_t steps) override { steps_ = steps; }
  std::vector<NamedTensor> state() override;

 private:
  Device& device_;
  float momentum_;
  bool nesterov_;
  float weight_decay_;
  int64_t num_params_;
  int64_t steps_ = 0;
  Tensor momentum_buffer_;  // undefined when momentum_ == 0
};

}  // namespace dpt
