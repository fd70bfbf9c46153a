// The Optimizer interface: updates the model's flat float32 parameter buffer in place from the
// flat gradient buffer, in one fused loop over n floats (one kernel on a CUDA device). It owns its
// state (moments, step count) and exposes it by name so checkpoints can save and restore it without
// knowing the optimizer. Built from the config by make_optimizer(); the trainer calls step() once
// per global batch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/config.pb.h"
#include "core/tensor.h"

namespace dpt {

// A named piece of optimizer state, e.g. {"adam.m", tensor of num_params floats}.
struct NamedTensor {
  std::string name;
  Tensor tensor;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Short name: "sgd", "adam", "adamw".
  virtual std::string name() const = 0;
  // One update: params -= f(grads, state, lr). params and grads are float32 tensors of the same
  // numel, on the device the optimizer was built for. Increments the step count.
  virtual void step(Tensor& params, const Tensor& grads, float lr) = 0;
  // Number of step() calls so far (restored with the state).
  virtual int64_t steps() const = 0;
  virtual void set_steps(int64_t steps) = 0;
  // State tensors, by stable names; writing into them restores the state.
  virtual std::vector<NamedTensor> state() = 0;
};

// Builds the optimizer the config's `kind` names (SGD when none is set) for `num_params` floats.
std::unique_ptr<Optimizer> make_optimizer(Device& device, const proto::OptimizerConfig& config,
                                          int64_t num_params);

// Global L2 norm of `grads` (float32, on the CPU or a CUDA device), summed in double in a fixed
// order (so the result does not depend on the thread count): fixed 4096-element chunks, chunk sums
// added in chunk order. On a GPU it waits for the device.
double global_norm(const Tensor& grads);

// Scales grads by max_norm / norm when norm > max_norm (max_norm > 0). Returns the norm before
// clipping; a NaN or Inf norm leaves grads untouched (the caller decides what to do).
double clip_grad_norm(Tensor& grads, double max_norm);

// For Optimizer implementations: throws dpt::Error (kInternal) naming `optimizer` unless params
// and grads are float32 tensors of `num_params` elements each on a device of the kind of `device`
// (where the optimizer keeps its state).
void check_step_tensors(const char* optimizer, const Device& device, const Tensor& params,
                        const Tensor& grads, int64_t num_params);

}  // namespace dpt
