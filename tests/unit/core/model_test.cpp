// Model tests: whole-network gradient check in double (every layer kind in one stack, through the
// flat buffers), fusion changing nothing, the flat buffer layout, initialisation statistics,
// determinism, and weight files (round trip, mismatches refused without a partial load).
#include "core/model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <cstring>
#include <filesystem>

#include "core/array_file.h"
#include "core/config.h"
#include "core/loss.h"
#include "core/random.h"
#include "devices/cpu_device.h"
#include "devices/error.h"
#include "gradient_check.h"
#include "temp_dir.h"

namespace dpt {
namespace {

const char* kStack = R"(
model {
  input_size: 6
  layer { dense { units: 5 } }
  layer { activation { kind: GELU } }
  layer { dense { units: 5 init: XAVIER } }
  layer { activation { kind: TANH } }
  layer { dropout { rate: 0.3 } }
  layer { dense { units: 4 bias: false init: NORMAL init_std: 0.5 } }
  layer { activation { kind: LEAKY_RELU negative_slope: 0.1 } }
  layer { dense { units: 4 } }
  layer { activation { kind: SIGMOID } }
  layer { dense { units: 3 } }
  seed: 5
}
data { train_path: "unused.h5" }
train { seed: 9 }
)";

proto::Config stack_config() { return parse_config(kStack, "stack.prototxt"); }

Tensor random_input(Device& device, int64_t rows, int64_t cols, DType dtype) {
  Tensor input(device, {rows, cols}, dtype);
  RandomStream random(11, 0);
  for (int64_t i = 0; i < input.numel(); ++i) {
    double value = 2 * random.uniform() - 1;
    if (dtype == DType::kF64) {
      input.data<double>()[i] = value;
    } else {
      input.data<float>()[i] = static_cast<float>(value);
    }
  }
  return input;
}

TEST(Model, WholeNetworkGradientMatchesCentralDifferences) {
  CpuDevice device;
  for (bool fuse : {true, false}) {
    Model model(device, stack_config(), ModelOptions{DType::kF64, fuse});
    Tensor input = random_input(device, 4, 6, DType::kF64);
    std::vector<int32_t> labels = {0, 2, 1, 2};
    const Pass pass{true, 3, 0};
    auto objective = [&] {
      const Tensor& logits = model.forward(input, pass);
      return compute_loss(proto::SOFTMAX_CROSS_ENTROPY, logits, labels.data(), nullptr, 1.0)
          .loss_sum;
    };
    model.zero_grads();
    Tensor grad_logits(device, {4, 3}, DType::kF64);
    compute_loss(proto::SOFTMAX_CROSS_ENTROPY, model.forward(input, pass), labels.data(),
                 &grad_logits, 1.0);
    model.backward(grad_logits);
    std::vector<double> analytic(model.grads().data<double>(),
                                 model.grads().data<double>() + model.num_params());
    testing::check_gradient(objective, model.params().data<double>(), model.num_params(),
                            analytic.data(), fuse ? "fused params" : "unfused params");
  }
}

TEST(Model, FusionChangesNothing) {
  CpuDevice device;
  Model fused(device, stack_config(), ModelOptions{DType::kF32, true});
  Model plain(device, stack_config(), ModelOptions{DType::kF32, false});
  EXPECT_LT(fused.layers().size(), plain.layers().size());
  ASSERT_EQ(fused.num_params(), plain.num_params());
  Tensor input = random_input(device, 8, 6, DType::kF32);
  const Tensor& a = fused.forward(input, Pass{true, 1, 0});
  const Tensor& b = plain.forward(input, Pass{true, 1, 0});
  for (int64_t i = 0; i < a.numel(); ++i) {
    EXPECT_FLOAT_EQ(a.data<float>()[i], b.data<float>()[i]) << i;
  }
  Tensor grad(device, a.shape(), DType::kF32);
  for (int64_t i = 0; i < grad.numel(); ++i) grad.data<float>()[i] = 0.01f * static_cast<float>(i);
  fused.backward(grad);
  plain.backward(grad);
  for (int64_t i = 0; i < fused.num_params(); ++i) {
    EXPECT_NEAR(fused.grads().data<float>()[i], plain.grads().data<float>()[i], 1e-6) << i;
  }
}

TEST(Model, FlatBufferLayoutAndNames) {
  CpuDevice device;
  Model model(device, stack_config());
  std::vector<NamedParam> params = model.named_params();
  std::vector<std::string> names;
  int64_t offset = 0;
  for (const NamedParam& p : params) {
    names.push_back(p.name);
    // Views are contiguous and in order inside the one flat buffer.
    EXPECT_EQ(p.value.raw(), static_cast<void*>(model.params().data<float>() + offset)) << p.name;
    EXPECT_EQ(p.grad.raw(), static_cast<void*>(model.grads().data<float>() + offset)) << p.name;
    offset += p.value.numel();
  }
  EXPECT_EQ(offset, model.num_params());
  EXPECT_EQ(model.num_params(), 6 * 5 + 5 + 5 * 5 + 5 + 5 * 4 + 4 * 4 + 4 + 4 * 3 + 3);
  std::vector<std::string> expected = {"dense0/weight", "dense0/bias",   "dense2/weight",
                                       "dense2/bias",   "dense5/weight", "dense7/weight",
                                       "dense7/bias",   "dense9/weight", "dense9/bias"};
  EXPECT_EQ(names, expected);
}

// ModelOptions::grad_memory places the flat gradient buffer (training passes the communicator's
// allocate_shared): asked once for the buffer's bytes, the layers' gradient views point into the
// given memory, which the model keeps alive and zero-fills; a null result falls back to the
// device's memory. Gradients computed there equal those in device memory.
TEST(Model, GradMemoryPlacesTheGradientBuffer) {
  CpuDevice device;
  std::vector<std::size_t> asked;
  bool freed = false;
  ModelOptions options;
  options.grad_memory = [&](std::size_t bytes) {
    asked.push_back(bytes);
    auto* memory = new std::vector<float>(bytes / sizeof(float), 7.0f);
    return std::shared_ptr<void>(memory->data(), [memory, &freed](void*) {
      freed = true;
      delete memory;
    });
  };
  {
    Model placed(device, stack_config(), options);
    Model plain(device, stack_config());
    ASSERT_EQ(asked, std::vector<std::size_t>{placed.num_params() * sizeof(float)});
    const float* grads = placed.grads().data<float>();
    EXPECT_TRUE(std::all_of(grads, grads + placed.num_params(), [](float g) { return g == 0; }));
    const std::vector<NamedParam> params = placed.named_params();
    EXPECT_EQ(params.front().grad.raw(), placed.grads().raw());
    placed.init_params();
    plain.init_params();
    const Tensor input = random_input(device, 4, 6, DType::kF32);
    Tensor grad_logits(device, {4, 3}, DType::kF32);
    for (int64_t i = 0; i < grad_logits.numel(); ++i) grad_logits.data<float>()[i] = 0.1f * i;
    for (Model* model : {&placed, &plain}) {
      Pass pass;
      pass.training = true;
      model->forward(input, pass);
      model->backward(grad_logits);
    }
    EXPECT_EQ(std::memcmp(placed.grads().raw(), plain.grads().raw(), placed.grads().bytes()), 0);
    EXPECT_FALSE(freed);
  }
  EXPECT_TRUE(freed);

  options.grad_memory = [](std::size_t) { return std::shared_ptr<void>(); };
  Model fallback(device, stack_config(), options);
  EXPECT_EQ(fallback.grads().numel(), fallback.num_params());
}

TEST(Model, HeInitialisationHasTheRightScaleAndIsSeeded) {
  CpuDevice device;
  proto::Config config = parse_config(
      "model { input_size: 400 layer { dense { units: 300 } } } data { train_path: \"x\" }", "c");
  Model model(device, config);
  const float* w = model.params().data<float>();
  double sum = 0, sum_sq = 0;
  const int64_t n = 400 * 300;
  for (int64_t i = 0; i < n; ++i) {
    sum += w[i];
    sum_sq += double(w[i]) * w[i];
  }
  const double mean = sum / n, variance = sum_sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.002);
  EXPECT_NEAR(variance, 2.0 / 400, 0.02 * 2.0 / 400);
  for (int64_t i = n; i < model.num_params(); ++i) EXPECT_EQ(w[i], 0.0f);  // biases

