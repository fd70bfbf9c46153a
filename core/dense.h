// The Dense (fully connected) layer y = act(x W^T + b), W [units, inputs] as in PyTorch, with an
// optional fused activation epilogue (the model fuses a Dense followed by an activation layer:
// one pass adds the bias and applies the activation after the GEMM, and backward turns dy into
// dz in one pass). Three GEMMs per step: forward, grad-weight, grad-input.
#pragma once

#include <optional>

#include "core/activation.h"
#include "core/config.pb.h"
#include "core/layer.h"

namespace dpt {

class Dense : public Layer {
 public:
  // `activation`, when set, is fused into this layer.
  Dense(Device& device, std::string name, int index, int64_t input_size,
        const proto::DenseConfig& config, std::optional<ActivationSpec> activation);
  std::string kind() const override;
  int64_t num_params() const override;
  void bind_params(const Tensor& params, const Tensor& grads) override;
  void init_params(uint64_t seed) override;
  std::vector<LayerParam> params() const override;
  void forward(const Tensor& input, Tensor& output, const Pass& pass) override;
  void backward(const Tensor& grad_output, Tensor* grad_input) override;

  // The fused activation, if any (read by core/quantize).
  const std::optional<ActivationSpec>& activation() const { return activation_; }
  bool has_bias() const { return config_.bias(); }

 private:
  Device& device_;
  proto::DenseConfig config_;
  std::optional<ActivationSpec> activation_;
  Tensor weight_, bias_, grad_weight_, grad_bias_;
  Tensor input_, output_, pre_activation_;  // cached by forward
  Tensor pre_buffer_, grad_pre_buffer_;     // scratch, grown to the largest batch
};

}  // namespace dpt
