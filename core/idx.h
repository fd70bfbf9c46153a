// Reading IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or plain, and importing
// an images + labels pair into dpt's HDF5 dataset layout (core/dataset.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace dpt {

// An IDX array of unsigned bytes (type code 0x08, the only type MNIST-style files use).
struct IdxArray {
  Shape shape;                // e.g. [60000, 28, 28] or [60000]
  std::vector<uint8_t> data;  // numel(shape) bytes, row-major
};

// Reads `path` (gzip or plain; detected from the content). Throws dpt::Error(kData) naming the
// file for: missing/unreadable file, bad magic, unsupported type code, rank 0 or > 4, a dimension
// of 0, a size over kMaxDatasetBytes, truncated data or trailing bytes.
IdxArray read_idx(const std::string& path);

// Reads images and labels, checks they describe the same number of samples and that labels are
// < num_classes (or infers num_classes = max label + 1 when num_classes is 0), then writes
// `out_path` with write_dataset(). Returns the number of samples written.
int64_t import_idx(const std::string& images_path, const std::string& labels_path,
                   const std::string& out_path, int64_t num_classes);

}  // namespace dpt
