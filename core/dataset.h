// Datasets in dpt's HDF5 layout, held in memory, and batch assembly.
// Layout (README "Dataset layout"): /inputs uint8 or float32 [N, d1, d2, ...], /labels int32 [N],
// root attributes num_classes (int64) and format ("dpt-dataset-1"). Both datasets are chunked
// with the Fletcher32 checksum filter, so a flipped byte fails the read instead of training on it.
// Files are validated before anything is allocated: dtypes, shapes, size caps, label range.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace dpt {

constexpr const char* kDatasetFormat = "dpt-dataset-1";
// Refuse datasets whose inputs exceed this many bytes (hostile or wrong files).
constexpr int64_t kMaxDatasetBytes = int64_t{16} << 30;

struct Dataset {
  std::string path;
  int64_t size = 0;          // number of samples N
  Shape sample_shape;        // per-sample dims, e.g. [28, 28]
  int64_t feature_size = 0;  // product of sample_shape
  int64_t num_classes = 0;
  // Exactly one of these holds N * feature_size values, row-major.
  std::vector<uint8_t> inputs_u8;
  std::vector<float> inputs_f32;
  std::vector<int32_t> labels;  // N values in [0, num_classes)
};

// How raw inputs become model inputs: (raw * scale - mean) / std.
struct Normalization {
  float scale = 1.0f;
  float mean = 0.0f;
  float std = 1.0f;
};

// Loads and validates a dataset file. Throws dpt::Error(kData) naming the file and the problem:
// missing or unreadable file, not HDF5, missing dataset or attribute, wrong dtype or rank,
// N mismatch between inputs and labels, sizes over the cap, a label outside [0, num_classes)
// (naming the record index and value), a checksum failure.
Dataset load_dataset(const std::string& path);

// Writes a dataset file (uint8 inputs). `shape` is [N, d1, ...]; labels has N entries in
// [0, num_classes). Throws kIo naming the path on any write failure; never leaves a partial file
// under `path` (writes a temporary and renames).
void write_dataset(const std::string& path, const std::vector<uint8_t>& inputs, const Shape& shape,
                   const std::vector<int32_t>& labels, int64_t num_classes);

// Copies samples indices[0..n) into inputs ([>= n, feature_size], float32 or float64, first n
// rows written) with normalization applied, and their labels into labels[0..n).
void gather_batch(const Dataset& dataset, const int64_t* indices, int64_t n,
                  const Normalization& normalization, Tensor& inputs, int32_t* labels);

}  // namespace dpt