  Model same(device, config);
  EXPECT_EQ(0, std::memcmp(w, same.params().data<float>(), model.params().bytes()));
  config.mutable_model()->set_seed(2);
  Model other(device, config);
  EXPECT_NE(0, std::memcmp(w, other.params().data<float>(), model.params().bytes()));
}

TEST(Model, DropoutIsIdentityInEvaluationAndDependsOnGlobalSampleIndex) {
  CpuDevice device;
  proto::Config config = parse_config(
      "model { input_size: 64 layer { dropout { rate: 0.5 } } layer { dense { units: 64 } } }"
      " data { train_path: \"x\" }",
      "c");
  Model model(device, config, ModelOptions{DType::kF32, true});
  Tensor input = random_input(device, 4, 64, DType::kF32);
  // One batch of 4 rows equals two batches of 2 rows with sample_offset 0 and 2.
  std::vector<float> whole;
  {
    const Tensor& out = model.forward(input, Pass{true, 7, 0});
    whole.assign(out.data<float>(), out.data<float>() + out.numel());
  }
  std::vector<float> halves;
  for (int64_t offset : {0, 2}) {
    Tensor half = input.slice(offset * 64, {2, 64});
    const Tensor& out = model.forward(half, Pass{true, 7, offset});
    halves.insert(halves.end(), out.data<float>(), out.data<float>() + out.numel());
  }
  EXPECT_EQ(whole, halves);
  // Another step draws another mask.
  const Tensor& next = model.forward(input, Pass{true, 8, 0});
  EXPECT_NE(whole, std::vector<float>(next.data<float>(), next.data<float>() + next.numel()));
  // Evaluation equals the same network with rate 0.
  const Tensor& eval = model.forward(input, Pass{});
  std::vector<float> eval_out(eval.data<float>(), eval.data<float>() + eval.numel());
  config.mutable_model()->mutable_layer(0)->mutable_dropout()->set_rate(0.0f);
  Model no_dropout(device, config);
  const Tensor& reference = no_dropout.forward(input, Pass{true, 7, 0});
  EXPECT_EQ(eval_out, std::vector<float>(reference.data<float>(),
                                         reference.data<float>() + reference.numel()));
}

