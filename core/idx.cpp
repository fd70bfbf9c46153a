// IDX reading through zlib (gzopen reads gzip and plain files alike) and the IDX -> HDF5
// dataset import. The header is validated before anything is allocated, and the data buffer
// grows only as bytes actually arrive, so a lying header cannot trigger a huge allocation.
#include "core/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "core/dataset.h"
#include "devices/error.h"

namespace dpt {
namespace {

constexpr int kUnsignedByte = 0x08;
constexpr int kMaxIdxRank = 4;
// Read in pieces: gzread takes an unsigned count, and growing piecewise bounds the memory a
// truncated file can make us allocate.
constexpr std::size_t kReadPiece = std::size_t{64} << 20;

struct GzCloser {
  void operator()(gzFile file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Reads up to `bytes` into `out`; returns the count read. Throws on a zlib or system error.
std::size_t read_some(gzFile file, void* out, std::size_t bytes, const std::string& path) {
  const int got = gzread(file, out, static_cast<unsigned>(bytes));
  int code = Z_OK;
  const char* message = gzerror(file, &code);
  // Z_BUF_ERROR is "unexpected end of file" in a gzip stream: report it as truncation.
  if (code == Z_BUF_ERROR) {
    DPT_THROW(ErrorKind::kData) << path << ": truncated (" << message << ")";
  }
  if (got < 0 || (code != Z_OK && code != Z_STREAM_END)) {
    const std::string reason = code == Z_ERRNO ? std::strerror(errno) : message;
    DPT_THROW(ErrorKind::kData) << path << ": read error: " << reason;
  }
  return static_cast<std::size_t>(got);
}

uint32_t big_endian_u32(const unsigned char* bytes) {
  return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
         uint32_t{bytes[3]};
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  errno = 0;
  GzFile file(gzopen(path.c_str(), "rb"));
  if (file == nullptr) {
    const int error = errno;
    DPT_THROW(ErrorKind::kData) << path << ": cannot open: "
                                << (error != 0 ? std::strerror(error) : "out of memory");
  }
  DPT_CHECK(gzbuffer(file.get(), 1 << 20) == 0) << path << ": gzbuffer failed";

  unsigned char magic[4] = {};
  DPT_CHECK_AS(ErrorKind::kData, read_some(file.get(), magic, 4, path) == 4)
      << path << ": truncated IDX header";
  DPT_CHECK_AS(ErrorKind::kData, magic[0] == 0 && magic[1] == 0)
      << path << ": bad magic number 0x" << std::hex << big_endian_u32(magic)
      << " (not an IDX file)";
  DPT_CHECK_AS(ErrorKind::kData, magic[2] == kUnsignedByte)
      << path << ": unsupported IDX type code 0x" << std::hex << int{magic[2]}
      << " (only 0x08, unsigned byte)";
  const int rank = magic[3];
  DPT_CHECK_AS(ErrorKind::kData, rank >= 1 && rank <= kMaxIdxRank)
      << path << ": IDX rank " << rank << " is outside [1, " << kMaxIdxRank << "]";

  unsigned char dims[4 * kMaxIdxRank] = {};
  const std::size_t dims_bytes = 4 * static_cast<std::size_t>(rank);
  DPT_CHECK_AS(ErrorKind::kData, read_some(file.get(), dims, dims_bytes, path) == dims_bytes)
      << path << ": truncated IDX header";
  IdxArray array;
  int64_t bytes = 1;
  for (int axis = 0; axis < rank; ++axis) {
    const int64_t dim = big_endian_u32(dims + 4 * axis);
    DPT_CHECK_AS(ErrorKind::kData, dim > 0) << path << ": IDX dimension " << axis << " is 0";
    array.shape.push_back(dim);
    // Each dim < 2^32 and bytes <= 2^34 before this check, so the product cannot overflow.
    bytes *= dim;
    DPT_CHECK_AS(ErrorKind::kData, bytes <= kMaxDatasetBytes)
        << path << ": IDX shape " << shape_string(array.shape) << "... exceeds the cap of "
        << kMaxDatasetBytes << " bytes";
  }

  const std::size_t total = static_cast<std::size_t>(bytes);
  std::size_t have = 0;
  while (have < total) {
    const std::size_t piece = std::min(kReadPiece, total - have);
    array.data.resize(have + piece);
    const std::size_t got = read_some(file.get(), array.data.data() + have, piece, path);
    have += got;
    DPT_CHECK_AS(ErrorKind::kData, got == piece)
        << path << ": truncated: shape " << shape_string(array.shape) << " needs " << total
        << " data bytes, the file has " << have;
  }
  unsigned char extra = 0;
  DPT_CHECK_AS(ErrorKind::kData, read_some(file.get(), &extra, 1, path) == 0)
      << path << ": trailing bytes after the " << total << " data bytes of shape "
      << shape_string(array.shape);
  return array;
}

int64_t import_idx(const std::string& images_path, const std::string& labels_path,
                   const std::string& out_path, int64_t num_classes) {
  DPT_CHECK_AS(ErrorKind::kConfig, num_classes >= 0 && num_classes <= INT32_MAX)
      << "import: num_classes = " << num_classes << " is negative or too large (0: infer)";
  const IdxArray images = read_idx(images_path);
  const IdxArray labels = read_idx(labels_path);
  DPT_CHECK_AS(ErrorKind::kData, images.shape.size() >= 2)
      << images_path << ": images have shape " << shape_string(images.shape)
      << ", want [N, d1, ...]";
  DPT_CHECK_AS(ErrorKind::kData, labels.shape.size() == 1)
      << labels_path << ": labels have shape " << shape_string(labels.shape) << ", want [N]";
  const int64_t size = images.shape[0];
  DPT_CHECK_AS(ErrorKind::kData, labels.shape[0] == size)
      << images_path << " has " << size << " samples but " << labels_path << " has "
      << labels.shape[0];

  if (num_classes == 0) {
    num_classes = *std::max_element(labels.data.begin(), labels.data.end()) + 1;
  }
  std::vector<int32_t> label_values(labels.data.size());
  for (std::size_t i = 0; i < labels.data.size(); ++i) {
    const int32_t label = labels.data[i];
    DPT_CHECK_AS(ErrorKind::kData, label < num_classes)
        << labels_path << ": label[" << i << "] = " << label << " is outside [0, " << num_classes
        << ")";
    label_values[i] = label;
  }
  write_dataset(out_path, images.data, images.shape, label_values, num_classes);
  return size;
}

}  // namespace dpt
