// Post-training quantization: weight quantization, quantization parameters from ranges, and
// calibration, which runs the fp32 layers on evenly spaced training samples and records the range
// of each Dense layer's input (min/max, then a histogram when a percentile below 100 is asked for).
#include "core/quantize.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "core/dense.h"
#include "core/dropout.h"
#include "devices/error.h"

namespace dpt {
namespace {

constexpr int64_t kCalibrationBatch = 256;
constexpr int kHistogramBins = 4096;

std::string owner_name(const Layer& layer) {
  return layer.name().substr(0, layer.name().find('+'));
}

// Calls visit(d, x, n) with the fp32 input x [n, input_size] of the d-th Dense layer, for every
// batch of the calibration samples.
using Visit = std::function<void(std::size_t dense, const float* x, int64_t n)>;
void run_calibration(Model& model, const Dataset& data, const Normalization& normalization,
                     const std::vector<int64_t>& indices, const Visit& visit) {
  const auto& layers = model.layers();
  Tensor input(model.device(), {kCalibrationBatch, model.input_size()}, DType::kF32);
  std::vector<Tensor> buffers(layers.size());
  std::vector<int32_t> labels(kCalibrationBatch);
  for (std::size_t start = 0; start < indices.size(); start += kCalibrationBatch) {
    const int64_t n = std::min<int64_t>(kCalibrationBatch, indices.size() - start);
    gather_batch(data, indices.data() + start, n, normalization, input, labels.data());
    Tensor current = input.rows(n);
    std::size_t dense = 0;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      if (dynamic_cast<const Dense*>(layers[i].get()) != nullptr) {
        visit(dense++, current.data<float>(), n);
      }
      Tensor output =
          workspace(buffers[i], model.device(), {n, layers[i]->output_size()}, DType::kF32);
      layers[i]->forward(current, output, Pass{});
      current = output;
    }
  }
}

struct Range {
  float min = 0.0f, max = 0.0f;  // starts at [0, 0]: every range includes 0
  std::vector<int64_t> histogram;
};

// The value at fraction q of the histogrammed values, as a bin edge (lower edge going down).
float histogram_quantile(const Range& range, double q, bool upper) {
  int64_t total = 0;
  for (int64_t count : range.histogram) total += count;
  const double width = (static_cast<double>(range.max) - range.min) / kHistogramBins;
  const double target = q * static_cast<double>(total);
  int64_t seen = 0;
  for (int b = 0; b < kHistogramBins; ++b) {
    seen += range.histogram[b];
    if (static_cast<double>(seen) >= target) {
      return static_cast<float>(range.min + width * (upper ? b + 1 : b));
    }
  }
  return range.max;
}

}  // namespace

QuantParams choose_quant_params(float min, float max, proto::SignedInputs signed_inputs) {
  DPT_CHECK_AS(ErrorKind::kData, std::isfinite(min) && std::isfinite(max))
      << "quantization range [" << min << ", " << max << "] is not finite";
  QuantParams params;
  params.min = std::min(min, 0.0f);
  params.max = std::max(max, 0.0f);
  if (params.min == 0.0f && params.max == 0.0f) return params;  // scale 1: all codes are 0
  if (params.min == 0.0f) {
    params.scale = params.max / 255.0f;
  } else if (signed_inputs == proto::S8_SYMMETRIC) {
    params.is_signed = true;
    params.scale = std::max(-params.min, params.max) / 127.0f;
  } else {
    params.scale = (params.max - params.min) / 255.0f;
    params.zero_point =
        static_cast<int32_t>(std::clamp(std::nearbyint(-params.min / params.scale), 0.0f, 255.0f));
  }
  if (!(params.scale > 0.0f) || !std::isfinite(params.scale)) params.scale = 1.0f;  // subnormal
  return params;
}

void quantize_values(const float* x, int64_t n, const QuantParams& params, void* q) {
  const float inverse = 1.0f / params.scale;
  const auto zero_point = static_cast<float>(params.zero_point);
  const float lo = params.is_signed ? -127.0f : 0.0f, hi = params.is_signed ? 127.0f : 255.0f;
  // Clamped first (the bounds are integers, so this commutes with rounding; NaN becomes lo),
  // then rounded half to even by adding and subtracting 1.5 * 2^23: exact for |v| < 2^22, and
  // unlike nearbyint (a libm call without SSE4.1, which dpt does not assume) it vectorises.
  auto code = [=](float value) {
    float v = value * inverse + zero_point;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    return static_cast<int32_t>((v + 12582912.0f) - 12582912.0f);
  };
  if (params.is_signed) {
    auto* out = static_cast<int8_t*>(q);
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int8_t>(code(x[i]));
    return;
  }
  auto* out = static_cast<uint8_t*>(q);
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(code(x[i]));
}

QuantizedWeights quantize_weights(const float* w, int64_t rows, int64_t cols,
                                  const std::string& name) {
  QuantizedWeights result;
  result.values.resize(static_cast<std::size_t>(rows * cols));
  result.scales.resize(static_cast<std::size_t>(rows));
  for (int64_t j = 0; j < rows; ++j) {
    const float* row = w + j * cols;
    float largest = 0.0f;
    for (int64_t k = 0; k < cols; ++k) {
      DPT_CHECK_AS(ErrorKind::kCheckpoint, std::isfinite(row[k]))
          << name << ": row " << j << " holds a non-finite weight (" << row[k] << ")";
      largest = std::max(largest, std::fabs(row[k]));
    }
    float scale = largest / 127.0f;
    if (!(scale > 0.0f)) scale = 1.0f;
    result.scales[j] = scale;
    for (int64_t k = 0; k < cols; ++k) {
      result.values[j * cols + k] =
          static_cast<int8_t>(std::clamp(std::nearbyint(row[k] / scale), -127.0f, 127.0f));
    }
  }
  return result;
}

