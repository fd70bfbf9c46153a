// Adam and AdamW (one class; `decoupled` picks AdamW), with PyTorch's torch.optim.Adam / AdamW
// semantics (amsgrad off). Updates the flat float32 parameter buffer in one fused OpenMP loop (one
// kernel on a CUDA device, devices/gpu_ops.h); bias corrections are computed once per step in
// double. State: "adam.m" and "adam.v".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.pb.h"
#include "core/tensor.h"
#include "optim/optimizer.h"

namespace dpt {

// Loop-invariant coefficients of one step, computed in double and rounded to float once. Adam has
// decay = 1; AdamW has l2 = 0. The CUDA kernel (devices/cuda/cuda_ops.h) takes the same values.
struct AdamCoefficients {
  float l2;     // coupled weight decay added to the gradient
  float decay;  // p *= decay before the update (1 - lr * wd for AdamW)
  float beta1;
  float one_minus_beta1;
  float beta2;
  float one_minus_beta2;
  float step_size;   // lr / (1 - beta1^t)
  float bias2_sqrt;  // sqrt(1 - beta2^t)
  float eps;
};

class Adam : public Optimizer {
 public:
  // Validates `config` (throws kConfig naming the field under optimizer.adam or optimizer.adamw)
  // and allocates both moments (zeros) on `device`. decoupled: AdamW's weight decay.
  Adam(Device& device, const proto::AdamConfig& config, bool decoupled, int64_t num_params);

  std::string name() const override { return decoupled_ ? "adamw" : "adam"; }
  // t = steps() + 1. Adam: g = grad + wd * p. AdamW: p -= lr * wd * p first, g = grad.
  // m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
  // p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
  void step(Tensor& params, const Tensor& grads, float lr) override;
  int64_t steps() const override { return steps_; }
  // Restoring the step count restores the bias corrections of the next step.
  void set_steps(int64_t steps) override { steps_ = steps; }
  std::vector<NamedTensor> state() override;
  // The coefficients the next step() (t = steps() + 1) uses with learning rate `lr`.
  AdamCoefficients coefficients(float lr) const;

 private:
  // Hyper-parameters as the decimals written in the config (see decimal_value in adam.cpp).
  Device& device_;
  double beta1_;
  double beta2_;
  float eps_;
  double weight_decay_;
  bool decoupled_;
  int64_t num_params_;
  int64_t steps_ = 0;
  Tensor m_;
  Tensor v_;
};

}  // namespace dpt
