// Tests for core/int8_file: save/load round trip gives bit-identical logits and the same numbers,
// the file is about 4x smaller than the fp32 weights, and every kind of bad file (flipped byte,
// truncated, fp32 weights given as int8 and the reverse, another architecture, forged values)
// is a kCheckpoint error naming the file.
#include "core/int8_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/array_file.h"
#include "core/config.h"
#include "core/int8_model.h"
#include "devices/cpu_device.h"
#include "devices/error.h"
#include "quantize_fixture.h"

namespace dpt {
namespace {

proto::Config config_of(int64_t hidden) {
  return parse_config("model { input_size: 40 layer { dense { units: " + std::to_string(hidden) +
                          " } } layer { activation { kind: RELU } } layer { dense { units: 64 "
                          "bias: false } } layer { activation { kind: TANH } } "
                          "layer { dense { units: 6 } } } data { train_path: \"unused.h5\" }",
                      "test.prototxt");
}

class Int8FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "int8_file_test_XXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    path_ = dir_ + "/model_int8.h5";
    model_ = std::make_unique<Model>(device_, config_of(128));
    data_ = testing::synthetic_dataset(200, 40, 6, 4);
    quantized_ = quantize_model(*model_, data_, norm_, {});
    save_quantized_model(path_, quantized_, {{"source", "test"}});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // load_quantized_model's kCheckpoint message.
  std::string load_error(const std::string& path, const Model& model) {
    try {
      load_quantized_model(path, model);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kCheckpoint) << e.what();
      return e.what();
    }
    ADD_FAILURE() << "loaded " << path;
    return "";
  }

  CpuDevice device_;
  Normalization norm_{1.0f / 255, 0.3f, 0.3f};
  std::string dir_, path_;
  std::unique_ptr<Model> model_;
  Dataset data_;
  QuantizedModel quantized_;
};

TEST_F(Int8FileTest, RoundTripGivesBitIdenticalLogits) {
  EXPECT_TRUE(is_int8_model_file(path_));
  const QuantizedModel loaded = load_quantized_model(path_, *model_);
  ASSERT_EQ(loaded.layers.size(), quantized_.layers.size());
  for (std::size_t d = 0; d < loaded.layers.size(); ++d) {
    EXPECT_EQ(loaded.layers[d].weight.values, quantized_.layers[d].weight.values);
    EXPECT_EQ(loaded.layers[d].weight.scales, quantized_.layers[d].weight.scales);
    EXPECT_EQ(loaded.layers[d].bias, quantized_.layers[d].bias);
    EXPECT_EQ(loaded.layers[d].input.scale, quantized_.layers[d].input.scale);
    EXPECT_EQ(loaded.layers[d].input.zero_point, quantized_.layers[d].input.zero_point);
    EXPECT_EQ(loaded.layers[d].activations.size(), quantized_.layers[d].activations.size());
  }
  EXPECT_TRUE(loaded.layers[1].bias.empty());
  EXPECT_EQ(loaded.calibration_samples, 200);
  const Tensor inputs = testing::dataset_batch(device_, data_, norm_, 50);
  Int8Model before(device_, quantized_), after(device_, loaded);
  const Tensor& a = before.forward(inputs);
  const Tensor& b = after.forward(inputs);
  ASSERT_EQ(a.numel(), b.numel());
  EXPECT_EQ(std::memcmp(a.data<float>(), b.data<float>(), a.bytes()), 0);
}

TEST_F(Int8FileTest, AboutFourTimesSmallerThanFp32Weights) {
  // 400-1024-64-6: 0.48 M parameters (HDF5's per-array overhead matters less than in 40-128-...).
  const proto::Config config = parse_config(
      "model { input_size: 400 layer { dense { units: 1024 } } layer { activation { kind: RELU } "
      "} layer { dense { units: 64 } } layer { dense { units: 6 } } } "
      "data { train_path: \"unused.h5\" }",
      "big.prototxt");
  Model big(device_, config);
  const std::string fp32 = dir_ + "/model.h5", int8 = dir_ + "/big_int8.h5";
  big.save_weights(fp32, {});
  save_quantized_model(int8,
                       quantize_model(big, testing::synthetic_dataset(20, 400, 6, 1), norm_, {}));
  const double ratio = static_cast<double>(std::filesystem::file_size(fp32)) /
                       static_cast<double>(std::filesystem::file_size(int8));
  EXPECT_GT(ratio, 3.5) << "fp32 / int8 file size";
  EXPECT_LT(ratio, 4.1);
}

TEST_F(Int8FileTest, FlippedByteOrTruncatedFileIsRefused) {
  // Flip one byte in the middle of the first layer's int8 weights.
  const std::vector<int8_t>& codes = quantized_.layers[0].weight.values;
  const std::string needle(codes.begin() + 100, codes.begin() + 164);
  std::fstream file(path_, std::ios::in | std::ios::out | std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(file)), {});
  const std::size_t at = bytes.find(needle);
  ASSERT_NE(at, std::string::npos);
  file.seekp(static_cast<std::streamoff>(at + 10));
  file.put(static_cast<char>(bytes[at + 10] ^ 0x04));
  file.close();
  EXPECT_NE(load_error(path_, *model_).find(path_ + ": checksum mismatch in int8/dense0/weight"),
            std::string::npos);

  save_quantized_model(path_, quantized_);
  std::filesystem::resize_file(path_, std::filesystem::file_size(path_) / 2);
  EXPECT_EQ(load_error(path_, *model_).find(path_ + ": "), 0u);
}

TEST_F(Int8FileTest, WrongModelOrFormatIsRefused) {
  Model other(device_, config_of(96));
  EXPECT_NE(load_error(path_, other).find("quantized from the model 40 -> dense0+relu1(128)"),
            std::string::npos);
  const std::string fp32 = dir_ + "/model.h5";
  model_->save_weights(fp32, {});
  EXPECT_FALSE(is_int8_model_file(fp32));
  EXPECT_NE(load_error(fp32, *model_).find("not a dpt int8 model"), std::string::npos);
  // The reverse: fp32 loading refuses the int8 file.
  try {
    model_->load_weights(path_);
    ADD_FAILURE() << "fp32 load of an int8 file";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCheckpoint);
  }
  EXPECT_THROW(is_int8_model_file(dir_ + "/missing.h5"), Error);
}

TEST_F(Int8FileTest, ForgedValuesAreRefused) {
  ArrayFile file = read_array_file(path_, true);
  for (Array& array : file.arrays) {
    if (array.name == "int8/dense2/input") array.values[3] = 300;  // zero point out of range
  }
  write_array_file(path_, file);
  EXPECT_NE(load_error(path_, *model_).find("int8/dense2/input holds invalid parameters"),
            std::string::npos);
  file = read_array_file(path_, true);
  file.arrays.push_back({"int8/extra", {1}, {1.0f}});
  for (Array& array : file.arrays) {
    if (array.name == "int8/dense2/input") array.values[3] = 3;
  }
  write_array_file(path_, file);
  const std::string message = load_error(path_, *model_);
  EXPECT_NE(message.find("holds 12 arrays, the model needs 11"), std::string::npos) << message;
}

}  // namespace
}  // namespace dpt
