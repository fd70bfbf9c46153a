// Model construction (with Dense + activation fusion), the forward/backward passes over the layer
// list, and weight files (through host memory, so a model on a GPU saves and loads the same).
#include "core/model.h"

#include <optional>
#include <vector>

#include "core/activation.h"
#include "core/array_file.h"
#include "core/config.h"
#include "core/dense.h"
#include "core/dropout.h"
#include "devices/error.h"
#include "devices/gpu_ops.h"

namespace dpt {
namespace {

ActivationSpec activation_spec(const proto::ActivationConfig& config) {
  return {config.kind(), config.negative_slope()};
}

std::string param_path(const NamedParam& param) { return "params/" + param.name; }

// The Dense GEMMs' format on a CUDA device, from device.precision (the CPU reads it through
// CpuDevice::matmul_precision instead). FP16's loss scaling is the training step's
// (launch/loss_scaling.h); the layers only multiply in fp16.
GpuMatmul gpu_matmul(const proto::Config& config) {
  switch (config.device().precision()) {
    case proto::TF32:
      return GpuMatmul::kTf32;
    case proto::BF16:
      return GpuMatmul::kBf16;
    case proto::FP16:
      return GpuMatmul::kFp16;
    case proto::PRECISION_AUTO:
    case proto::FP32:
      break;
  }
  return GpuMatmul::kFp32;
}

}  // namespace

Model::Model(Device& device, const proto::Config& config, const ModelOptions& options)
    : device_(device),
      options_(options),
      input_size_(config.model().input_size()),
      init_seed_(config.model().seed()) {
  const bool on_gpu = device.kind() == DeviceKind::kCuda;
  DPT_CHECK_AS(ErrorKind::kConfig, !on_gpu || options_.dtype == DType::kF32)
      << "model: " << dtype_name(options_.dtype) << " models run on the CPU only, not on "
      << device.name();
  const GpuMatmul gpu_precision = on_gpu ? gpu_matmul(config) : GpuMatmul::kFp32;
  const auto& layer_configs = config.model().layer();
  int64_t width = input_size_;
  for (int i = 0; i < layer_configs.size(); ++i) {
    const proto::LayerConfig& layer = layer_configs[i];
    std::string name = layer_name(config, i);
    switch (layer.kind_case()) {
      case proto::LayerConfig::kDense: {
        std::optional<ActivationSpec> fused;
        const bool next_is_activation =
            i + 1 < layer_configs.size() && layer_configs[i + 1].has_activation();
        if (options_.fuse_activations && next_is_activation) {
          fused = activation_spec(layer_configs[i + 1].activation());
          name += "+" + layer_name(config, i + 1);
        }
        layers_.push_back(
            std::make_unique<Dense>(device, name, i, width, layer.dense(), fused, gpu_precision));
        if (fused) ++i;
        break;
      }
      case proto::LayerConfig::kActivation:
        layers_.push_back(
            std::make_unique<Activation>(name, i, width, activation_spec(layer.activation())));
        break;
      case proto::LayerConfig::kDropout:
        layers_.push_back(std::make_unique<Dropout>(device, name, i, width, layer.dropout().rate(),
                                                    config.train().seed()));
        break;
      case proto::LayerConfig::KIND_NOT_SET:
        DPT_THROW(ErrorKind::kConfig) << "model.layer[" << i << "]: no layer kind set";
    }
    width = layers_.back()->output_size();
  }
  DPT_CHECK_AS(ErrorKind::kConfig, !layers_.empty()) << "model: no layers";

  int64_t total = 0;
  for (const auto& layer : layers_) total += layer->num_params();
  params_ = Tensor(device, {total}, options_.dtype);
  if (options_.grad_memory && device.kind() == DeviceKind::kCpu) {
    std::shared_ptr<void> memory =
        options_.grad_memory(static_cast<std::size_t>(total) * dtype_size(options_.dtype));
    grads_ = memory != nullptr ? Tensor(device, {total}, options_.dtype, std::move(memory))
                               : Tensor(device, {total}, options_.dtype);
  } else {
    grads_ = Tensor(device, {total}, options_.dtype);
  }
  options_.grad_memory = nullptr;  // used once: the model keeps no reference to the caller's state
  int64_t offset = 0;
  for (const auto& layer : layers_) {
    const int64_t n = layer->num_params();
    layer->bind_params(params_.slice(offset, {n}), grads_.slice(offset, {n}));
    param_offsets_.push_back(offset);
    offset += n;
  }
  outputs_.resize(layers_.size());
  output_views_.resize(layers_.size());
  init_params();
}

int64_t Model::output_size() const { return layers_.back()->output_size(); }

std::string Model::summary() const {
  std::string text = std::to_string(input_size_);
  for (const auto& layer : layers_) {
    text += " -> " + layer->name() + "(" + std::to_string(layer->output_size()) + ")";
  }
  return text;
}

std::vector<NamedParam> Model::named_params() const {
  std::vector<NamedParam> list;
  for (const auto& layer : layers_) {
    for (const LayerParam& param : layer->params()) {
      // Fused layers save under the Dense layer's own name, so files do not depend on fusion.
      std::string owner = layer->name().substr(0, layer->name().find('+'));
      list.push_back({owner + "/" + param.name, param.value, param.grad});
    }
  }
  return list;
}

void Model::init_params() {
  for (const auto& layer : layers_) layer->init_params(init_seed_);
}

const Tensor& Model::forward(const Tensor& input, const Pass& pass) {
  DPT_CHECK(input.ndim() == 2 && input.dim(1) == input_size_ && input.dtype() == options_.dtype)
      << "model input " << dtype_name(input.dtype()) << shape_string(input.shape()) << ", expected "
      << dtype_name(options_.dtype) << "[B, " << input_size_ << "]";
  DPT_CHECK(input.device().kind() == device_.kind())
      << "model input on " << input.device().name() << ", the model on " << device_.name();
  const int64_t batch = input.dim(0);
  input_ = input;
  const Tensor* current = &input_;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    output_views_[i] =
        workspace(outputs_[i], device_, {batch, layers_[i]->output_size()}, options_.dtype);
    TraceSpan span(tracer_, "forward", layers_[i]->name());
    layers_[i]->forward(*current, output_views_[i], pass);
    current = &output_views_[i];
  }
  return *current;
}

