// Dropout with counter-based masks: Philox block (feature / 4, sample, step, layer) keyed by the
// seed gives four uniforms, one per feature. On a CUDA device the same masks come from
// gpu_dropout_mask (devices/gpu_ops.h), bit for bit.
#include "core/dropout.h"

#include "core/random.h"
#include "devices/gpu_ops.h"

namespace dpt {
namespace {

template <typename T>
void apply_mask(const T* input, const T* mask, T* output, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) output[i] = input[i] * mask[i];
}

template <typename T>
void fill_mask(T* mask, int64_t rows, int64_t cols, float rate, uint64_t seed, int layer,
               const Pass& pass) {
  const T scale = T(1) / (T(1) - static_cast<T>(rate));
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const uint64_t sample = static_cast<uint64_t>(pass.sample_offset + r);
    for (int64_t j0 = 0; j0 < cols; j0 += 4) {
      std::array<uint32_t, 4> words = philox4x32(
          seed, {static_cast<uint32_t>(j0 / 4), static_cast<uint32_t>(sample),
                 static_cast<uint32_t>(pass.step),
                 (static_cast<uint32_t>(layer) << 20) ^ static_cast<uint32_t>(sample >> 32)});
      for (int64_t j = j0; j < std::min(cols, j0 + 4); ++j) {
        mask[r * cols + j] = uniform_float(words[j - j0]) < rate ? T(0) : scale;
      }
    }
  }
}

}  // namespace

Dropout::Dropout(Device& device, std::string name, int index, int64_t size, float rate,
                 uint64_t seed)
    : Layer(std::move(name), index, size, size), device_(device), rate_(rate), seed_(seed) {}

void Dropout::forward(const Tensor& input, Tensor& output, const Pass& pass) {
  training_ = pass.training && rate_ > 0.0f;
  if (!training_) {
    if (output.raw() != input.raw()) output.copy_from(input);
    return;
  }
  const int64_t rows = input.dim(0), cols = input.dim(1);
  mask_ = workspace(mask_buffer_, device_, input.shape(), input.dtype());
  if (device_.kind() == DeviceKind::kCuda) {
    gpu_dropout_mask(device_, mask_.data<float>(), rows, cols, rate_, seed_, index(), pass.step,
                     pass.sample_offset);
    gpu_multiply(device_, input.data<float>(), mask_.data<float>(), output.data<float>(),
                 input.numel());
  } else if (input.dtype() == DType::kF32) {
    fill_mask(mask_.data<float>(), rows, cols, rate_, seed_, index(), pass);
    apply_mask(input.data<float>(), mask_.data<float>(), output.data<float>(), input.numel());
  } else {
    fill_mask(mask_.data<double>(), rows, cols, rate_, seed_, index(), pass);
    apply_mask(input.data<double>(), mask_.data<double>(), output.data<double>(), input.numel());
  }
}

void Dropout::backward(const Tensor& grad_output, Tensor* grad_input) {
  if (grad_input == nullptr) return;
  if (!training_) {
    if (grad_input->raw() != grad_output.raw()) grad_input->copy_from(grad_output);
    return;
  }
  if (device_.kind() == DeviceKind::kCuda) {
    gpu_multiply(device_, grad_output.data<float>(), mask_.data<float>(), grad_input->data<float>(),
                 grad_output.numel());
  } else if (grad_output.dtype() == DType::kF32) {
    apply_mask(grad_output.data<float>(), mask_.data<float>(), grad_input->data<float>(),
               grad_output.numel());
  } else {
    apply_mask(grad_output.data<double>(), mask_.data<double>(), grad_input->data<double>(),
               grad_output.numel());
  }
}

}  // namespace dpt
