// Int8Model: turns each QuantizedDense into an Int8Matmul with its scales and bias folded (see
// int8_model.h), and runs the chain with two ping-pong code buffers.
#include "core/int8_model.h"

#include "devices/error.h"

namespace dpt {
namespace {

bool is_lone_relu(const std::vector<ActivationSpec>& activations) {
  return activations.size() == 1 && activations[0].kind == proto::RELU;
}

Int8Type code_type(const QuantParams& params) {
  return params.is_signed ? Int8Type::kS8 : Int8Type::kU8;
}

void apply_activations(const std::vector<ActivationSpec>& activations, float* x, int64_t n) {
  for (const ActivationSpec& spec : activations) activation_forward(spec, x, x, n);
}

}  // namespace

Int8Model::Int8Model(Device& device, const QuantizedModel& model)
    : device_(device),
      input_size_(model.input_size),
      max_width_(model.input_size),
      input_activations_(model.input_activations) {
  DPT_CHECK_AS(ErrorKind::kConfig, device.kind() == DeviceKind::kCpu)
      << "int8 inference runs on the CPU only, not on " << device.name();
  DPT_CHECK(!model.layers.empty()) << "int8 model without layers";
  for (std::size_t i = 0; i < model.layers.size(); ++i) {
    const QuantizedDense& layer = model.layers[i];
    const QuantParams* next = i + 1 < model.layers.size() ? &model.layers[i + 1].input : nullptr;
    const int64_t k = layer.input_size, n = layer.output_size;
    DPT_CHECK(k == (i == 0 ? model.input_size : model.layers[i - 1].output_size) &&
              static_cast<int64_t>(layer.weight.values.size()) == k * n &&
              static_cast<int64_t>(layer.weight.scales.size()) == n &&
              (layer.bias.empty() || static_cast<int64_t>(layer.bias.size()) == n))
        << "int8 model: layer " << layer.name << " has inconsistent sizes";
    max_width_ = std::max(max_width_, n);
    const bool relu = is_lone_relu(layer.activations);
    Stage stage;
    stage.input = layer.input;
    stage.writes_codes =
        next != nullptr && (layer.activations.empty() || (relu && next->zero_point == 0));
    if (!relu) stage.activations = layer.activations;

    Int8MatmulSpec spec;
    spec.input_size = k;
    spec.output_size = n;
    spec.src = code_type(layer.input);
    spec.dst = stage.writes_codes ? code_type(*next) : Int8Type::kF32;
    spec.weight = layer.weight.values;
    spec.relu = relu;
    spec.scales.resize(n);
    spec.bias.resize(n);
    const double s_x = layer.input.scale;
    for (int64_t j = 0; j < n; ++j) {
      const double s_w = layer.weight.scales[j];
      int64_t row_sum = 0;
      for (int64_t c = 0; c < k; ++c) row_sum += layer.weight.values[j * k + c];
      // y = s_x s_w (acc - z_x sum_k q_w) + b  =  s_x s_w (acc + b'),  b' = b / (s_x s_w) - z_x sum
      double bias = (layer.bias.empty() ? 0.0 : layer.bias[j]) / (s_x * s_w) -
                    static_cast<double>(layer.input.zero_point) * static_cast<double>(row_sum);
      double scale = s_x * s_w;
      if (stage.writes_codes) {
        // codes = y / s_y + z_y = (s_x s_w / s_y) (acc + b' + z_y s_y / (s_x s_w))
        bias += static_cast<double>(next->zero_point) * next->scale / (s_x * s_w);
        scale /= next->scale;
      }
      spec.scales[j] = static_cast<float>(scale);
      spec.bias[j] = static_cast<float>(bias);
    }
    stage.matmul = std::make_unique<Int8Matmul>(std::move(spec));
    stages_.push_back(std::move(stage));
  }
}

Int8Model::~Int8Model() = default;

int64_t Int8Model::output_size() const { return stages_.back().matmul->spec().output_size; }

const Tensor& Int8Model::forward(const Tensor& input) {
  DPT_CHECK(input.ndim() == 2 && input.dim(1) == input_size_ && input.dtype() == DType::kF32)
      << "int8 model input " << dtype_name(input.dtype()) << shape_string(input.shape())
      << ", expected float32[B, " << input_size_ << "]";
  const int64_t batch = input.dim(0);
  for (auto& codes : codes_) codes.resize(static_cast<std::size_t>(batch * max_width_));
  const float* x = input.data<float>();
  if (!input_activations_.empty()) {
    Tensor copy = workspace(input_buffer_, device_, input.shape(), DType::kF32);
    copy.copy_from(input);
    apply_activations(input_activations_, copy.data<float>(), copy.numel());
    x = copy.data<float>();
  }
  quantize_values(x, batch * input_size_, stages_[0].input, codes_[0].data());
  int current = 0;
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    Stage& stage = stages_[i];
    const int64_t n = stage.matmul->spec().output_size;
    const bool last = i + 1 == stages_.size();
    if (stage.writes_codes) {
      stage.matmul->run(codes_[current].data(), batch, codes_[1 - current].data());
    } else {
      Tensor out = last ? workspace(logits_buffer_, device_, {batch, n}, DType::kF32)
                        : workspace(hidden_buffer_, device_, {batch, n}, DType::kF32);
      stage.matmul->run(codes_[current].data(), batch, out.data<float>());
      apply_activations(stage.activations, out.data<float>(), batch * n);
      if (last) {
        logits_ = out;
        break;
      }
      quantize_values(out.data<float>(), batch * n, stages_[i + 1].input,
                      codes_[1 - current].data());
    }
    current = 1 - current;
  }
  return logits_;
}

}  // namespace dpt
