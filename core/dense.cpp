// Dense layer: GEMMs through core/gemm (or core/gemm_bf16), bias and activation fused into one
// pass after the GEMM, and the CPU reference loops for the bias (kept simple: they are a few
// percent of the GEMMs). On a CUDA device forward and backward are one gpu_ops call each, given
// the layer's 16-bit operand buffers in bf16 / fp16.
#include "core/dense.h"

#include <cmath>
#include <vector>

#include "core/bf16.h"
#include "core/gemm.h"
#include "core/random.h"
#include "devices/error.h"
#include "devices/gpu_ops.h"

namespace dpt {
namespace {

// Activations whose backward needs the pre-activation z (the others use y = f(z)).
bool needs_pre_activation(const std::optional<ActivationSpec>& activation) {
  if (!activation) return false;
  return activation->kind == proto::GELU || activation->kind == proto::LEAKY_RELU;
}

template <typename T>
void add_bias_rows(const T* bias, T* out, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    T* row = out + r * cols;
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) row[j] += bias[j];
  }
}

// grad_bias[j] += sum over rows of grad[r, j]; rows in order, so the sum is deterministic.
template <typename T>
void sum_rows_into(const T* grad, T* grad_bias, int64_t rows, int64_t cols) {
  constexpr int64_t kBlock = 256;
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t j0 = 0; j0 < cols; j0 += kBlock) {
    int64_t j1 = std::min(cols, j0 + kBlock);
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = grad + r * cols;
#pragma omp simd
      for (int64_t j = j0; j < j1; ++j) grad_bias[j] += row[j];
    }
  }
}

// z = x W^T.
template <typename T>
void forward_gemm(Device& device, const Tensor& weight, const Tensor& input, const Tensor& z) {
  const int64_t rows = input.dim(0), in = input.dim(1), out = z.dim(1);
  gemm(device, dense_gemm_shape(false, true, rows, out, in), T(1), input.data<T>(),
       weight.data<T>(), T(0), z.data<T>());
}

// z += b, then y = act(z) (in place when z is y).
template <typename T>
void bias_and_activation(const Tensor& bias, const std::optional<ActivationSpec>& activation,
                         const Tensor& gemm_out, Tensor& output) {
  const int64_t rows = output.dim(0), out = output.dim(1);
  T* z = gemm_out.data<T>();
  if (bias.defined()) add_bias_rows(bias.data<T>(), z, rows, out);
  if (activation) activation_forward(*activation, z, output.data<T>(), rows * out);
}

// grad_bias += column sums of dz (float32 also on the bf16 path).
template <typename T>
void bias_grad(const Tensor& grad_pre, const Tensor& grad_bias) {
  if (grad_bias.defined()) {
    sum_rows_into(grad_pre.data<T>(), grad_bias.data<T>(), grad_pre.dim(0), grad_pre.dim(1));
  }
}

// dW += dz^T x; dx = dz W (skipped when grad_input is null).
template <typename T>
void backward_gemms(Device& device, const Tensor& weight, const Tensor& grad_weight,
                    const Tensor& input, const Tensor& grad_pre, Tensor* grad_input) {
  const int64_t rows = input.dim(0), in = input.dim(1), out = grad_pre.dim(1);
  const T* dz = grad_pre.data<T>();
  // dW[out, in] += dz^T [out, rows] * x [rows, in]
  gemm(device, dense_gemm_shape(true, false, out, in, rows), T(1), dz, input.data<T>(), T(1),
       grad_weight.data<T>());
  if (grad_input != nullptr) {
    // dx[rows, in] = dz [rows, out] * W [out, in]
    gemm(device, dense_gemm_shape(false, false, rows, in, out), T(1), dz, weight.data<T>(), T(0),
         grad_input->data<T>());
  }
}

// The bit patterns of a bf16 or fp16 tensor.
uint16_t* bits16(const Tensor& tensor) { return static_cast<uint16_t*>(tensor.raw()); }

// A bf16 copy of `src` in `buffer` (grown as needed).
Tensor to_bf16_tensor(Tensor& buffer, Device& device, const Tensor& src) {
  Tensor copy = workspace(buffer, device, src.shape(), DType::kBF16);
  to_bf16(src.data<float>(), bits16(copy), src.numel());
  return copy;
}

}  // namespace

