// Post-training int8 quantization of a trained fp32 Model (README "Compression", "int8
// quantization"): per-output-channel symmetric int8 weights, and each Dense layer's input range
// calibrated by running the fp32 model on a sample of training data. The result, QuantizedModel,
// is plain data: core/int8_model runs it, core/int8_file saves and loads it. No printing.
//
// Element-wise layers between two Dense layers (activations; dropout is the identity at
// inference) are kept in fp32: the int8 path dequantizes, applies them and requantizes, except a
// lone ReLU, which oneDNN applies inside the int8 GEMM. So every model dpt trains can be quantized.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/activation.h"
#include "core/config.pb.h"
#include "core/dataset.h"
#include "core/model.h"

namespace dpt {

// How real values x map to 8-bit codes q: x ~ scale * (q - zero_point).
// Unsigned (u8): q in [0, 255]. Signed (s8, symmetric): q in [-127, 127], zero_point 0.
struct QuantParams {
  bool is_signed = false;
  float scale = 1.0f;  // > 0
  int32_t zero_point = 0;
  float min = 0.0f;  // the calibrated range the parameters were chosen from; min <= 0 <= max
  float max = 0.0f;
};

// Parameters for values in [min, max], widened to include 0 (so 0, which ReLU and zero inputs
// produce often, is exact). A range within [0, max] is u8 with zero point 0 and scale max / 255.
// A range reaching below 0 is u8 with zero point round(-min / scale), scale (max - min) / 255,
// or with S8_SYMMETRIC s8 with scale max(|min|, |max|) / 127. An empty range ([0, 0], a layer
// whose inputs are all zero) gets scale 1. Throws kData when min or max is not finite.
QuantParams choose_quant_params(float min, float max, proto::SignedInputs signed_inputs);

// q[i] = clamp(round(x[i] / scale) + zero_point) for i < n, rounding half to even (NaN gives the
// lowest code); `q` holds n uint8_t (unsigned params) or int8_t (signed params).
void quantize_values(const float* x, int64_t n, const QuantParams& params, void* q);

// Per-output-channel symmetric int8 weights: row j of W [rows, cols] becomes
// q[j, k] = round(W[j, k] / scale[j]) with scale[j] = max_k |W[j, k]| / 127, so every
// |W - scale * q| <= scale / 2. An all-zero row gets scale 1 (its codes are all 0, exact).
struct QuantizedWeights {
  std::vector<int8_t> values;  // [rows, cols]
  std::vector<float> scales;   // [rows]
};
// Throws kCheckpoint naming `name` and the row when a weight is not finite.
QuantizedWeights quantize_weights(const float* w, int64_t rows, int64_t cols,
                                  const std::string& name);

// One Dense layer of the quantized model and the element-wise layers after it.
struct QuantizedDense {
  std::string name;  // the Dense layer's config name, e.g. "dense0"
  int64_t input_size = 0;
  int64_t output_size = 0;
  QuantParams input;                        // how this layer's input is quantized
  QuantizedWeights weight;                  // [output_size, input_size]
  std::vector<float> bias;                  // fp32 [output_size]; empty when the layer has no bias
  std::vector<ActivationSpec> activations;  // applied after the layer, in order
};

struct QuantizedModel {
  int64_t input_size = 0;
  std::string layout;                             // Model::summary() of the model it was made from
  std::vector<ActivationSpec> input_activations;  // element-wise layers before the first Dense
  std::vector<QuantizedDense> layers;
  int64_t calibration_samples = 0;
  double calibration_percentile = 100.0;
  proto::SignedInputs signed_inputs = proto::U8_ZERO_POINT;

  int64_t output_size() const { return layers.back().output_size; }
};

struct QuantizeOptions {
  int64_t calibration_samples = 1024;     // > 0; the whole set when it is smaller
  double calibration_percentile = 100.0;  // in [50, 100]; 100 = min/max
  proto::SignedInputs signed_inputs = proto::U8_ZERO_POINT;
};
QuantizeOptions quantize_options_from(const proto::QuantizeConfig& config);

// The structure of `model` (names, sizes, activations, layout) with no numbers filled in: what
// quantize_model and load_quantized_model start from. Throws kConfig when the model has no Dense
// layer or its parameters are not float32.
QuantizedModel quantized_structure(const Model& model);

// Quantizes `model` (float32), calibrating on `calibration_data` normalized as the trainer does.
// Runs forward passes through the model's layers (inference mode): their parameters are
// unchanged, their activation buffers are reused. Throws kConfig for bad options or a dataset
// whose feature count is not model.input_size(), kData for an empty dataset or non-finite
// activations, kCheckpoint for non-finite weights.
QuantizedModel quantize_model(Model& model, const Dataset& calibration_data,
                              const Normalization& normalization, const QuantizeOptions& options);

}  // namespace dpt
