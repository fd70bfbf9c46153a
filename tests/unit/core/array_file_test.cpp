// Tests for core/array_file.h: bit-exact round trip with nested names, odd shapes and metadata,
// both checksums (a flipped byte; values rewritten behind the crc32's back), truncated and
// foreign files, and atomic writes that leave the previous file intact when they fail.
#include "core/array_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>

#include "core/hdf5_util.h"
#include "devices/error.h"

namespace dpt {
namespace {

class ArrayFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "array_file_test_XXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    path_ = dir_ + "/model.h5";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs read_array_file and returns the kCheckpoint message it throws.
  std::string read_error(const std::string& path) {
    try {
      read_array_file(path);
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::kCheckpoint) << error.what();
      return error.what();
    }
    ADD_FAILURE() << "read_array_file(" << path << ") did not throw";
    return "";
  }

  std::size_t files_in_dir() const {
    return std::distance(std::filesystem::directory_iterator(dir_), {});
  }

  std::string dir_;
  std::string path_;
};

// Distinct, non-repeating values: the weight's bytes occur once in the file.
std::vector<float> ramp(std::size_t n, float start) {
  std::vector<float> values(n);
  for (std::size_t i = 0; i < n; ++i) values[i] = start + 0.001f * i * i;
  return values;
}

ArrayFile sample_file() {
  ArrayFile file;
  std::vector<float> special = {-0.0f,
                                std::numeric_limits<float>::denorm_min(),
                                std::numeric_limits<float>::infinity(),
                                std::numeric_limits<float>::quiet_NaN(),
                                3.4e38f,
                                -1.5f};
  // Not in name order, so the file must keep the write order itself.
  file.arrays.push_back({"z_last", {2, 3}, special});
  file.arrays.push_back({"params/dense0/weight", {4, 5}, ramp(20, 1.0f)});
  file.arrays.push_back({"params/dense0/bias", {5}, ramp(5, -2.0f)});
  file.arrays.push_back({"optimizer/step", {}, {42.0f}});
  file.arrays.push_back({"empty", {0, 3}, {}});
  file.attributes["config"] = std::string(100000, 'c');  // beyond HDF5's 64 KiB compact limit
  file.attributes["empty"] = "";
  file.attributes["text"] = "héllo\nworld";
  return file;
}

void expect_bit_equal(const ArrayFile& expected, const ArrayFile& actual) {
  ASSERT_EQ(expected.arrays.size(), actual.arrays.size());
  for (std::size_t i = 0; i < expected.arrays.size(); ++i) {
    const Array& a = expected.arrays[i];
    const Array& b = actual.arrays[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.shape, b.shape) << a.name;
    ASSERT_EQ(a.values.size(), b.values.size()) << a.name;
    if (a.values.empty()) continue;  // memcmp must not see the null data() of empty vectors
    EXPECT_EQ(std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)), 0)
        << a.name;
  }
  EXPECT_EQ(expected.attributes, actual.attributes);
}

TEST_F(ArrayFileTest, RoundTripIsBitExact) {
  const ArrayFile written = sample_file();
  write_array_file(path_, written);
  const ArrayFile read = read_array_file(path_);
  expect_bit_equal(written, read);
  ASSERT_NE(read.find("params/dense0/bias"), nullptr);
  EXPECT_EQ(read.find("params/dense0/bias")->values, ramp(5, -2.0f));
  EXPECT_EQ(read.find("params/dense0"), nullptr);  // a group, not an array
  EXPECT_EQ(read.find("missing"), nullptr);
  EXPECT_EQ(files_in_dir(), 1u);
}

TEST_F(ArrayFileTest, OverwriteReplacesTheFile) {
  write_array_file(path_, sample_file());
  ArrayFile second;
  second.arrays.push_back({"w", {2}, {1.0f, 2.0f}});
  write_array_file(path_, second);
  expect_bit_equal(second, read_array_file(path_));
  EXPECT_EQ(files_in_dir(), 1u);
}

