// Tests for core/dataset.h: write/load round trip, files as users' tools write them (float32
// inputs, other label types), every load error with its message, a flipped byte caught by
// Fletcher32, atomic writes, and gather_batch against a reference loop in float and double.
#include "core/dataset.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>

#include "core/hdf5_util.h"
#include "devices/cpu_device.h"
#include "devices/error.h"

namespace dpt {
namespace {

void add_dataset(hid_t file, const char* name, hid_t type, hid_t memory_type, const Shape& shape,
                 const void* data) {
  h5::write_checked_dataset(file, name, type, memory_type, shape, data, "test");
}

// A valid file with 4 samples of 3 values, except what `skip` names or `inputs_type` changes.
void add_standard(hid_t file, const std::string& skip = "", hid_t inputs_type = H5T_STD_U8LE) {
  const uint8_t inputs[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  const int32_t labels[4] = {0, 1, 2, 1};
  if (skip != "inputs") add_dataset(file, "inputs", inputs_type, H5T_NATIVE_UINT8, {4, 3}, inputs);
  if (skip != "labels") add_dataset(file, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, {4}, labels);
  if (skip != "num_classes") h5::write_int64_attribute(file, "num_classes", 3, "test");
}

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "dataset_test_XXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes an HDF5 file directly, to build files dpt itself would never write.
  std::string write_raw(const std::string& name, const std::function<void(hid_t)>& fill) {
    const std::string path = dir_ + "/" + name;
    h5::Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    EXPECT_TRUE(file.valid());
    fill(file.get());
    EXPECT_GE(file.close(), 0);
    return path;
  }

  // The valid file of add_standard with its dataset `name` replaced by `data` (stored as `type`,
  // read from `memory_type`, of `shape`).
  std::string write_replacing(const std::string& file_name, const char* name, hid_t type,
                              hid_t memory_type, const Shape& shape, const void* data) {
    return write_raw(file_name, [&](hid_t file) {
      add_standard(file, name);
      add_dataset(file, name, type, memory_type, shape, data);
    });
  }

  // Runs load_dataset and returns the kData message it throws.
  std::string load_error(const std::string& path) {
    try {
      load_dataset(path);
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::kData) << error.what();
      return error.what();
    }
    ADD_FAILURE() << "load_dataset(" << path << ") did not throw";
    return "";
  }

  std::string dir_;
};

TEST_F(DatasetTest, WriteLoadRoundTrip) {
  const std::string path = dir_ + "/d.h5";
  std::vector<uint8_t> inputs(3 * 2 * 5);
  for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i] = static_cast<uint8_t>(i * 9);
  write_dataset(path, inputs, {3, 2, 5}, {4, 0, 2}, 5);
  const Dataset dataset = load_dataset(path);
  EXPECT_EQ(dataset.size, 3);
  EXPECT_EQ(dataset.sample_shape, (Shape{2, 5}));
  EXPECT_EQ(dataset.feature_size, 10);
  EXPECT_EQ(dataset.num_classes, 5);
  EXPECT_EQ(dataset.inputs_u8, inputs);
  EXPECT_EQ(dataset.labels, (std::vector<int32_t>{4, 0, 2}));
  // Overwriting replaces the file and leaves no temporary behind.
  write_dataset(path, std::vector<uint8_t>(2 * 2, 7), {2, 2}, {1, 1}, 2);
  EXPECT_EQ(load_dataset(path).inputs_u8, (std::vector<uint8_t>{7, 7, 7, 7}));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_), {}), 1);
}

