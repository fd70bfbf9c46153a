// Element-wise activations (relu, leaky_relu, gelu, tanh, sigmoid): the kernels, shared by the
// Activation layer and the Dense layer's fused epilogue, and the Activation layer itself, which on
// a CUDA device runs the GPU kernels of devices/gpu_ops.h instead.
#pragma once

#include <cstdint>
#include <optional>

#include "core/config.pb.h"
#include "core/layer.h"
#include "devices/gpu_ops.h"

namespace dpt {

struct ActivationSpec {
  proto::ActivationKind kind = proto::RELU;
  float negative_slope = 0.01f;
};

// Lowercase name: "relu", "leaky_relu", "gelu", "tanh", "sigmoid".
const char* activation_name(proto::ActivationKind kind);

// The same activation for the GPU kernels (devices/gpu_ops.h); none is the identity.
GpuActivationSpec gpu_activation(const std::optional<ActivationSpec>& spec);

// y[i] = f(x[i]) for i < n. x and y may alias.
void activation_forward(const ActivationSpec& spec, const float* x, float* y, int64_t n);
void activation_forward(const ActivationSpec& spec, const double* x, double* y, int64_t n);

// dx[i] = dy[i] * f'(x[i]); y = f(x) is passed too (cheaper for tanh and sigmoid). dx may alias dy.
void activation_backward(const ActivationSpec& spec, const float* x, const float* y,
                         const float* dy, float* dx, int64_t n);
void activation_backward(const ActivationSpec& spec, const double* x, const double* y,
                         const double* dy, double* dx, int64_t n);

class Activation : public Layer {
 public:
  Activation(std::string name, int index, int64_t size, const ActivationSpec& spec);
  std::string kind() const override { return activation_name(spec_.kind); }
  void forward(const Tensor& input, Tensor& output, const Pass& pass) override;
  void backward(const Tensor& grad_output, Tensor* grad_input) override;
  const ActivationSpec& spec() const { return spec_; }

 private:
  ActivationSpec spec_;
  Tensor input_;
  Tensor output_;
};

}  // namespace dpt
