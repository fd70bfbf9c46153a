// The Layer interface and its life cycle (after Caffe): sizes are fixed at construction; the
// model binds views of its flat parameter and gradient buffers; forward(input, output) caches what
// backward needs; backward(grad_output, grad_input) ADDS into the parameter gradients and writes
// grad_input (skipped when null, as for the first layer). Activations are [batch, features].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace dpt {

// What a forward pass is for. Dropout masks are a pure function of (seed, layer index, step,
// global sample index, feature), so N workers with sample_offset set reproduce one worker's
// masks exactly.
struct Pass {
  bool training = false;
  int64_t step = 0;           // optimizer step, keys the dropout mask
  int64_t sample_offset = 0;  // global index of row 0 of this batch within the step's batch
  // The parameters have not changed since the previous forward (a later micro-batch of the same
  // step): layers may reuse what they derived from them (the bf16 copy of the weights).
  bool params_unchanged = false;
};

// A parameter of a layer: "weight" or "bias", a view into the model's flat buffers.
struct LayerParam {
  std::string name;
  Tensor value;
  Tensor grad;
};

class Layer {
 public:
  Layer(std::string name, int index, int64_t input_size, int64_t output_size)
      : name_(std::move(name)), index_(index), input_size_(input_size), output_size_(output_size) {}
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  const std::string& name() const { return name_; }
  // Position in the config's layer list (keys initialisation and dropout streams).
  int index() const { return index_; }
  int64_t input_size() const { return input_size_; }
  int64_t output_size() const { return output_size_; }
  // Short kind, e.g. "dense", "dense+relu", "gelu", "dropout".
  virtual std::string kind() const = 0;

  // Number of parameters; bind_params receives views of exactly this many elements.
  virtual int64_t num_params() const { return 0; }
  virtual void bind_params(const Tensor& params, const Tensor& grads) {}
  // Writes initial values into the bound parameters, from the model seed.
  virtual void init_params(uint64_t seed) {}
  // The bound parameters by name, in flat-buffer order.
  virtual std::vector<LayerParam> params() const { return {}; }

  // input [B, input_size] -> output [B, output_size]. input must stay alive until backward.
  virtual void forward(const Tensor& input, Tensor& output, const Pass& pass) = 0;
  // grad_output [B, output_size] -> grad_input [B, input_size] (may be null). Uses the last
  // forward's cache; adds into parameter gradients.
  virtual void backward(const Tensor& grad_output, Tensor* grad_input) = 0;

 private:
  std::string name_;
  int index_;
  int64_t input_size_;
  int64_t output_size_;
};

}  // namespace dpt
