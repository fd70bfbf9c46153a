// Helpers for the int8 quantization tests: an in-memory synthetic dataset with something to learn,
// a few epochs of plain SGD to make a trained toy model (core only, no trainer), and a double
// precision reference forward pass of an fp32 model read from its own parameters.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/activation.h"
#include "core/config.h"
#include "core/dataset.h"
#include "core/dense.h"
#include "core/loss.h"
#include "core/model.h"
#include "core/random.h"

namespace dpt::testing {

// A validated config with `layers` (text format) on `input_size` inputs.
inline proto::Config model_config(const std::string& layers, int64_t input_size) {
  return parse_config("model { input_size: " + std::to_string(input_size) + " " + layers +
                          " seed: 3 } data { train_path: \"unused.h5\" }",
                      "test.prototxt");
}

// A ReLU chain (stays in int8 between layers) and a mix that goes through fp32 (tanh, dropout,
// Dense with no activation, gelu, leaky ReLU, no bias).
inline const char* const kReluChain =
    "layer { dense { units: 32 } } layer { activation { kind: RELU } } "
    "layer { dense { units: 32 } } layer { activation { kind: RELU } } "
    "layer { dense { units: 5 } }";
inline const char* const kMixed =
    "layer { dense { units: 32 } } layer { activation { kind: TANH } } "
    "layer { dropout { rate: 0.3 } } layer { dense { units: 16 } } "
    "layer { dense { units: 16 bias: false } } layer { activation { kind: GELU } } "
    "layer { dense { units: 12 } } layer { activation { kind: LEAKY_RELU negative_slope: 0.2 } } "
    "layer { dense { units: 5 } }";

// n samples of `features` bytes; the label brightens every classes-th feature (learnable).
inline Dataset synthetic_dataset(int64_t n, int64_t features, int classes, uint64_t seed) {
  Dataset data;
  data.path = "synthetic.h5";
  data.size = n;
  data.sample_shape = {features};
  data.feature_size = features;
  data.num_classes = classes;
  data.inputs_u8.resize(static_cast<std::size_t>(n * features));
  data.labels.resize(static_cast<std::size_t>(n));
  RandomStream random(seed, 0);
  for (int64_t i = 0; i < n; ++i) {
    data.labels[i] = static_cast<int32_t>(random.below(static_cast<uint64_t>(classes)));
    for (int64_t j = 0; j < features; ++j) {
      const int shift = j % classes == data.labels[i] ? 60 : 0;
      data.inputs_u8[i * features + j] = static_cast<uint8_t>(shift + random.below(180));
    }
  }
  return data;
}

// The first n rows of `data` as a normalized float32 batch.
inline Tensor dataset_batch(Device& device, const Dataset& data, const Normalization& norm,
                            int64_t n) {
  Tensor inputs(device, {n, data.feature_size}, DType::kF32);
  std::vector<int64_t> indices(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) indices[i] = i;
  std::vector<int32_t> labels(static_cast<std::size_t>(n));
  gather_batch(data, indices.data(), n, norm, inputs, labels.data());
  return inputs;
}

// Plain minibatch SGD on softmax cross-entropy (core only).
inline void train_sgd(Model& model, const Dataset& data, const Normalization& norm, int epochs,
                      int64_t batch, float lr) {
  Device& device = model.device();
  Tensor inputs(device, {batch, data.feature_size}, DType::kF32);
  Tensor grad(device, {batch, model.output_size()}, DType::kF32);
  std::vector<int32_t> labels(static_cast<std::size_t>(batch));
  std::vector<int64_t> indices(static_cast<std::size_t>(batch));
  for (int epoch = 0; epoch < epochs; ++epoch) {
    for (int64_t start = 0; start + batch <= data.size; start += batch) {
      for (int64_t i = 0; i < batch; ++i) indices[i] = start + i;
      gather_batch(data, indices.data(), batch, norm, inputs, labels.data());
      model.zero_grads();
      const Tensor& logits = model.forward(inputs, Pass{true, start, 0});
      compute_loss(proto::SOFTMAX_CROSS_ENTROPY, logits, labels.data(), &grad, 1.0 / batch);
      model.backward(grad);
      float* p = model.params().data<float>();
      const float* g = model.grads().data<float>();
      for (int64_t i = 0; i < model.num_params(); ++i) p[i] -= lr * g[i];
    }
  }
}

// Lipschitz constant of an activation (max |f'|): bounds how it carries an input error.
inline double lipschitz(const ActivationSpec& spec) {
  switch (spec.kind) {
    case proto::RELU:
    case proto::TANH:
      return 1.0;
    case proto::LEAKY_RELU:
      return std::max(1.0, static_cast<double>(spec.negative_slope));
    case proto::GELU:
      return 1.13;  // max of d/dx x Phi(x) is 1.1289 at x = 2.42
    case proto::SIGMOID:
      return 0.25;
  }
  return 1.0;
}

// y = act(x) in double for one activation.
inline double activate(const ActivationSpec& spec, double x) {
  double y = 0;
  switch (spec.kind) {
    case proto::RELU:
      y = std::max(x, 0.0);
      break;
    case proto::LEAKY_RELU:
      y = x > 0 ? x : spec.negative_slope * x;
      break;
    case proto::GELU:
      y = 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
      break;
    case proto::TANH:
      y = std::tanh(x);
      break;
    case proto::SIGMOID:
      y = 1 / (1 + std::exp(-x));
      break;
  }
  return y;
}

}  // namespace dpt::testing