TEST_F(ArrayFileTest, Int8ArraysRoundTripOnlyWhenAllowed) {
  ArrayFile file;
  Array codes{"int8/w", {2, 3}, {}, ArrayType::kI8, {-127, -1, 0, 1, 64, 127}};
  file.arrays.push_back(codes);
  file.arrays.push_back({"int8/scale", {2}, {0.5f, 2.0f}});
  file.attributes["format"] = "test";
  write_array_file(path_, file);
  const ArrayFile read = read_array_file(path_, /*allow_int8=*/true);
  ASSERT_EQ(read.arrays.size(), 2u);
  EXPECT_EQ(read.arrays[0].type, ArrayType::kI8);
  EXPECT_EQ(read.arrays[0].int8_values, codes.int8_values);
  EXPECT_TRUE(read.arrays[0].values.empty());
  EXPECT_EQ(read.arrays[1].values, (std::vector<float>{0.5f, 2.0f}));
  EXPECT_EQ(read_array_file_attributes(path_).at("format"), "test");
  // Float-only readers (weights, checkpoints) refuse it.
  EXPECT_EQ(read_error(path_), path_ + ": int8/w is int8, want float32");
}

// Finds `needle` in the file, which must occur exactly once, and flips one byte inside it.
void flip_byte_in(const std::string& path, const std::vector<float>& values) {
  const auto* begin = reinterpret_cast<const char*>(values.data());
  const std::string needle(begin, begin + values.size() * sizeof(float));
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(file)), {});
  const std::size_t at = bytes.find(needle);
  ASSERT_NE(at, std::string::npos) << "values not found in " << path;
  ASSERT_EQ(bytes.find(needle, at + 1), std::string::npos);
  const std::size_t offset = at + needle.size() / 2;
  file.seekp(offset);
  file.put(static_cast<char>(bytes[offset] ^ 0x01));
  ASSERT_TRUE(file.good());
}

TEST_F(ArrayFileTest, FlippedByteIsACheckpointError) {
  write_array_file(path_, sample_file());
  flip_byte_in(path_, ramp(20, 1.0f));
  EXPECT_EQ(read_error(path_), path_ + ": checksum mismatch in params/dense0/weight (Fletcher32)");
}

