// Saving and loading QuantizedModel as an array file (layout in int8_file.h). Loading checks
// everything against the config's model before returning, so Int8Model never sees a bad value.
#include "core/int8_file.h"

#include <cmath>

#include "core/array_file.h"
#include "devices/error.h"

namespace dpt {
namespace {

constexpr ErrorKind kCheckpoint = ErrorKind::kCheckpoint;

std::string prefix(const QuantizedDense& layer) { return "int8/" + layer.name + "/"; }

const char* signed_inputs_name(proto::SignedInputs value) {
  return value == proto::S8_SYMMETRIC ? "S8_SYMMETRIC" : "U8_ZERO_POINT";
}

const std::string& attribute(const ArrayFile& file, const std::string& path, const char* key) {
  const auto found = file.attributes.find(key);
  DPT_CHECK_AS(kCheckpoint, found != file.attributes.end())
      << path << ": missing attribute " << key;
  return found->second;
}

const Array& array(const ArrayFile& file, const std::string& path, const std::string& name,
                   ArrayType type, const Shape& shape) {
  const Array* found = file.find(name);
  DPT_CHECK_AS(kCheckpoint, found != nullptr)
      << path << ": missing " << name << " (expected " << shape_string(shape) << ")";
  DPT_CHECK_AS(kCheckpoint, found->type == type)
      << path << ": " << name << " is " << (found->type == ArrayType::kI8 ? "int8" : "float32")
      << ", want " << (type == ArrayType::kI8 ? "int8" : "float32");
  DPT_CHECK_AS(kCheckpoint, found->shape == shape)
      << path << ": " << name << " has shape " << shape_string(found->shape)
      << ", the model expects " << shape_string(shape);
  return *found;
}

QuantParams input_params(const std::string& path, const std::string& name, const Array& input) {
  const std::vector<float>& v = input.values;
  QuantParams params;
  params.min = v[0];
  params.max = v[1];
  params.scale = v[2];
  params.zero_point = static_cast<int32_t>(v[3]);
  params.is_signed = v[4] == 1.0f;
  const bool valid = std::isfinite(v[0]) && std::isfinite(v[1]) && v[0] <= 0 && v[1] >= 0 &&
                     std::isfinite(v[2]) && v[2] > 0 && (v[4] == 0.0f || v[4] == 1.0f) &&
                     static_cast<float>(params.zero_point) == v[3] &&
                     (params.is_signed ? params.zero_point == 0
                                       : params.zero_point >= 0 && params.zero_point <= 255);
  DPT_CHECK_AS(kCheckpoint, valid) << path << ": " << name << " holds invalid parameters [" << v[0]
                                   << ", " << v[1] << ", " << v[2] << ", " << v[3] << ", " << v[4]
                                   << "] (min <= 0 <= max, scale > 0, zero point in range)";
  return params;
}

}  // namespace

void save_quantized_model(const std::string& path, const QuantizedModel& model,
                          std::map<std::string, std::string> attributes) {
  ArrayFile file;
  file.attributes = std::move(attributes);
  file.attributes["format"] = kInt8Format;
  file.attributes["layout"] = model.layout;
  file.attributes["calibration_samples"] = std::to_string(model.calibration_samples);
  file.attributes["calibration_percentile"] = std::to_string(model.calibration_percentile);
  file.attributes["signed_inputs"] = signed_inputs_name(model.signed_inputs);
  for (const QuantizedDense& layer : model.layers) {
    const std::string p = prefix(layer);
    Array weight{p + "weight",
                 {layer.output_size, layer.input_size},
                 {},
                 ArrayType::kI8,
                 layer.weight.values};
    file.arrays.push_back(std::move(weight));
    file.arrays.push_back({p + "weight_scale", {layer.output_size}, layer.weight.scales});
    if (!layer.bias.empty()) file.arrays.push_back({p + "bias", {layer.output_size}, layer.bias});
    const QuantParams& in = layer.input;
    file.arrays.push_back({p + "input",
                           {5},
                           {in.min, in.max, in.scale, static_cast<float>(in.zero_point),
                            in.is_signed ? 1.0f : 0.0f}});
  }
  write_array_file(path, file);
}

bool is_int8_model_file(const std::string& path) {
  const auto attributes = read_array_file_attributes(path);
  const auto format = attributes.find("format");
  return format != attributes.end() && format->second == kInt8Format;
}

QuantizedModel load_quantized_model(const std::string& path, const Model& model) {
  const ArrayFile file = read_array_file(path, /*allow_int8=*/true);
  const std::string& format = attribute(file, path, "format");
  DPT_CHECK_AS(kCheckpoint, format == kInt8Format)
      << path << ": not a dpt int8 model (format attribute \"" << format << "\", expected \""
      << kInt8Format << "\")";
  QuantizedModel result = quantized_structure(model);
  const std::string& layout = attribute(file, path, "layout");
  DPT_CHECK_AS(kCheckpoint, layout == result.layout)
      << path << ": quantized from the model " << layout << ", but the config builds "
      << result.layout;
  try {
    result.calibration_samples = std::stoll(attribute(file, path, "calibration_samples"));
    result.calibration_percentile = std::stod(attribute(file, path, "calibration_percentile"));
  } catch (const std::logic_error&) {
    DPT_THROW(kCheckpoint) << path << ": calibration attributes are not numbers";
  }
  result.signed_inputs = attribute(file, path, "signed_inputs") == "S8_SYMMETRIC"
                             ? proto::S8_SYMMETRIC
                             : proto::U8_ZERO_POINT;

  std::size_t expected_arrays = 0;
  std::size_t d = 0;
  for (const auto& layer : model.layers()) {
    const std::vector<LayerParam> params = layer->params();
    if (params.empty()) continue;
    QuantizedDense& q = result.layers[d++];
    const std::string p = prefix(q);
    const Shape rows{q.output_size};
    q.weight.values =
        array(file, path, p + "weight", ArrayType::kI8, {q.output_size, q.input_size}).int8_values;
    q.weight.scales = array(file, path, p + "weight_scale", ArrayType::kF32, rows).values;
    for (float scale : q.weight.scales) {
      DPT_CHECK_AS(kCheckpoint, std::isfinite(scale) && scale > 0)
          << path << ": " << p << "weight_scale holds " << scale << " (want finite and > 0)";
    }
    for (int8_t code : q.weight.values) {
      DPT_CHECK_AS(kCheckpoint, code != -128) << path << ": " << p << "weight holds -128";
    }
    if (params.size() > 1) {
      q.bias = array(file, path, p + "bias", ArrayType::kF32, rows).values;
      ++expected_arrays;
    }
    q.input = input_params(path, p + "input", array(file, path, p + "input", ArrayType::kF32, {5}));
    expected_arrays += 3;
  }
  DPT_CHECK_AS(kCheckpoint, file.arrays.size() == expected_arrays)
      << path << ": holds " << file.arrays.size() << " arrays, the model needs " << expected_arrays;
  return result;
}

}  // namespace dpt
