// Small CPU tensors from literal values and back, for tests that check values by hand.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace dpt::testing {

// A 1-D float32 tensor on `device` (host memory) holding `values`.
inline Tensor make_tensor(Device& device, const std::vector<float>& values) {
  Tensor tensor(device, {static_cast<int64_t>(values.size())}, DType::kF32);
  for (std::size_t i = 0; i < values.size(); ++i) tensor.data<float>()[i] = values[i];
  return tensor;
}

// The elements of a float32 tensor in host memory.
inline std::vector<float> values_of(const Tensor& tensor) {
  const float* data = tensor.data<float>();
  return std::vector<float>(data, data + tensor.numel());
}

}  // namespace dpt::testing
