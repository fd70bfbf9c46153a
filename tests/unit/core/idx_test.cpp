// Tests for core/idx.h: IDX files written here byte by byte (plain and gzip through zlib), every
// header and size error, and the IDX -> HDF5 import checked through load_dataset.
#include "core/idx.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "core/dataset.h"
#include "devices/error.h"

namespace dpt {
namespace {

using Bytes = std::vector<uint8_t>;

// The IDX encoding of a uint8 array: 0, 0, type, rank, big-endian uint32 dims, data.
Bytes idx_bytes(const std::vector<uint32_t>& dims, const Bytes& data, uint8_t type = 0x08) {
  Bytes bytes = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t dim : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back((dim >> shift) & 0xff);
  }
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

Bytes pattern(std::size_t n) {
  Bytes data(n);
  for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<uint8_t>((i * 37 + 11) % 256);
  return data;
}

class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "idx_test_XXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write_plain(const std::string& name, const Bytes& bytes) {
    const std::string path = dir_ + "/" + name;
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    EXPECT_TRUE(out.good());
    return path;
  }

  std::string write_gzip(const std::string& name, const Bytes& bytes) {
    const std::string path = dir_ + "/" + name;
    gzFile file = gzopen(path.c_str(), "wb");
    EXPECT_NE(file, nullptr);
    EXPECT_EQ(gzwrite(file, bytes.data(), bytes.size()), static_cast<int>(bytes.size()));
    EXPECT_EQ(gzclose(file), Z_OK);
    return path;
  }

  // Runs read_idx and returns the kData message it throws.
  std::string read_error(const std::string& path) {
    try {
      read_idx(path);
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::kData) << error.what();
      return error.what();
    }
    ADD_FAILURE() << "read_idx(" << path << ") did not throw";
    return "";
  }

  std::string dir_;
};

TEST_F(IdxTest, PlainRoundTrip) {
  const Bytes data = pattern(3 * 2 * 4);
  const IdxArray array = read_idx(write_plain("a.idx", idx_bytes({3, 2, 4}, data)));
  EXPECT_EQ(array.shape, (Shape{3, 2, 4}));
  EXPECT_EQ(array.data, data);
}

TEST_F(IdxTest, GzipRoundTrip) {
  const Bytes data = pattern(70000);  // several gzip blocks
  const std::string path = write_gzip("a.idx.gz", idx_bytes({70000}, data));
  std::ifstream in(path, std::ios::binary);
  ASSERT_EQ(in.get(), 0x1f);  // really compressed, not a plain copy
  ASSERT_EQ(in.get(), 0x8b);
  const IdxArray array = read_idx(path);
  EXPECT_EQ(array.shape, (Shape{70000}));
  EXPECT_EQ(array.data, data);
}

TEST_F(IdxTest, HeaderErrors) {
  Bytes bad_magic = idx_bytes({2}, {1, 2});
  bad_magic[1] = 0x01;
  std::string path = write_plain("magic.idx", bad_magic);
  std::string message = read_error(path);
  EXPECT_NE(message.find(path + ": bad magic number 0x10801"), std::string::npos) << message;

  path = write_plain("type.idx", idx_bytes({2}, {1, 2, 3, 4, 5, 6, 7, 8}, 0x0d));
  message = read_error(path);
  EXPECT_NE(message.find(path + ": unsupported IDX type code 0xd"), std::string::npos) << message;

  path = write_plain("rank0.idx", idx_bytes({}, {}));
  message = read_error(path);
  EXPECT_NE(message.find(path + ": IDX rank 0 is outside [1, 4]"), std::string::npos) << message;

  path = write_plain("rank5.idx", idx_bytes({1, 1, 1, 1, 1}, {7}));
  message = read_error(path);
  EXPECT_NE(message.find(path + ": IDX rank 5"), std::string::npos) << message;

  path = write_plain("dim0.idx", idx_bytes({3, 0}, {}));
  message = read_error(path);
  EXPECT_NE(message.find(path + ": IDX dimension 1 is 0"), std::string::npos) << message;

  path = write_plain("short_header.idx", {0, 0, 8, 2, 0, 0, 0, 3, 0});
  message = read_error(path);
  EXPECT_NE(message.find(path + ": truncated IDX header"), std::string::npos) << message;
}

TEST_F(IdxTest, SizeOverCapRefusedBeforeReading) {
  // 65536 * 65536 * 5 bytes = 20 GiB > kMaxDatasetBytes; the file itself holds 4 bytes.
  const std::string path = write_plain("huge.idx", idx_bytes({65536, 65536, 5}, {1, 2, 3, 4}));
  const std::string message = read_error(path);
  EXPECT_NE(message.find(path + ": IDX shape"), std::string::npos) << message;
  EXPECT_NE(message.find("exceeds the cap"), std::string::npos) << message;
}