Dense::Dense(Device& device, std::string name, int index, int64_t input_size,
             const proto::DenseConfig& config, std::optional<ActivationSpec> activation,
             GpuMatmul gpu_precision)
    : Layer(std::move(name), index, input_size, config.units()),
      device_(device),
      config_(config),
      activation_(activation),
      gpu_precision_(gpu_precision),
      bf16_(bf16_matmul(device) ? std::make_unique<Bf16Gemm>() : nullptr) {}

std::string Dense::kind() const {
  return activation_ ? std::string("dense+") + activation_name(activation_->kind) : "dense";
}

int64_t Dense::num_params() const {
  return output_size() * input_size() + (config_.bias() ? output_size() : 0);
}

void Dense::bind_params(const Tensor& params, const Tensor& grads) {
  const int64_t weights = output_size() * input_size();
  weight_ = params.slice(0, {output_size(), input_size()});
  grad_weight_ = grads.slice(0, {output_size(), input_size()});
  if (config_.bias()) {
    bias_ = params.slice(weights, {output_size()});
    grad_bias_ = grads.slice(weights, {output_size()});
  }
}

void Dense::init_params(uint64_t seed) {
  const double fan_in = static_cast<double>(input_size());
  const double fan_out = static_cast<double>(output_size());
  RandomStream random(seed, static_cast<uint64_t>(index()));
  const int64_t n = weight_.numel();
  auto draw = [&]() -> double {
    switch (config_.init()) {
      case proto::HE:
        return random.normal() * std::sqrt(2.0 / fan_in);
      case proto::XAVIER: {
        double limit = std::sqrt(6.0 / (fan_in + fan_out));
        return (2.0 * random.uniform() - 1.0) * limit;
      }
      case proto::NORMAL:
        return random.normal() * config_.init_std();
    }
    DPT_THROW(ErrorKind::kInternal) << name() << ": unknown init " << config_.init();
  };
  // Drawn on the host, then copied to the weights' device.
  if (weight_.dtype() == DType::kF32) {
    std::vector<float> w(static_cast<std::size_t>(n));
    for (float& value : w) value = static_cast<float>(draw());
    weight_.copy_from_host(w.data());
  } else {
    std::vector<double> w(static_cast<std::size_t>(n));
    for (double& value : w) value = draw();
    weight_.copy_from_host(w.data());
  }
  if (bias_.defined()) bias_.fill_zero();
}

std::vector<LayerParam> Dense::params() const {
  std::vector<LayerParam> list = {{"weight", weight_, grad_weight_}};
  if (bias_.defined()) list.push_back({"bias", bias_, grad_bias_});
  return list;
}

void Dense::forward(const Tensor& input, Tensor& output, const Pass& pass) {
  DPT_CHECK(input.ndim() == 2 && input.dim(1) == input_size())
      << name() << ": input " << shape_string(input.shape()) << ", expected [B, " << input_size()
      << "]";
  input_ = input;
  output_ = output;
  // The GEMM writes z into the output itself unless backward needs z kept apart from y.
  pre_activation_ = needs_pre_activation(activation_)
                        ? workspace(pre_buffer_, device_, output.shape(), output.dtype())
                        : output;
  if (device_.kind() == DeviceKind::kCuda) {
    forward_gpu(input, output, pass);
  } else if (input.dtype() == DType::kF32) {
    if (bf16_) {
      forward_gemm_bf16(input, pre_activation_, pass);
    } else {
      forward_gemm<float>(device_, weight_, input, pre_activation_);
    }
    bias_and_activation<float>(bias_, activation_, pre_activation_, output);
  } else {
    forward_gemm<double>(device_, weight_, input, pre_activation_);
    bias_and_activation<double>(bias_, activation_, pre_activation_, output);
  }
}

bool Dense::weight16_stale(const Pass& pass) const {
  return !pass.params_unchanged || !weight16_.defined();
}

bool Dense::gpu_16bit() const {
  return gpu_precision_ == GpuMatmul::kBf16 || gpu_precision_ == GpuMatmul::kFp16;
}

void Dense::forward_gemm_bf16(const Tensor& input, const Tensor& z, const Pass& pass) {
  if (weight16_stale(pass)) to_bf16_tensor(weight16_, device_, weight_);
  input16_ = to_bf16_tensor(input16_buffer_, device_, input);
  const int64_t rows = input.dim(0);
  bf16_->run(dense_gemm_shape(false, true, rows, output_size(), input_size()), bits16(input16_),
             bits16(weight16_), 0.0f, z.data<float>());
}