class WeightsFileTest : public testing::TempDirTest {
 protected:
  WeightsFileTest() : TempDirTest("dpt_model_test_") {}
};

TEST_F(WeightsFileTest, RoundTripIsBitExact) {
  CpuDevice device;
  Model model(device, stack_config());
  model.save_weights(dir_ + "/w.h5", {{"note", "hello"}});
  proto::Config other = stack_config();
  other.mutable_model()->set_seed(99);
  Model loaded(device, other);
  loaded.load_weights(dir_ + "/w.h5");
  EXPECT_EQ(0, std::memcmp(model.params().raw(), loaded.params().raw(), model.params().bytes()));
  EXPECT_EQ(read_array_file(dir_ + "/w.h5").attributes.at("note"), "hello");
}

TEST_F(WeightsFileTest, MismatchedShapeIsRefusedWithoutPartialLoad) {
  CpuDevice device;
  Model model(device, stack_config());
  model.save_weights(dir_ + "/w.h5", {});
  proto::Config wider = stack_config();
  wider.mutable_model()->mutable_layer(7)->mutable_dense()->set_units(6);
  Model target(device, wider);
  std::vector<float> before(target.params().data<float>(),
                            target.params().data<float>() + target.num_params());
  try {
    target.load_weights(dir_ + "/w.h5");
    FAIL() << "expected a checkpoint error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCheckpoint);
    EXPECT_NE(std::string(e.what()).find("params/dense7/weight has shape [4, 4], the model "
                                         "expects [6, 4]"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(before, std::vector<float>(target.params().data<float>(),
                                       target.params().data<float>() + target.num_params()));
}

TEST_F(WeightsFileTest, MissingFileIsACheckpointError) {
  CpuDevice device;
  Model model(device, stack_config());
  try {
    model.load_weights(dir_ + "/absent.h5");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCheckpoint);
    EXPECT_NE(std::string(e.what()).find("absent.h5"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dpt
