// The Dense (fully connected) layer y = act(x W^T + b), W [units, inputs] as in PyTorch, with an
// optional fused activation epilogue (the model fuses a Dense followed by an activation layer:
// one pass adds the bias and applies the activation after the GEMM, and backward turns dy into
// dz in one pass). Three GEMMs per step: forward, grad-weight, grad-input. With 16-bit GEMMs (bf16
// matmuls on a CPU device, core/gemm_bf16.h; bf16 or fp16 GpuMatmul on a CUDA device) float32
// layers round each GEMM operand once: the weights once per step (remade at every forward that
// the Pass does not mark params_unchanged), the input once in forward (kept for grad-weight), dz
// once in backward; the bias, the activation, the parameters and their gradients stay float32.
// On a CUDA device (float32 only) forward and backward are devices/gpu_ops.h's Dense kernels:
// cuBLASLt GEMMs with the bias or bias + ReLU fused into the forward GEMM's epilogue and the bias
// gradient into the weight-gradient GEMM's, in float32, TF32, bf16 or fp16 (GpuMatmul).
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
  void forward_gpu(const Tensor& input, Tensor& output, const Pass& pass);
  void backward_gpu(const Tensor& grad_output, Tensor* grad_input);
  // Whether forward must round the weights again: always, except in a pass that says the
  // parameters are unchanged since the forward that made weight16_ (a later micro-batch of the
  // same step; only the training step says so, so whatever writes the parameters between steps,
  // the optimizer, a checkpoint restore, pruning, is followed by a forward that remakes it).
  bool weight16_stale(const Pass& pass) const;
  // 16-bit GEMMs on a CUDA device (bf16 or fp16 gpu_precision_).
  bool gpu_16bit() const;

  Device& device_;
  proto::DenseConfig config_;
  std::optional<ActivationSpec> activation_;
  GpuMatmul gpu_precision_;
  Tensor weight_, bias_, grad_weight_, grad_bias_;
  Tensor input_, output_, pre_activation_;  // cached by forward
  Tensor pre_buffer_, grad_pre_buffer_;     // scratch, grown to the largest batch
  // CPU bf16 path only (null otherwise): the oneDNN primitives.
  std::unique_ptr<Bf16Gemm> bf16_;
  // 16-bit paths only: copies of the weights (from the last forward that rounded them), the
  // input (from the last forward; backward's weight gradient reads it) and, on the CPU, dz. bf16
  // on the CPU, bf16 or fp16 on a GPU; device memory of the layer (the CUDA pool, so counted in
  // memory_counters), freed with the layer. On a GPU dz16 is cuda_dense_backward's scratch.
  Tensor weight16_, input16_, input16_buffer_, grad_pre16_buffer_;
};

}  // namespace dpt