TEST_F(DatasetTest, LoadsFilesFromOtherTools) {
  // float32 inputs, int64 labels, an int32 num_classes attribute and, as h5py writes strings, a
  // variable-length UTF-8 format attribute.
  const std::string path = write_raw("f.h5", [](hid_t file) {
    const float inputs[4] = {0.5f, -1.25f, 3.0f, 1e-3f};
    const int64_t labels[2] = {6, 0};
    add_dataset(file, "inputs", H5T_IEEE_F32BE, H5T_NATIVE_FLOAT, {2, 2}, inputs);
    add_dataset(file, "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, {2}, labels);
    const int32_t num_classes = 7;
    h5::Handle space(H5Screate(H5S_SCALAR));
    h5::Handle attribute(
        H5Acreate2(file, "num_classes", H5T_STD_I32BE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
    ASSERT_GE(H5Awrite(attribute.get(), H5T_NATIVE_INT32, &num_classes), 0);
    h5::Handle string_type(H5Tcopy(H5T_C_S1));
    ASSERT_GE(H5Tset_size(string_type.get(), H5T_VARIABLE), 0);
    ASSERT_GE(H5Tset_cset(string_type.get(), H5T_CSET_UTF8), 0);
    h5::Handle format(
        H5Acreate2(file, "format", string_type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
    const char* text = kDatasetFormat;
    ASSERT_GE(H5Awrite(format.get(), string_type.get(), &text), 0);
  });
  const Dataset dataset = load_dataset(path);
  EXPECT_EQ(dataset.num_classes, 7);
  EXPECT_TRUE(dataset.inputs_u8.empty());
  EXPECT_EQ(dataset.inputs_f32, (std::vector<float>{0.5f, -1.25f, 3.0f, 1e-3f}));
  EXPECT_EQ(dataset.labels, (std::vector<int32_t>{6, 0}));

  const uint8_t labels[4] = {2, 2, 0, 1};
  const std::string u8_labels =
      write_replacing("u.h5", "labels", H5T_STD_U8LE, H5T_NATIVE_UINT8, {4}, labels);
  EXPECT_EQ(load_dataset(u8_labels).labels, (std::vector<int32_t>{2, 2, 0, 1}));
}

TEST_F(DatasetTest, MissingAndNonHdf5Files) {
  const std::string missing = dir_ + "/absent.h5";
  EXPECT_EQ(load_error(missing), missing + ": cannot open: No such file or directory");
  const std::string text = dir_ + "/text.h5";
  std::ofstream(text) << "inputs,labels\n1,2\n";
  EXPECT_EQ(load_error(text), text + ": not an HDF5 file");
  EXPECT_EQ(load_error(dir_), dir_ + ": not a regular file");
}

TEST_F(DatasetTest, MissingDatasetsAndAttributes) {
  std::string path = write_raw("a.h5", [](hid_t file) { add_standard(file, "labels"); });
  EXPECT_EQ(load_error(path), path + ": missing dataset /labels");
  path = write_raw("b.h5", [](hid_t file) { add_standard(file, "inputs"); });
  EXPECT_EQ(load_error(path), path + ": missing dataset /inputs");
  path = write_raw("c.h5", [](hid_t file) { add_standard(file, "num_classes"); });
  EXPECT_EQ(load_error(path), path + ": missing attribute num_classes");
  path = write_raw("d.h5", [](hid_t file) {
    add_standard(file);
    h5::write_string_attribute(file, "format", "something-else", "test");
  });
  EXPECT_EQ(load_error(path),
            path + ": attribute format = \"something-else\", want \"dpt-dataset-1\"");
  path = write_raw("e.h5", [](hid_t file) {
    add_standard(file, "num_classes");
    h5::write_int64_attribute(file, "num_classes", 0, "test");
  });
  EXPECT_EQ(load_error(path), path + ": attribute num_classes = 0 is outside [1, 2147483647]");
}

TEST_F(DatasetTest, WrongTypesAndShapes) {
  std::string path = write_raw("a.h5", [](hid_t file) {
    add_standard(file, "", H5T_STD_I64LE);  // values 1..12 stored as int64
  });
  EXPECT_EQ(load_error(path), path + ": /inputs is int64, want uint8 or float32");
  const uint8_t inputs[4] = {1, 2, 3, 4};
  path = write_replacing("b.h5", "inputs", H5T_STD_U8LE, H5T_NATIVE_UINT8, {4}, inputs);
  EXPECT_EQ(load_error(path), path + ": /inputs has shape [4], want [N, d1, ...]");
  const float labels[4] = {0, 1, 2, 1};
  path = write_replacing("c.h5", "labels", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {4}, labels);
  EXPECT_EQ(load_error(path), path + ": /labels is float32, want an integer type");
  path = write_raw("d.h5", [](hid_t file) {
    add_standard(file, "labels");
    h5::Handle group(H5Gcreate2(file, "labels", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  });
  EXPECT_EQ(load_error(path), path + ": /labels is not a dataset");
}

TEST_F(DatasetTest, SampleCountMismatch) {
  const int32_t labels[3] = {0, 1, 2};
  const std::string path =
      write_replacing("a.h5", "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, {3}, labels);
  EXPECT_EQ(load_error(path), path + ": /inputs has 4 samples but /labels has 3");
}

TEST_F(DatasetTest, LabelsOutOfRangeNameTheRecord) {
  const int64_t three[4] = {0, 1, 3, 1};
  std::string path = write_replacing("a.h5", "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, {4}, three);
  EXPECT_EQ(load_error(path), path + ": /labels[2] = 3 is outside [0, 3)");
  const int16_t negative[4] = {0, 1, 2, -1};
  path = write_replacing("b.h5", "labels", H5T_STD_I16LE, H5T_NATIVE_INT16, {4}, negative);
  EXPECT_EQ(load_error(path), path + ": /labels[3] = -1 is outside [0, 3)");
  const int64_t huge[4] = {0, int64_t{1} << 40, 2, 1};  // would wrap to 0 as int32
  path = write_replacing("c.h5", "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, {4}, huge);
  EXPECT_EQ(load_error(path), path + ": /labels[1] = 1099511627776 is outside [0, 3)");
}

TEST_F(DatasetTest, RefusesOversizedAndExternalData) {
  // 2^20 x 2^20 x 32 bytes declared, nothing stored: refused before any allocation.
  std::string path = write_raw("huge.h5", [](hid_t file) {
    add_standard(file, "inputs");
    const hsize_t dims[3] = {1 << 20, 1 << 20, 32}, chunk[3] = {1, 1, 32};
    h5::Handle space(H5Screate_simple(3, dims, nullptr));
    h5::Handle create(H5Pcreate(H5P_DATASET_CREATE));
    ASSERT_GE(H5Pset_chunk(create.get(), 3, chunk), 0);
    h5::Handle set(H5Dcreate2(file, "inputs", H5T_STD_U8LE, space.get(), H5P_DEFAULT, create.get(),
                              H5P_DEFAULT));
    ASSERT_TRUE(set.valid());
  });
  std::string message = load_error(path);
  EXPECT_EQ(message.find(path + ": /inputs has shape [1048576, 1048576, 32]: over the cap"), 0u)
      << message;

  const std::string other = write_raw("other.h5", [](hid_t file) { add_standard(file); });
  path = write_raw("link.h5", [&](hid_t file) {
    add_standard(file, "inputs");
    ASSERT_GE(
        H5Lcreate_external(other.c_str(), "/inputs", file, "inputs", H5P_DEFAULT, H5P_DEFAULT), 0);
  });
  EXPECT_EQ(load_error(path),
            path + ": /inputs is reached through a link to another file (refused)");
}

// Finds `needle` in the file, which must occur exactly once, and flips one byte inside it.
void flip_byte_in(const std::string& path, const std::vector<uint8_t>& needle) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)), {});
  const auto at = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
  ASSERT_NE(at, bytes.end()) << "pattern not found in " << path;
  ASSERT_EQ(std::search(at + 1, bytes.end(), needle.begin(), needle.end()), bytes.end());
  const auto offset = (at - bytes.begin()) + static_cast<std::ptrdiff_t>(needle.size() / 2);
  file.seekp(offset);
  file.put(static_cast<char>(bytes[offset] ^ 0x10));
  ASSERT_TRUE(file.good());
}

TEST_F(DatasetTest, FlippedByteFailsTheChecksum) {
  const std::string path = dir_ + "/d.h5";
  std::vector<uint8_t> inputs(64 * 32);
  std::mt19937 random(42);  // not periodic, so the needle below occurs once
  for (uint8_t& value : inputs) value = static_cast<uint8_t>(random());
  write_dataset(path, inputs, {64, 32}, std::vector<int32_t>(64, 1), 2);
  ASSERT_EQ(load_dataset(path).inputs_u8, inputs);
  flip_byte_in(path, std::vector<uint8_t>(inputs.begin() + 1000, inputs.begin() + 1032));
  EXPECT_EQ(load_error(path), path + ": checksum error reading /inputs (Fletcher32)");
}

TEST_F(DatasetTest, FailedWritesLeaveNothingBehind) {
  const std::vector<uint8_t> inputs = {1, 2, 3, 4};
  const std::string missing_dir = dir_ + "/no/such/dir/d.h5";
  try {
    write_dataset(missing_dir, inputs, {2, 2}, {0, 1}, 2);
    FAIL() << "wrote into a missing directory";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kIo);
    EXPECT_EQ(std::string(error.what()).find(missing_dir + ": cannot create temporary file"), 0u);
    EXPECT_NE(std::string(error.what()).find("No such file or directory"), std::string::npos);
  }
  // A directory under the final name: everything succeeds up to the rename.
  const std::string taken = dir_ + "/taken.h5";
  std::filesystem::create_directory(taken);
  try {
    write_dataset(taken, inputs, {2, 2}, {0, 1}, 2);
    FAIL() << "renamed over a directory";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kIo);
    EXPECT_EQ(std::string(error.what()).find(taken + ": cannot rename"), 0u) << error.what();
  }
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_), {}), 1);  // taken.h5 only
}

TEST_F(DatasetTest, FileSizeLimitFailsWriteAndKeepsPreviousFile) {
  // RLIMIT_FSIZE makes write() fail with EFBIG even for root, like a full disk.
  const std::string path = dir_ + "/d.h5";
  write_dataset(path, {1, 2, 3, 4}, {2, 2}, {0, 1}, 2);
  rlimit old_limit{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit small = old_limit;
  small.rlim_cur = 64 << 10;
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  ErrorKind kind = ErrorKind::kInternal;
  try {
    write_dataset(path, std::vector<uint8_t>(1 << 20, 5), {1024, 1024},
                  std::vector<int32_t>(1024, 0), 1);
  } catch (const Error& error) {
    kind = error.kind();
    EXPECT_EQ(std::string(error.what()), path + ": cannot write " + path + ".tmp." +
                                             std::to_string(getpid()) + ": File too large");
  }
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(kind, ErrorKind::kIo);
  EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);  // nothing left half-closed
  EXPECT_EQ(load_dataset(path).inputs_u8, (std::vector<uint8_t>{1, 2, 3, 4}));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_), {}), 1);
}