std::vector<std::pair<int64_t, int64_t>> Model::param_ranges() const {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    ranges.emplace_back(param_offsets_[i], layers_[i]->num_params());
  }
  return ranges;
}

void Model::backward(const Tensor& grad_logits, const GradsReady& on_ready) {
  const int64_t batch = grad_logits.dim(0);
  Tensor grad_output = grad_logits;
  for (std::size_t i = layers_.size(); i-- > 0;) {
    Tensor grad_input;
    if (i > 0) {
      // Ping-pong between two buffers so grad_input never aliases grad_output.
      grad_input = workspace(grad_buffers_[i % 2], device_, {batch, layers_[i]->input_size()},
                             options_.dtype);
    }
    {
      TraceSpan span(tracer_, "backward", layers_[i]->name());
      layers_[i]->backward(grad_output, i > 0 ? &grad_input : nullptr);
    }
    if (on_ready && layers_[i]->num_params() > 0) {
      on_ready(param_offsets_[i], layers_[i]->num_params());
    }
    grad_output = grad_input;
  }
}

void Model::save_weights(const std::string& path,
                         std::map<std::string, std::string> attributes) const {
  DPT_CHECK(options_.dtype == DType::kF32) << "weights files hold float32 parameters";
  ArrayFile file;
  file.attributes = std::move(attributes);
  file.attributes["format"] = kWeightsFormat;
  for (const NamedParam& param : named_params()) {
    std::vector<float> values(static_cast<std::size_t>(param.value.numel()));
    param.value.copy_to_host(values.data());
    file.arrays.push_back({param_path(param), param.value.shape(), std::move(values)});
  }
  write_array_file(path, file);
}

void Model::load_weights(const std::string& path) {
  DPT_CHECK(options_.dtype == DType::kF32) << "weights files hold float32 parameters";
  ArrayFile file = read_array_file(path);
  auto format = file.attributes.find("format");
  DPT_CHECK_AS(ErrorKind::kCheckpoint,
               format != file.attributes.end() && format->second == kWeightsFormat)
      << path << ": not a dpt weights file (format attribute \""
      << (format == file.attributes.end() ? "" : format->second) << "\", expected \""
      << kWeightsFormat << "\")";
  std::vector<NamedParam> params = named_params();
  for (const NamedParam& param : params) {
    const Array* array = file.find(param_path(param));
    DPT_CHECK_AS(ErrorKind::kCheckpoint, array != nullptr)
        << path << ": missing " << param_path(param) << " (expected "
        << shape_string(param.value.shape()) << ")";
    DPT_CHECK_AS(ErrorKind::kCheckpoint, array->shape == param.value.shape())
        << path << ": " << param_path(param) << " has shape " << shape_string(array->shape)
        << ", the model expects " << shape_string(param.value.shape());
    DPT_CHECK_AS(ErrorKind::kCheckpoint,
                 static_cast<int64_t>(array->values.size()) == param.value.numel())
        << path << ": " << param_path(param) << " holds no float32 values";
  }
  DPT_CHECK_AS(ErrorKind::kCheckpoint, file.arrays.size() == params.size())
      << path << ": holds " << file.arrays.size() << " arrays, the model has " << params.size()
      << " parameters (a different architecture?)";
  for (NamedParam& param : params) {
    param.value.copy_from_host(file.find(param_path(param))->values.data());
  }
}

}  // namespace dpt