TEST_F(ArrayFileTest, ValuesRewrittenBehindTheCrcAreCaught) {
  write_array_file(path_, sample_file());
  {
    h5::Handle file(H5Fopen(path_.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    h5::Handle dataset(H5Dopen2(file.get(), "params/dense0/bias", H5P_DEFAULT));
    const std::vector<float> other = ramp(5, 7.0f);
    ASSERT_GE(
        H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, other.data()), 0);
  }
  const std::string message = read_error(path_);
  EXPECT_EQ(message.find(path_ + ": checksum mismatch in params/dense0/bias (crc32 "), 0u)
      << message;
}

TEST_F(ArrayFileTest, TruncatedMissingAndForeignFiles) {
  write_array_file(path_, sample_file());
  std::filesystem::resize_file(path_, std::filesystem::file_size(path_) / 2);
  std::string message = read_error(path_);
  EXPECT_EQ(message.find(path_ + ": cannot open: truncated file"), 0u) << message;

  const std::string missing = dir_ + "/absent.h5";
  EXPECT_EQ(read_error(missing), missing + ": cannot open: No such file or directory");
  const std::string text = dir_ + "/notes.h5";
  std::ofstream(text) << "weights\n";
  EXPECT_EQ(read_error(text), text + ": not an HDF5 file");
}

TEST_F(ArrayFileTest, RefusesOtherTypesLinksAndMissingChecksums) {
  const auto make = [&](const std::string& name, const std::function<void(hid_t)>& fill) {
    const std::string path = dir_ + "/" + name;
    h5::Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    fill(file.get());
    return path;
  };
  const double doubles[2] = {1.0, 2.0};
  std::string path = make("f64.h5", [&](hid_t file) {
    h5::write_checked_dataset(file, "w", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {2}, doubles, "t");
  });
  EXPECT_EQ(read_error(path), path + ": w is float64, want float32");

  const float floats[2] = {1.0f, 2.0f};
  path = make("nocrc.h5", [&](hid_t file) {
    h5::Handle set =
        h5::write_checked_dataset(file, "a/w", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {2}, floats, "t");
    h5::write_int64_attribute(set.get(), "index", 0, "t");
  });
  EXPECT_EQ(read_error(path), path + ": a/w: missing attribute crc32");

  path = make("link.h5", [&](hid_t file) {
    ASSERT_GE(H5Lcreate_external("elsewhere.h5", "/w", file, "w", H5P_DEFAULT, H5P_DEFAULT), 0);
  });
  EXPECT_EQ(read_error(path), path + ": w is a soft or external link (refused)");

  path = make("attr.h5", [&](hid_t file) { h5::write_int64_attribute(file, "epoch", 3, "t"); });
  EXPECT_EQ(read_error(path), path + ": attribute epoch is int64, want a string");
}

TEST_F(ArrayFileTest, WriteIntoMissingOrTakenPathFailsCleanly) {
  const ArrayFile file = sample_file();
  const std::string missing = dir_ + "/no/such/model.h5";
  try {
    write_array_file(missing, file);
    FAIL() << "wrote into a missing directory";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kIo);
    EXPECT_EQ(std::string(error.what()), missing + ": cannot create temporary file " + missing +
                                             ".tmp." + std::to_string(getpid()) +
                                             ": No such file or directory");
  }
  const std::string taken = dir_ + "/taken";
  std::filesystem::create_directory(taken);
  try {
    write_array_file(taken, file);
    FAIL() << "renamed over a directory";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kIo);
    EXPECT_EQ(std::string(error.what()).find(taken + ": cannot rename"), 0u) << error.what();
  }
  EXPECT_EQ(files_in_dir(), 1u);  // the directory "taken", no temporaries
}

TEST_F(ArrayFileTest, FailedOverwriteKeepsPreviousFile) {
  // RLIMIT_FSIZE makes write() fail with EFBIG even for root, like a full disk.
  const ArrayFile previous = sample_file();
  write_array_file(path_, previous);
  ArrayFile big;
  big.arrays.push_back({"big", {512, 1024}, ramp(512 * 1024, 0.5f)});
  rlimit old_limit{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit small = old_limit;
  small.rlim_cur = 256 << 10;
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  ErrorKind kind = ErrorKind::kInternal;
  try {
    write_array_file(path_, big);
  } catch (const Error& error) {
    kind = error.kind();
    message = error.what();
  }
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(kind, ErrorKind::kIo);
  EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);  // nothing left half-closed
  EXPECT_EQ(message.find(path_ + ": cannot write " + path_ + ".tmp."), 0u) << message;
  EXPECT_NE(message.find("File too large"), std::string::npos) << message;
  expect_bit_equal(previous, read_array_file(path_));
  EXPECT_EQ(files_in_dir(), 1u);
}

TEST_F(ArrayFileTest, InvalidNamesAreRejectedBeforeWriting) {
  for (const std::vector<std::string>& names : {std::vector<std::string>{"a//b"},
                                                {"/a"},
                                                {"a/"},
                                                {""},
                                                {"a/../b"},
                                                {"x", "x"},
                                                {"a", "a/b"}}) {
    ArrayFile file;
    for (const std::string& name : names) file.arrays.push_back({name, {1}, {1.0f}});
    EXPECT_THROW(write_array_file(path_, file), Error) << names.back();
  }
  ArrayFile wrong_size;
  wrong_size.arrays.push_back({"w", {2, 2}, {1.0f}});
  EXPECT_THROW(write_array_file(path_, wrong_size), Error);
  EXPECT_EQ(files_in_dir(), 0u);
}

}  // namespace
}  // namespace dpt