TEST_F(IdxTest, TruncatedData) {
  Bytes bytes = idx_bytes({4, 3}, pattern(12));
  bytes.pop_back();
  std::string path = write_plain("short.idx", bytes);
  std::string message = read_error(path);
  EXPECT_NE(message.find(path + ": truncated"), std::string::npos) << message;
  EXPECT_NE(message.find("needs 12 data bytes, the file has 11"), std::string::npos) << message;

  path = write_gzip("short.idx.gz", bytes);
  message = read_error(path);
  EXPECT_NE(message.find(path + ": truncated"), std::string::npos) << message;
}

TEST_F(IdxTest, TruncatedGzipStream) {
  const std::string full = write_gzip("full.idx.gz", idx_bytes({5000}, pattern(5000)));
  const auto size = std::filesystem::file_size(full);
  std::filesystem::resize_file(full, size - 12);  // cut the deflate stream and its trailer
  const std::string message = read_error(full);
  EXPECT_NE(message.find(full + ": truncated"), std::string::npos) << message;
}

TEST_F(IdxTest, TrailingBytes) {
  Bytes bytes = idx_bytes({4, 3}, pattern(12));
  bytes.push_back(0);
  std::string path = write_plain("long.idx", bytes);
  std::string message = read_error(path);
  EXPECT_NE(message.find(path + ": trailing bytes after the 12 data bytes"), std::string::npos)
      << message;
  path = write_gzip("long.idx.gz", bytes);
  message = read_error(path);
  EXPECT_NE(message.find(path + ": trailing bytes"), std::string::npos) << message;
}

TEST_F(IdxTest, MissingFile) {
  const std::string path = dir_ + "/absent.idx";
  const std::string message = read_error(path);
  EXPECT_NE(message.find(path + ": cannot open: No such file or directory"), std::string::npos)
      << message;
}

TEST_F(IdxTest, ImportRoundTripInfersNumClasses) {
  const Bytes pixels = pattern(5 * 3 * 2);
  const Bytes labels = {0, 2, 1, 2, 0};
  const std::string images_path = write_gzip("images.gz", idx_bytes({5, 3, 2}, pixels));
  const std::string labels_path = write_plain("labels.idx", idx_bytes({5}, labels));
  const std::string out = dir_ + "/train.h5";
  EXPECT_EQ(import_idx(images_path, labels_path, out, 0), 5);

  const Dataset dataset = load_dataset(out);
  EXPECT_EQ(dataset.path, out);
  EXPECT_EQ(dataset.size, 5);
  EXPECT_EQ(dataset.sample_shape, (Shape{3, 2}));
  EXPECT_EQ(dataset.feature_size, 6);
  EXPECT_EQ(dataset.num_classes, 3);  // max label 2, plus one
  EXPECT_EQ(dataset.inputs_u8, pixels);
  EXPECT_TRUE(dataset.inputs_f32.empty());
  EXPECT_EQ(dataset.labels, (std::vector<int32_t>{0, 2, 1, 2, 0}));
}

TEST_F(IdxTest, ImportKeepsGivenNumClasses) {
  const std::string images_path = write_plain("images.idx", idx_bytes({2, 2}, {9, 8, 7, 6}));
  const std::string labels_path = write_plain("labels.idx", idx_bytes({2}, {1, 0}));
  const std::string out = dir_ + "/train.h5";
  EXPECT_EQ(import_idx(images_path, labels_path, out, 10), 2);
  const Dataset dataset = load_dataset(out);
  EXPECT_EQ(dataset.num_classes, 10);
  EXPECT_EQ(dataset.inputs_u8, (Bytes{9, 8, 7, 6}));
  EXPECT_EQ(dataset.labels, (std::vector<int32_t>{1, 0}));
}

TEST_F(IdxTest, ImportRejectsLabelOutOfRange) {
  const std::string images_path = write_plain("images.idx", idx_bytes({5, 2}, pattern(10)));
  const std::string labels_path = write_plain("labels.idx", idx_bytes({5}, {0, 2, 1, 5, 0}));
  const std::string out = dir_ + "/train.h5";
  try {
    import_idx(images_path, labels_path, out, 3);
    FAIL() << "import_idx accepted label 5 with num_classes 3";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kData);
    EXPECT_EQ(std::string(error.what()), labels_path + ": label[3] = 5 is outside [0, 3)");
  }
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(IdxTest, ImportRejectsMismatchedCountsAndShapes) {
  const std::string images_path = write_plain("images.idx", idx_bytes({3, 2}, pattern(6)));
  const std::string labels_path = write_plain("labels.idx", idx_bytes({2}, {0, 1}));
  try {
    import_idx(images_path, labels_path, dir_ + "/out.h5", 0);
    FAIL() << "import_idx accepted 3 images with 2 labels";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kData);
    EXPECT_EQ(std::string(error.what()),
              images_path + " has 3 samples but " + labels_path + " has 2");
  }
  const std::string flat = write_plain("flat.idx", idx_bytes({2}, {1, 2}));
  try {
    import_idx(flat, labels_path, dir_ + "/out.h5", 0);
    FAIL() << "import_idx accepted rank-1 images";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kData);
    EXPECT_NE(std::string(error.what()).find(flat + ": images have shape [2]"), std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace dpt
