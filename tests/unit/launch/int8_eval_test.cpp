// `dpt eval` on int8 model files (launch/commands.cpp run_eval): a toy model is trained (plain
// SGD), saved as fp32 weights and, through the library, as an int8 file (what `dpt compress` will
// write); eval then detects the int8 file by its format attribute, prints the fp32 line with
// ", int8", and its accuracy is within 1 % of fp32 and equal to the argmax of Int8Model computed
// here. Corrupt and mismatched int8 files fail with kCheckpoint naming the file.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "core/config.h"
#include "core/int8_file.h"
#include "core/int8_model.h"
#include "devices/cpu_device.h"
#include "devices/error.h"
#include "launch/commands.h"
#include "quantize_fixture.h"

namespace dpt {
namespace {

class Int8EvalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "int8_eval_test_XXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    const Dataset train = testing::synthetic_dataset(1500, 20, 4, 1);
    const Dataset test = testing::synthetic_dataset(600, 20, 4, 2);
    write_dataset(dir_ + "/train.h5", train.inputs_u8, {train.size, 20}, train.labels, 4);
    write_dataset(dir_ + "/test.h5", test.inputs_u8, {test.size, 20}, test.labels, 4);
    config_path_ = dir_ + "/config.prototxt";
    std::ofstream(config_path_)
        << "model { input_size: 20 layer { dense { units: 48 } } "
           "layer { activation { kind: RELU } } layer { dense { units: 4 } }"
           " } data { train_path: \""
        << dir_ << "/train.h5\" test_path: \"" << dir_
        << "/test.h5\" mean: 0.4 std: 0.3 } train { eval_batch_size: 256 }"
           " device { threads: 1 }\n";
    const proto::Config config = load_config(config_path_);
    CpuDevice device(CpuDeviceOptions{1});
    Model model(device, config);
    const Normalization norm{config.data().input_scale(), 0.4f, 0.3f};
    testing::train_sgd(model, train, norm, 6, 50, 0.05f);
    model.save_weights(dir_ + "/model.h5", {});
    const QuantizedModel q = quantize_model(model, train, norm, {});
    save_quantized_model(dir_ + "/model_int8.h5", q);
    // The expected int8 accuracy, from Int8Model directly.
    Int8Model int8(device, q);
    const Tensor& logits = int8.forward(testing::dataset_batch(device, test, norm, test.size));
    int64_t correct = 0;
    for (int64_t i = 0; i < test.size; ++i) {
      const float* row = logits.data<float>() + i * 4;
      correct += std::max_element(row, row + 4) - row == test.labels[i];
    }
    int8_accuracy_ = static_cast<double>(correct) / static_cast<double>(test.size);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // run_eval's printed line.
  std::string eval(const std::string& weights, const std::vector<std::string>& overrides = {}) {
    ::testing::internal::CaptureStdout();
    try {
      EXPECT_EQ(run_eval(EvalArgs{config_path_, weights, overrides}), 0);
    } catch (...) {
      ::testing::internal::GetCapturedStdout();
      throw;
    }
    return ::testing::internal::GetCapturedStdout();
  }
  static double accuracy(const std::string& line) {
    std::smatch match;
    EXPECT_TRUE(std::regex_search(line, match, std::regex("test_accuracy ([0-9.]+)"))) << line;
    return match.empty() ? -1.0 : std::stod(match[1]);
  }
  ErrorKind eval_error(const std::string& weights, std::string& message,
                       const std::vector<std::string>& overrides = {}) {
    try {
      eval(weights, overrides);
    } catch (const Error& e) {
      message = e.what();
      return e.kind();
    }
    return ErrorKind::kInternal;
  }

  std::string dir_, config_path_;
  double int8_accuracy_ = 0;
};

TEST_F(Int8EvalTest, EvalRunsTheInt8FileAndSaysSo) {
  const std::string fp32 = eval(dir_ + "/model.h5");
  const std::string int8 = eval(dir_ + "/model_int8.h5");
  EXPECT_TRUE(std::regex_match(fp32, std::regex("test_loss [0-9.]+ test_accuracy [0-9.]+ \\(600 "
                                                "samples\\)\n")))
      << fp32;
  EXPECT_TRUE(std::regex_match(int8, std::regex("test_loss [0-9.]+ test_accuracy [0-9.]+ \\(600 "
                                                "samples, int8\\)\n")))
      << int8;
  EXPECT_GT(accuracy(fp32), 0.8) << "the toy model did not learn";
  EXPECT_NEAR(accuracy(int8), accuracy(fp32), 0.01);
  EXPECT_NEAR(accuracy(int8), int8_accuracy_, 1e-4);
}

TEST_F(Int8EvalTest, CorruptOrMismatchedInt8FileIsACheckpointError) {
  const std::string path = dir_ + "/model_int8.h5";
  std::string message;
  // Truncated.
  std::filesystem::copy_file(path, dir_ + "/truncated.h5");
  std::filesystem::resize_file(dir_ + "/truncated.h5", 3000);
  EXPECT_EQ(eval_error(dir_ + "/truncated.h5", message), ErrorKind::kCheckpoint) << message;
  EXPECT_EQ(message.find(dir_ + "/truncated.h5: "), 0u) << message;
  // Another architecture.
  EXPECT_EQ(eval_error(path, message, {"model.layer[0].dense.units=40"}), ErrorKind::kCheckpoint)
      << message;
  EXPECT_NE(message.find(path + ": quantized from the model"), std::string::npos) << message;
}

}  // namespace
}  // namespace dpt
