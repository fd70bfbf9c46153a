// Inverted dropout. In training each element is kept with probability 1 - rate and scaled by
// 1 / (1 - rate); at evaluation it is the identity. The mask is a pure function of
// (seed, layer index, step, global sample index, feature) through Philox, so it is the same on any
// thread count, and N data-parallel workers draw exactly the masks one worker would.
#pragma once

#include "core/layer.h"

namespace dpt {

class Dropout : public Layer {
 public:
  Dropout(Device& device, std::string name, int index, int64_t size, float rate, uint64_t seed);
  std::string kind() const override { return "dropout"; }
  void forward(const Tensor& input, Tensor& output, const Pass& pass) override;
  void backward(const Tensor& grad_output, Tensor* grad_input) override;

 private:
  Device& device_;
  float rate_;
  uint64_t seed_;
  bool training_ = false;
  Tensor mask_;  // per element: 0 or 1 / (1 - rate), from the last training forward
  Tensor mask_buffer_;
};

}  // namespace dpt
