// Files of named float32 arrays plus string metadata, in HDF5: the weights file written at the end
// of training (DIR/model.h5) and the base the checkpoint format builds on. Knows no optimizer.
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

struct Array {
  std::string name;  // slash-separated path, e.g. "params/dense0/weight"
  Shape shape;
  std::vector<float> values;  // numel(shape) values, row-major
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
// not HDF5, truncated, checksum mismatch, unsupported dtype, size over the cap.
ArrayFile read_array_file(const std::string& path);

}  // namespace dpt