QuantizeOptions quantize_options_from(const proto::QuantizeConfig& config) {
  return {config.calibration_samples(), config.calibration_percentile(), config.signed_inputs()};
}

QuantizedModel quantized_structure(const Model& model) {
  DPT_CHECK_AS(ErrorKind::kConfig, model.dtype() == DType::kF32)
      << "quantization needs a float32 model, got " << dtype_name(model.dtype());
  DPT_CHECK_AS(ErrorKind::kConfig, model.device().kind() == DeviceKind::kCpu)
      << "quantization runs on a model on the CPU, not on " << model.device().name();
  QuantizedModel result;
  result.input_size = model.input_size();
  result.layout = model.summary();
  for (const auto& layer : model.layers()) {
    if (const auto* dense = dynamic_cast<const Dense*>(layer.get())) {
      QuantizedDense q;
      q.name = owner_name(*dense);
      q.input_size = dense->input_size();
      q.output_size = dense->output_size();
      if (dense->activation()) q.activations.push_back(*dense->activation());
      result.layers.push_back(std::move(q));
    } else if (const auto* activation = dynamic_cast<const Activation*>(layer.get())) {
      (result.layers.empty() ? result.input_activations : result.layers.back().activations)
          .push_back(activation->spec());
    } else {
      DPT_CHECK_AS(ErrorKind::kConfig, dynamic_cast<const Dropout*>(layer.get()) != nullptr)
          << "layer " << layer->name() << " (" << layer->kind() << ") cannot be quantized";
    }
  }
  DPT_CHECK_AS(ErrorKind::kConfig, !result.layers.empty())
      << "model " << result.layout << " has no Dense layer to quantize";
  return result;
}

QuantizedModel quantize_model(Model& model, const Dataset& calibration_data,
                              const Normalization& normalization, const QuantizeOptions& options) {
  DPT_CHECK_AS(ErrorKind::kConfig, options.calibration_samples > 0)
      << "quantize: calibration_samples must be > 0 (got " << options.calibration_samples << ")";
  DPT_CHECK_AS(ErrorKind::kConfig,
               options.calibration_percentile >= 50 && options.calibration_percentile <= 100)
      << "quantize: calibration_percentile must be in [50, 100] (got "
      << options.calibration_percentile << ")";
  QuantizedModel result = quantized_structure(model);
  DPT_CHECK_AS(ErrorKind::kConfig, calibration_data.feature_size == model.input_size())
      << calibration_data.path << ": " << calibration_data.feature_size
      << " features per sample, the model takes " << model.input_size();
  DPT_CHECK_AS(ErrorKind::kData, calibration_data.size > 0)
      << calibration_data.path << ": no samples to calibrate on";

  // Evenly spaced over the set, so a set sorted by class still gives every class.
  const int64_t count = std::min(options.calibration_samples, calibration_data.size);
  std::vector<int64_t> indices(static_cast<std::size_t>(count));
  for (int64_t i = 0; i < count; ++i) indices[i] = i * calibration_data.size / count;
  result.calibration_samples = count;
  result.calibration_percentile = options.calibration_percentile;
  result.signed_inputs = options.signed_inputs;

  std::vector<Range> ranges(result.layers.size());
  run_calibration(model, calibration_data, normalization, indices,
                  [&](std::size_t d, const float* x, int64_t n) {
                    const int64_t size = n * result.layers[d].input_size;
                    const auto [lo, hi] = std::minmax_element(x, x + size);
                    ranges[d].min = std::min(ranges[d].min, *lo);
                    ranges[d].max = std::max(ranges[d].max, *hi);
                    // minmax ignores NaN comparisons; check every value once here.
                    for (int64_t i = 0; i < size; ++i) {
                      DPT_CHECK_AS(ErrorKind::kData, std::isfinite(x[i]))
                          << calibration_data.path << ": calibration input of "
                          << result.layers[d].name << " is not finite (" << x[i] << ")";
                    }
                  });
  if (options.calibration_percentile < 100.0) {
    for (Range& range : ranges) range.histogram.assign(kHistogramBins, 0);
    run_calibration(model, calibration_data, normalization, indices,
                    [&](std::size_t d, const float* x, int64_t n) {
                      Range& range = ranges[d];
                      const double width = (static_cast<double>(range.max) - range.min);
                      if (width <= 0) return;
                      for (int64_t i = 0; i < n * result.layers[d].input_size; ++i) {
                        const auto bin =
                            static_cast<int64_t>((x[i] - range.min) / width * kHistogramBins);
                        ++range.histogram[std::clamp<int64_t>(bin, 0, kHistogramBins - 1)];
                      }
                    });
    const double tail = 1.0 - options.calibration_percentile / 100.0;
    for (Range& range : ranges) {
      if (range.max <= range.min) continue;
      const float lo = histogram_quantile(range, tail, false);
      const float hi = histogram_quantile(range, 1.0 - tail, true);
      range.min = lo;
      range.max = hi;
    }
  }

  std::size_t d = 0;
  for (const auto& layer : model.layers()) {
    if (dynamic_cast<const Dense*>(layer.get()) == nullptr) continue;
    QuantizedDense& q = result.layers[d];
    q.input = choose_quant_params(ranges[d].min, ranges[d].max, options.signed_inputs);
    for (const LayerParam& param : layer->params()) {
      const float* values = param.value.data<float>();
      if (param.name == "weight") {
        q.weight = quantize_weights(values, q.output_size, q.input_size, q.name + "/weight");
      } else {
        q.bias.assign(values, values + param.value.numel());
      }
    }
    ++d;
  }
  return result;
}

}  // namespace dpt