// gather_batch against the formula evaluated here in the destination precision.
template <typename T>
void check_gather(const Dataset& dataset, DType dtype) {
  CpuDevice device;
  const Normalization norm{1.0f / 255.0f, 0.25f, 0.5f};
  const std::vector<int64_t> indices = {2, 0, 2};
  Tensor batch(device, {4, dataset.feature_size}, dtype);
  std::vector<int32_t> labels(3, -7);
  gather_batch(dataset, indices.data(), 3, norm, batch, labels.data());
  for (int64_t row = 0; row < 3; ++row) {
    EXPECT_EQ(labels[row], dataset.labels[indices[row]]);
    for (int64_t j = 0; j < dataset.feature_size; ++j) {
      const int64_t at = indices[row] * dataset.feature_size + j;
      const T raw = dataset.inputs_u8.empty() ? static_cast<T>(dataset.inputs_f32[at])
                                              : static_cast<T>(dataset.inputs_u8[at]);
      const T expected =
          (raw * static_cast<T>(norm.scale) - static_cast<T>(norm.mean)) / static_cast<T>(norm.std);
      EXPECT_EQ(batch.data<T>()[row * dataset.feature_size + j], expected) << row << ", " << j;
    }
  }
  for (int64_t j = 0; j < dataset.feature_size; ++j) {
    EXPECT_EQ(batch.data<T>()[3 * dataset.feature_size + j], T{0});  // row 3 untouched
  }
}

