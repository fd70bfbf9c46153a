// Activation kernels (float and double from one template, kept private to this file) and the
// Activation layer. Loops are plain and branch-light so GCC vectorises them; OpenMP splits rows.
// On a CUDA device the layer calls the GPU kernels (devices/gpu_ops.h, float32 only).
#include "core/activation.h"

#include <cmath>

#include "devices/error.h"

namespace dpt {
namespace {

template <typename T>
inline T gelu(T x) {
  return T(0.5) * x * (T(1) + std::erf(x * T(M_SQRT1_2)));
}

template <typename T>
inline T gelu_grad(T x) {
  T cdf = T(0.5) * (T(1) + std::erf(x * T(M_SQRT1_2)));
  T pdf = std::exp(T(-0.5) * x * x) * T(0.3989422804014327);
  return cdf + x * pdf;
}

template <typename T>
void forward_impl(const ActivationSpec& spec, const T* x, T* y, int64_t n) {
  const T slope = static_cast<T>(spec.negative_slope);
  switch (spec.kind) {
    case proto::RELU:
#pragma omp parallel for simd schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];  // NaN propagates
      return;
    case proto::LEAKY_RELU:
#pragma omp parallel for simd schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] < T(0) ? slope * x[i] : x[i];
      return;
    case proto::GELU:
#pragma omp parallel for schedule(static) if (n > 16384)
      for (int64_t i = 0; i < n; ++i) y[i] = gelu(x[i]);
      return;
    case proto::TANH:
#pragma omp parallel for schedule(static) if (n > 16384)
      for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      return;
    case proto::SIGMOID:
#pragma omp parallel for schedule(static) if (n > 16384)
      for (int64_t i = 0; i < n; ++i) y[i] = T(1) / (T(1) + std::exp(-x[i]));
      return;
  }
  DPT_THROW(ErrorKind::kInternal) << "unknown activation kind " << spec.kind;
}

template <typename T>
void backward_impl(const ActivationSpec& spec, const T* x, const T* y, const T* dy, T* dx,
                   int64_t n) {
  const T slope = static_cast<T>(spec.negative_slope);
  switch (spec.kind) {
    case proto::RELU:
      // Uses y (> 0 exactly where x > 0) so the fused Dense path need not keep x.
#pragma omp parallel for simd schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > T(0) ? dy[i] : T(0);
      return;
    case proto::LEAKY_RELU:
#pragma omp parallel for simd schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? dy[i] : slope * dy[i];
      return;
    case proto::GELU:
#pragma omp parallel for schedule(static) if (n > 16384)
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * gelu_grad(x[i]);
      return;
    case proto::TANH:
#pragma omp parallel for simd schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (T(1) - y[i] * y[i]);
      return;
    case proto::SIGMOID:
#pragma omp parallel for simd schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (T(1) - y[i]);
      return;
  }
  DPT_THROW(ErrorKind::kInternal) << "unknown activation kind " << spec.kind;
}

}  // namespace

const char* activation_name(proto::ActivationKind kind) {
  switch (kind) {
    case proto::RELU:
      return "relu";
    case proto::LEAKY_RELU:
      return "leaky_relu";
    case proto::GELU:
      return "gelu";
    case proto::TANH:
      return "tanh";
    case proto::SIGMOID:
      return "sigmoid";
  }
  return "unknown";
}

GpuActivationSpec gpu_activation(const std::optional<ActivationSpec>& spec) {
  GpuActivationSpec gpu;
  if (!spec) return gpu;
  gpu.negative_slope = spec->negative_slope;
  switch (spec->kind) {
    case proto::RELU:
      gpu.kind = GpuActivation::kRelu;
      return gpu;
    case proto::LEAKY_RELU:
      gpu.kind = GpuActivation::kLeakyRelu;
      return gpu;
    case proto::GELU:
      gpu.kind = GpuActivation::kGelu;
      return gpu;
    case proto::TANH:
      gpu.kind = GpuActivation::kTanh;
      return gpu;
    case proto::SIGMOID:
      gpu.kind = GpuActivation::kSigmoid;
      return gpu;
  }
  DPT_THROW(ErrorKind::kInternal) << "unknown activation kind " << spec->kind;
}

void activation_forward(const ActivationSpec& spec, const float* x, float* y, int64_t n) {
  forward_impl(spec, x, y, n);
}
void activation_forward(const ActivationSpec& spec, const double* x, double* y, int64_t n) {
  forward_impl(spec, x, y, n);
}
void activation_backward(const ActivationSpec& spec, const float* x, const float* y,
                         const float* dy, float* dx, int64_t n) {
  backward_impl(spec, x, y, dy, dx, n);
}
void activation_backward(const ActivationSpec& spec, const double* x, const double* y,
                         const double* dy, double* dx, int64_t n) {
  backward_impl(spec, x, y, dy, dx, n);
}

Activation::Activation(std::string name, int index, int64_t size, const ActivationSpec& spec)
    : Layer(std::move(name), index, size, size), spec_(spec) {}

void Activation::forward(const Tensor& input, Tensor& output, const Pass& pass) {
  input_ = input;
  output_ = output;
  if (input.device().kind() == DeviceKind::kCuda) {
    gpu_bias_activation_forward(input.device(), gpu_activation(spec_), input.data<float>(), nullptr,
                                output.data<float>(), 1, input.numel());
  } else if (input.dtype() == DType::kF32) {
    activation_forward(spec_, input.data<float>(), output.data<float>(), input.numel());
  } else {
    activation_forward(spec_, input.data<double>(), output.data<double>(), input.numel());
  }
}

void Activation::backward(const Tensor& grad_output, Tensor* grad_input) {
  if (grad_input == nullptr) return;
  if (grad_output.device().kind() == DeviceKind::kCuda) {
    gpu_activation_backward(grad_output.device(), gpu_activation(spec_), input_.data<float>(),
                            output_.data<float>(), grad_output.data<float>(),
                            grad_input->data<float>(), grad_output.numel());
  } else if (grad_output.dtype() == DType::kF32) {
    activation_backward(spec_, input_.data<float>(), output_.data<float>(),
                        grad_output.data<float>(), grad_input->data<float>(), grad_output.numel());
  } else {
    activation_backward(spec_, input_.data<double>(), output_.data<double>(),
                        grad_output.data<double>(), grad_input->data<double>(),
                        grad_output.numel());
  }
}

}  // namespace dpt