void Dense::backward_gemms_bf16(const Tensor& grad_pre, Tensor* grad_input) {
  const int64_t rows = grad_pre.dim(0), in = input_size(), out = output_size();
  const Tensor dz = to_bf16_tensor(grad_pre16_buffer_, device_, grad_pre);
  // dW[out, in] += dz^T [out, rows] * x [rows, in], accumulated in float32.
  bf16_->run(dense_gemm_shape(true, false, out, in, rows), bits16(dz), bits16(input16_), 1.0f,
             grad_weight_.data<float>());
  if (grad_input != nullptr) {
    // dx[rows, in] = dz [rows, out] * W [out, in]
    bf16_->run(dense_gemm_shape(false, false, rows, in, out), bits16(dz), bits16(weight16_), 0.0f,
               grad_input->data<float>());
  }
}

void Dense::forward_gpu(const Tensor& input, Tensor& output, const Pass& pass) {
  GpuDense16 operands16;
  if (gpu_16bit()) {
    const DType type = gpu_precision_ == GpuMatmul::kBf16 ? DType::kBF16 : DType::kF16;
    operands16.weight_current = !weight16_stale(pass);
    if (!weight16_.defined()) weight16_ = Tensor(device_, weight_.shape(), type);
    input16_ = workspace(input16_buffer_, device_, input.shape(), type);
    operands16.weight = bits16(weight16_);
    operands16.input = bits16(input16_);
  }
  gpu_dense_forward(device_, gpu_activation(activation_), gpu_precision_, input.data<float>(),
                    weight_.data<float>(), bias_.defined() ? bias_.data<float>() : nullptr,
                    pre_activation_.data<float>(), output.data<float>(), input.dim(0), input_size(),
                    output_size(), operands16);
}

void Dense::backward_gpu(const Tensor& grad_output, Tensor* grad_input) {
  // dz always gets its own buffer: the kernels may not overwrite grad_output.
  const Tensor grad_pre =
      workspace(grad_pre_buffer_, device_, grad_output.shape(), grad_output.dtype());
  // The copies the last forward made: x of this batch, W as it multiplied it.
  GpuDense16 operands16;
  if (gpu_16bit()) {
    operands16.weight = bits16(weight16_);
    operands16.weight_current = true;
    operands16.input = bits16(input16_);
  }
  gpu_dense_backward(device_, gpu_activation(activation_), gpu_precision_, input_.data<float>(),
                     weight_.data<float>(), pre_activation_.data<float>(), output_.data<float>(),
                     grad_output.data<float>(), grad_pre.data<float>(), grad_weight_.data<float>(),
                     grad_bias_.defined() ? grad_bias_.data<float>() : nullptr,
                     grad_input != nullptr ? grad_input->data<float>() : nullptr,
                     grad_output.dim(0), input_size(), output_size(), operands16);
}

void Dense::backward(const Tensor& grad_output, Tensor* grad_input) {
  if (device_.kind() == DeviceKind::kCuda) {
    backward_gpu(grad_output, grad_input);
    return;
  }
  Tensor grad_pre = grad_output;
  if (activation_) {
    grad_pre = workspace(grad_pre_buffer_, device_, grad_output.shape(), grad_output.dtype());
    const int64_t n = grad_output.numel();
    if (grad_output.dtype() == DType::kF32) {
      activation_backward(*activation_, pre_activation_.data<float>(), output_.data<float>(),
                          grad_output.data<float>(), grad_pre.data<float>(), n);
    } else {
      activation_backward(*activation_, pre_activation_.data<double>(), output_.data<double>(),
                          grad_output.data<double>(), grad_pre.data<double>(), n);
    }
  }
  if (grad_output.dtype() == DType::kF32) {
    bias_grad<float>(grad_pre, grad_bias_);
    if (bf16_) {
      backward_gemms_bf16(grad_pre, grad_input);
    } else {
      backward_gemms<float>(device_, weight_, grad_weight_, input_, grad_pre, grad_input);
    }
  } else {
    bias_grad<double>(grad_pre, grad_bias_);
    backward_gemms<double>(device_, weight_, grad_weight_, input_, grad_pre, grad_input);
  }
}

}  // namespace dpt
