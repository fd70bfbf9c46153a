// The int8 model file: a QuantizedModel in an array file (core/array_file.h, so Fletcher32 and
// crc32 on every array and atomic writes), about 4x smaller than the fp32 weights file.
// Root attributes: format "dpt-int8-1", layout (Model::summary() of the source model),
// calibration_samples, calibration_percentile, signed_inputs, plus the caller's. Per Dense layer L:
//   int8/L/weight        int8    [out, in]  per-row symmetric codes
//   int8/L/weight_scale  float32 [out]
//   int8/L/bias          float32 [out]      (only when the layer has a bias)
//   int8/L/input         float32 [5]        min, max, scale, zero_point, signed (0 or 1)
// The activations are not stored: they come from the config's model, whose layout must match.
#pragma once

#include <map>
#include <string>

#include "core/model.h"
#include "core/quantize.h"

namespace dpt {

constexpr const char* kInt8Format = "dpt-int8-1";

// Writes `model` to `path` atomically with `attributes` as extra metadata. Throws kIo.
void save_quantized_model(const std::string& path, const QuantizedModel& model,
                          std::map<std::string, std::string> attributes = {});

// True when the file's format attribute says int8 model (reads only the attributes). Throws
// kCheckpoint for a missing or unreadable file.
bool is_int8_model_file(const std::string& path);

// Reads an int8 model file made from a model with the layout of `model` (the config's fp32
// model; only its structure is used). Throws kCheckpoint naming the file for: a missing, corrupt
// or truncated file, another format, another layout, a missing or misshapen array, extra arrays,
// and values no writer produces (non-positive scales, zero points out of range, min > 0 or
// max < 0).
QuantizedModel load_quantized_model(const std::string& path, const Model& model);

}  // namespace dpt
