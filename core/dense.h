// The Dense (fully connected) layer y = act(x W^T + b), W [units, inputs] as in PyTorch, with an
// optional fused activation epilogue (the model fuses a Dense followed by an activation layer:
// one pass adds the bias and applies the activation after the GEMM, and backward turns dy into
// dz in one pass). Three GEMMs per step: forward, grad-weight, grad-input. On a device with bf16
// matmuls (core/gemm_bf16.h) float32 layers round the GEMM operands to bf16: the weights once per
// step, the input once in forward (kept for grad-weight), dz once in backward; the bias, the
// activation, the parameters and their gradients stay float32. On a CUDA device (float32 only)
// forward and backward are devices/gpu_ops.h's Dense kernels: cuBLASLt GEMMs with the bias or
// bias + ReLU fused into the forward GEMM's epilogue, in float32, TF32, bf16 or fp16 (GpuMatmul;
// the weights and gradients stay float32).
#pragma once

#include <memory>
#include <optional>

#include "core/activation.h"
#include "core/config.pb.h"
#include "core/gemm_bf16.h"
#include "core/layer.h"

namespace dpt {

class Dense : public Layer {
 public:
  // `activation`, when set, is fused into this layer. `gpu_precision`: the GEMMs' format on a
  // CUDA device (ignored on the CPU).
  Dense(Device& device, std::string name, int index, int64_t input_size,
        const proto::DenseConfig& config, std::optional<ActivationSpec> activation,
        GpuMatmul gpu_precision = GpuMatmul::kFp32);
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
  // The float32 GEMMs in bf16: z = x W^T; dW += dz^T x and dx = dz W.
  void forward_gemm_bf16(const Tensor& input, const Tensor& z, const Pass& pass);
  void backward_gemms_bf16(const Tensor& grad_pre, Tensor* grad_input);
  // The CUDA path of forward and backward (pre_activation_ set by forward).
  void forward_gpu(const Tensor& input, Tensor& output);
  void backward_gpu(const Tensor& grad_output, Tensor* grad_input);

  Device& device_;
  proto::DenseConfig config_;
  std::optional<ActivationSpec> activation_;
  GpuMatmul gpu_precision_;
  Tensor weight_, bias_, grad_weight_, grad_bias_;
  Tensor input_, output_, pre_activation_;  // cached by forward
  Tensor pre_buffer_, grad_pre_buffer_;     // scratch, grown to the largest batch
  // bf16 path only (null bf16_ otherwise): the primitives, and bf16 copies of the weights (from
  // the last forward that converted them), the input (from the last forward) and dz.
  std::unique_ptr<Bf16Gemm> bf16_;
  Tensor weight_bf16_, input_bf16_, input_bf16_buffer_, grad_pre_bf16_buffer_;
};

}  // namespace dpt
