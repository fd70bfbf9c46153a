// Files of named float32 (or int8) arrays plus string metadata, in HDF5: the weights file written
// at the end of training (DIR/model.h5), the base the checkpoint format builds on, and the int8
// model file (core/int8_file.h). Knows no optimizer.
// Array "a/b/c" is dataset c in group /a/b, so h5py and h5dump show the structure. Each dataset
// is chunked with the Fletcher32 filter and carries a "crc32" attribute over its bytes; reads
// verify both. Writes are atomic: a temporary in the same directory, fsync, rename, fsync of the
// directory; a failed write leaves any previous file under `path` untouched.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace dpt {

// Refuse arrays whose values exceed this many bytes (hostile or wrong files).
constexpr int64_t kMaxArrayBytes = int64_t{16} << 30;

// Element type of an array in the file: float32 (weights, checkpoints) or int8 (quantized weights).
enum class ArrayType { kF32, kI8 };

struct Array {
  std::string name;  // slash-separated path, e.g. "params/dense0/weight"
  Shape shape;
  std::vector<float> values;  // kF32: numel(shape) values, row-major; kI8: empty
  ArrayType type = ArrayType::kF32;
  std::vector<int8_t> int8_values = {};  // kI8: numel(shape) values, row-major; kF32: empty
};

struct ArrayFile {
  std::vector<Array> arrays;                      // in file order
  std::map<std::string, std::string> attributes;  // root string attributes (metadata)
  const Array* find(const std::string& name) const;
};

// Throws dpt::Error(kIo) naming the path and errno/HDF5 message on any failure (disk full,
// unwritable directory); the previous file under `path`, if any, stays as it was.
void write_array_file(const std::string& path, const ArrayFile& file);

// Throws dpt::Error(kCheckpoint) naming the path and, where it applies, the array: missing file,
// not HDF5, truncated, checksum mismatch, unsupported dtype, size over the cap. int8 arrays are
// refused ("want float32") unless `allow_int8`.
ArrayFile read_array_file(const std::string& path, bool allow_int8 = false);

// Only the root string attributes (e.g. "format"), without reading any array. Throws as above.
std::map<std::string, std::string> read_array_file_attributes(const std::string& path);

}  // namespace dpt
