// The Model: an ordered list of layers built from the config, one flat parameter buffer and one
// flat gradient buffer (layers hold views into them, in layer order, weight then bias), and the
// activation buffers of a forward pass. Gradient sync, the optimizer and weight files all work on
// the two flat buffers. A Dense layer followed by an activation layer is fused into one.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config.pb.h"
#include "core/layer.h"
#include "core/tensor.h"
#include "core/trace.h"

namespace dpt {

struct ModelOptions {
  DType dtype = DType::kF32;     // float64 for gradient checks
  bool fuse_activations = true;  // fuse Dense + activation pairs
  // On a CPU device, where the flat gradient buffer lives: called once with its size in bytes;
  // null result or no function: the device's own memory. Training passes the communicator's
  // allocate_shared, so gradient all-reduces on one node need no copies. Called in the
  // constructor only; the model keeps no copy of it.
  std::function<std::shared_ptr<void>(std::size_t bytes)> grad_memory = nullptr;
};

// A parameter by its full name, e.g. "dense0/weight".
struct NamedParam {
  std::string name;
  Tensor value;
  Tensor grad;
};

constexpr const char* kWeightsFormat = "dpt-weights-1";

class Model {
 public:
  // Builds the layers of config.model (validated config); dropout is keyed by config.train.seed.
  Model(Device& device, const proto::Config& config, const ModelOptions& options = {});

  Device& device() const { return device_; }
  DType dtype() const { return options_.dtype; }
  int64_t input_size() const { return input_size_; }
  int64_t output_size() const;
  int64_t num_params() const { return params_.numel(); }
  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }
  // "dense0+relu1 -> dropout2 -> dense3" style one-line summary.
  std::string summary() const;

  Tensor& params() { return params_; }
  const Tensor& params() const { return params_; }
  Tensor& grads() { return grads_; }
  std::vector<NamedParam> named_params() const;

  // Fills parameters from config.model.seed (he / xavier / normal; biases zero).
  void init_params();
  void zero_grads() { grads_.fill_zero(); }

  // input [B, input_size] -> logits [B, output_size]. The returned view, and `input`, must stay
  // untouched until backward(); the next forward() reuses the buffers.
  const Tensor& forward(const Tensor& input, const Pass& pass);
  // Called by backward() as soon as one layer's parameter gradients are final, with that layer's
  // range in the flat buffer (offset, count); used to start gradient all-reduces early.
  using GradsReady = std::function<void(int64_t offset, int64_t count)>;
  // Back-propagates grad_logits [B, output_size] from the last forward(); ADDS into grads().
  void backward(const Tensor& grad_logits, const GradsReady& on_ready = {});
  // Each layer's parameter range in the flat buffers, (offset, count), in layer order.
  std::vector<std::pair<int64_t, int64_t>> param_ranges() const;

  // Records forward and backward of each layer into `tracer` (null: off). Not owned.
  void set_tracer(Tracer* tracer) { tracer_ = tracer; }

  // Writes parameters to an array file ("params/<layer>/<param>") with `attributes` as metadata.
  void save_weights(const std::string& path, std::map<std::string, std::string> attributes) const;
  // Loads parameters from a weights file. Every array is checked against the model (names and
  // shapes, expected vs found) before any value is copied: a mismatch throws kCheckpoint and
  // leaves the parameters unchanged.
  void load_weights(const std::string& path);

 private:
  Device& device_;
  ModelOptions options_;
  int64_t input_size_;
  std::vector<std::unique_ptr<Layer>> layers_;
  Tensor params_, grads_;
  std::vector<Tensor> outputs_;  // per-layer output buffers (grown to the largest batch)
  std::vector<Tensor> output_views_;
  Tensor grad_buffers_[2];
  Tensor input_;
  std::vector<int64_t> param_offsets_;  // per layer
  uint64_t init_seed_;
  Tracer* tracer_ = nullptr;
};

}  // namespace dpt