Dataset small_dataset(bool float_inputs) {
  Dataset dataset;
  dataset.size = 3;
  dataset.sample_shape = {2, 2};
  dataset.feature_size = 4;
  dataset.num_classes = 4;
  dataset.labels = {3, 1, 2};
  for (int i = 0; i < 12; ++i) {
    if (float_inputs) dataset.inputs_f32.push_back(i * 17.5f - 40.0f);
    if (!float_inputs) dataset.inputs_u8.push_back(static_cast<uint8_t>(i * 23));
  }
  return dataset;
}

TEST(GatherBatchTest, NormalizesIntoFloatAndDouble) {
  check_gather<float>(small_dataset(false), DType::kF32);
  check_gather<double>(small_dataset(false), DType::kF64);
  check_gather<float>(small_dataset(true), DType::kF32);
  check_gather<double>(small_dataset(true), DType::kF64);
}

TEST(GatherBatchTest, RejectsWrongShapesAndIndices) {
  CpuDevice device;
  const Dataset dataset = small_dataset(false);
  std::vector<int32_t> labels(4);
  const std::vector<int64_t> indices = {0, 1, 3};
  Tensor narrow(device, {3, 5}, DType::kF64);
  EXPECT_THROW(gather_batch(dataset, indices.data(), 2, {}, narrow, labels.data()), Error);
  Tensor short_batch(device, {1, 4}, DType::kF64);
  EXPECT_THROW(gather_batch(dataset, indices.data(), 2, {}, short_batch, labels.data()), Error);
  Tensor batch(device, {3, 4}, DType::kF32);
  try {
    gather_batch(dataset, indices.data(), 3, {}, batch, labels.data());
    FAIL() << "index 3 of 3 samples accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kInternal);
    EXPECT_EQ(std::string(error.what()), "gather_batch: indices[2] = 3 is outside [0, 3)");
  }
}

}  // namespace
}  // namespace dpt
