// Pruning tests (core/prune.h): the global magnitude threshold hits the exact target count on
// hand-made weights (ties to the lower index, biases untouched, masks that only grow), the cubic
// schedule's values, the structured neuron choice on weights with hand-computed scores (never the
// output layer, at least one neuron left per layer), and a shrunk model computing bit for bit what
// the original computes with those neurons zeroed (weights chosen so every float sum is exact).
#include "core/prune.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>

#include "core/config.h"
#include "core/random.h"
#include "devices/cpu_device.h"
#include "devices/error.h"

namespace dpt {
namespace {

std::vector<int64_t> pruned_indices(const ParamMask& mask) {
  std::vector<int64_t> list;
  for (std::size_t i = 0; i < mask.keep.size(); ++i) {
    if (!mask.keep[i]) list.push_back(static_cast<int64_t>(i));
  }
  return list;
}

TEST(MagnitudeMask, PrunesExactlyTheSmallestOfThePrunableRanges) {
  // Two "weight" ranges [0, 6) and [8, 12); 6 and 7 stand for biases (tiny, never pruned).
  const std::vector<float> params = {0.5f,  -0.1f,  0.3f,  -0.7f, 0.05f, 0.9f,
                                     1e-6f, -1e-6f, -0.2f, 0.6f,  0.15f, -0.01f};
  const std::vector<ParamRange> ranges = {{0, 6}, {8, 4}};
  // 10 prunable; 40 % -> 4 smallest |w| among them: 0.01 (11), 0.05 (4), 0.1 (1), 0.15 (10).
  ParamMask mask = magnitude_mask(params.data(), 12, ranges, 0.4);
  EXPECT_EQ(mask.prunable, 10);
  EXPECT_EQ(mask.pruned, 4);
  EXPECT_EQ(pruned_indices(mask), (std::vector<int64_t>{1, 4, 10, 11}));
  // round(0.25 * 10) = 3 (2.5 rounds away from zero); 0 and 1 prune nothing and everything.
  EXPECT_EQ(magnitude_mask(params.data(), 12, ranges, 0.25).pruned, 3);
  EXPECT_TRUE(pruned_indices(magnitude_mask(params.data(), 12, ranges, 0.0)).empty());
  EXPECT_EQ(pruned_indices(magnitude_mask(params.data(), 12, ranges, 1.0)),
            (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 8, 9, 10, 11}));
  // Applying zeroes exactly the masked entries and leaves the others bit for bit.
  CpuDevice device;
  Tensor tensor(device, {12}, DType::kF32);
  std::copy(params.begin(), params.end(), tensor.data<float>());
  mask.apply(tensor);
  for (int64_t i = 0; i < 12; ++i) {
    const float expected = mask.keep[i] ? params[i] : 0.0f;
    EXPECT_EQ(std::memcmp(&tensor.data<float>()[i], &expected, sizeof(float)), 0) << i;
  }
}

TEST(MagnitudeMask, TiesGoToTheLowerIndexSoTheCountIsExact) {
  // Eight weights of equal magnitude: any threshold would take all or none of them.
  const std::vector<float> params = {1, -1, 1, -1, 1, -1, 1, -1};
  for (int k = 0; k <= 8; ++k) {
    const ParamMask mask = magnitude_mask(params.data(), 8, {{0, 8}}, k / 8.0);
    std::vector<int64_t> expected(static_cast<std::size_t>(k));
    for (int i = 0; i < k; ++i) expected[i] = i;
    EXPECT_EQ(pruned_indices(mask), expected) << k;
  }
  // Ties below distinct values: {2, 2, 1, 1, 3}, 3 pruned -> both 1s, then the first 2.
  const std::vector<float> mixed = {2, -2, 1, 1, 3};
  EXPECT_EQ(pruned_indices(magnitude_mask(mixed.data(), 5, {{0, 5}}, 0.6)),
            (std::vector<int64_t>{0, 2, 3}));
}

TEST(MagnitudeMask, PreviouslyPrunedEntriesStayPrunedFirst) {
  // After a first round the large entry 0 was pruned (say fine-tuning moved things around);
  // the next round keeps it pruned and adds the smallest of the rest.
  const std::vector<float> params = {5, 0.1f, 0.2f, 3, 4};
  ParamMask previous;
  previous.keep = {0, 1, 1, 1, 1};
  const ParamMask mask = magnitude_mask(params.data(), 5, {{0, 5}}, 0.6, &previous);
  EXPECT_EQ(pruned_indices(mask), (std::vector<int64_t>{0, 1, 2}));
}

TEST(MagnitudeMask, RangesOutsideTheBufferAreRefused) {
  const std::vector<float> params(4, 1.0f);
  EXPECT_THROW(magnitude_mask(params.data(), 4, {{2, 3}}, 0.5), Error);
  EXPECT_THROW(magnitude_mask(params.data(), 4, {{0, 4}}, 1.5), Error);
}

TEST(PruneSchedule, CubicFromZeroToTheTarget) {
  // 0.8 * (1 - (1 - r/4)^3): 1 - 27/64, 1 - 1/8, 1 - 1/64, 1.
  EXPECT_DOUBLE_EQ(scheduled_sparsity(0.8, 1, 4), 0.8 * 37.0 / 64.0);
  EXPECT_DOUBLE_EQ(scheduled_sparsity(0.8, 2, 4), 0.8 * 7.0 / 8.0);
  EXPECT_DOUBLE_EQ(scheduled_sparsity(0.8, 3, 4), 0.8 * 63.0 / 64.0);
  EXPECT_DOUBLE_EQ(scheduled_sparsity(0.8, 4, 4), 0.8);
  EXPECT_DOUBLE_EQ(scheduled_sparsity(0.5, 1, 1), 0.5);
  EXPECT_THROW(scheduled_sparsity(0.5, 0, 3), Error);
  EXPECT_THROW(scheduled_sparsity(0.5, 4, 3), Error);
}

// Sets parameter `name` ("dense0/weight") of `model` to `values` (row-major).
void set_param(Model& model, const std::string& name, const std::vector<float>& values) {
  for (const NamedParam& param : model.named_params()) {
    if (param.name != name) continue;
    ASSERT_EQ(param.value.numel(), static_cast<int64_t>(values.size())) << name;
    std::copy(values.begin(), values.end(), param.value.data<float>());
    return;
  }
  FAIL() << "no parameter " << name;
}

TEST(PrunableRanges, EveryDenseWeightAndNoBias) {
  const proto::Config config = parse_config(R"(
    model { input_size: 3 layer { dense { units: 4 } } layer { activation {} }
            layer { dense { units: 2 bias: false } } layer { dense { units: 5 } } }
    data { train_path: "unused.h5" })",
                                            "p");
  CpuDevice device;
  Model model(device, config);
  const std::vector<ParamRange> ranges = prunable_ranges(model);
  ASSERT_EQ(ranges.size(), 3u);
  // Flat layout: w0 [4,3] at 0, b0 [4] at 12, w2 [2,4] at 16 (no bias), w3 [5,2] at 24, b3 at 34.
  EXPECT_EQ(ranges[0].offset, 0);
  EXPECT_EQ(ranges[0].count, 12);
  EXPECT_EQ(ranges[1].offset, 16);
  EXPECT_EQ(ranges[1].count, 8);
  EXPECT_EQ(ranges[2].offset, 24);
  EXPECT_EQ(ranges[2].count, 10);
  EXPECT_EQ(model.num_params(), 39);
}

// 2 -> A(3) -> B(2) -> out(2), ReLU between, with hand-set scores:
// A: incoming norms 1, 3, 0.5, outgoing norms 1 -> scores 1, 3, 0.5, over their mean 1.5:
//    2/3, 2, 1/3;
// B: incoming norms sqrt(1.36), sqrt(1.64), outgoing c0, c1 -> scores 2 and 0.1, over their
//    mean 1.05: 1.905 and 0.095.
class ChooseNeurons : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = parse_config(R"(
      model { input_size: 2
              layer { name: "a" dense { units: 3 } } layer { activation {} }
              layer { name: "b" dense { units: 2 } } layer { activation {} }
              layer { name: "out" dense { units: 2 } } }
      data { train_path: "unused.h5" })",
                           "p");
    model_ = std::make_unique<Model>(device_, config_);
    set_param(*model_, "a/weight", {1, 0, 0, 3, 0.3f, 0.4f});
    set_param(*model_, "a/bias", {0, 0, 0});
    set_param(*model_, "b/weight", {1, 0, 0.6f, 0, 1, 0.8f});
    set_param(*model_, "b/bias", {0, 0});
    const float c0 = 2.0f / std::sqrt(1.36f), c1 = 0.1f / std::sqrt(1.64f);
    set_param(*model_, "out/weight", {c0, 0, 0, c1});
  }
  CpuDevice device_;
  proto::Config config_;
  std::unique_ptr<Model> model_;
};

TEST_F(ChooseNeurons, LowestScoresFirstAcrossLayers) {
  NeuronPlan plan = choose_neurons(config_, *model_, 2);
  EXPECT_EQ(plan.layers, (std::vector<int>{0, 2}));  // config indices of a and b; never "out"
  EXPECT_EQ(plan.hidden, 5);
  EXPECT_EQ(plan.neurons, (std::vector<std::vector<int64_t>>{{2}, {1}}));  // 0.095, 1/3
  plan = choose_neurons(config_, *model_, 3);
  EXPECT_EQ(plan.neurons, (std::vector<std::vector<int64_t>>{{0, 2}, {1}}));  // then 2/3
}

TEST_F(ChooseNeurons, EveryLayerKeepsOneNeuron) {
  // Next would be b's neuron 0 (1.905), b's last, then a's neuron 1 (2), a's last: none allowed.
  const NeuronPlan plan = choose_neurons(config_, *model_, 4);
  EXPECT_EQ(plan.neurons, (std::vector<std::vector<int64_t>>{{0, 2}, {1}}));
  EXPECT_EQ(plan.removed(), 3);
  const ShrunkModel shrunk = remove_neurons(config_, *model_, plan);
  EXPECT_EQ(shrunk.config.model().layer(0).dense().units(), 1);
  EXPECT_EQ(shrunk.config.model().layer(2).dense().units(), 1);
  EXPECT_EQ(shrunk.config.model().layer(4).dense().units(), 2);
  // a: row 1 (0, 3) and bias; b: row 0, column 1 only (1 -> 0); out: column 0 (c0, 0); biases.
  const float c0 = 2.0f / std::sqrt(1.36f);
  EXPECT_EQ(shrunk.params, (std::vector<float>{0, 3, 0, 0, 0, c0, 0, 0, 0}));
}

TEST(ChooseNeuronsScale, ScoresCompeteRelativeToTheirLayersMean) {
  // Raw scores: a (10, 20), b (1, 1.2). Raw, b's neuron 0 would go first; over the layer means
  // (15 and 1.1) a's neuron 0 (0.667) is below b's (0.909).
  const proto::Config config = parse_config(R"(
    model { input_size: 1
            layer { name: "a" dense { units: 2 } } layer { activation {} }
            layer { name: "b" dense { units: 2 } } layer { activation {} }
            layer { name: "out" dense { units: 1 } } }
    data { train_path: "unused.h5" })",
                                            "p");
  CpuDevice device;
  Model model(device, config);
  set_param(model, "a/weight", {10, 20});
  set_param(model, "a/bias", {0, 0});
  set_param(model, "b/weight", {1, 0, 0, 1});
  set_param(model, "b/bias", {0, 0});
  set_param(model, "out/weight", {1, 1.2f});
  EXPECT_EQ(choose_neurons(config, model, 1).neurons, (std::vector<std::vector<int64_t>>{{0}, {}}));
}

// A random value k / 8 with |k| <= 8: products and sums of these stay exact in float32 here.
float dyadic(RandomStream& random) {
  return static_cast<float>(static_cast<int>(random.below(17)) - 8) / 8.0f;
}

TEST(RemoveNeurons, ShrunkModelEqualsTheOriginalWithThoseNeuronsZeroed) {
  const proto::Config config = parse_config(R"(
    model { input_size: 6
            layer { dense { units: 8 } } layer { activation { kind: RELU } }
            layer { dropout { rate: 0.3 } }
            layer { dense { units: 7 bias: false } }
            layer { activation { kind: LEAKY_RELU negative_slope: 0.5 } }
            layer { dense { units: 3 } } }
    data { train_path: "unused.h5" })",
                                            "p");
  CpuDevice device;
  Model original(device, config);
  RandomStream random(3, 0);
  for (int64_t i = 0; i < original.num_params(); ++i) {
    original.params().data<float>()[i] = dyadic(random);
  }
  const NeuronPlan plan = choose_neurons(config, original, 8);
  ASSERT_EQ(plan.removed(), 8);
  ASSERT_FALSE(plan.neurons[0].empty()) << plan.neurons[1].size();
  ASSERT_FALSE(plan.neurons[1].empty()) << plan.neurons[0].size();
  const ShrunkModel shrunk = remove_neurons(config, original, plan);
  Model small(device, shrunk.config);
  ASSERT_EQ(small.num_params(), static_cast<int64_t>(shrunk.params.size()));
  std::copy(shrunk.params.begin(), shrunk.params.end(), small.params().data<float>());
  EXPECT_EQ(small.layers()[0]->output_size() + small.layers()[2]->output_size(), 15 - 8);

  // The reference: the original with the neurons' rows, biases and outgoing columns zeroed.
  Model zeroed(device, config);
  std::copy(original.params().data<float>(),
            original.params().data<float>() + original.num_params(), zeroed.params().data<float>());
  std::map<std::string, Tensor> params;
  for (const NamedParam& param : zeroed.named_params()) params[param.name] = param.value;
  const char* names[] = {"dense0", "dense3", "dense5"};
  for (int h = 0; h < 2; ++h) {
    Tensor& w = params[std::string(names[h]) + "/weight"];
    Tensor& next = params[std::string(names[h + 1]) + "/weight"];
    for (int64_t k : plan.neurons[h]) {
      for (int64_t i = 0; i < w.dim(1); ++i) w.data<float>()[k * w.dim(1) + i] = 0;
      if (h == 0) params["dense0/bias"].data<float>()[k] = 0;
      for (int64_t o = 0; o < next.dim(0); ++o) next.data<float>()[o * next.dim(1) + k] = 0;
    }
  }
  Tensor input(device, {5, 6}, DType::kF32);
  for (int64_t i = 0; i < input.numel(); ++i) input.data<float>()[i] = 2 * dyadic(random);
  const Tensor& expected = zeroed.forward(input, Pass{});
  const Tensor& actual = small.forward(input, Pass{});
  ASSERT_EQ(actual.shape(), expected.shape());
  EXPECT_EQ(std::memcmp(actual.data<float>(), expected.data<float>(), actual.bytes()), 0);
  // And the zeroing mattered: the unpruned original computes something else.
  const Tensor& unpruned = original.forward(input, Pass{});
  EXPECT_NE(std::memcmp(unpruned.data<float>(), expected.data<float>(), expected.bytes()), 0);
}

TEST(RemoveNeurons, SigmoidAndTanhNeuronsAreRemovedWholeToo) {
  // sigmoid(0) = 0.5: a neuron is only gone when its outgoing column is gone too. Arbitrary
  // weights: equal up to float summation order.
  const proto::Config config = parse_config(R"(
    model { input_size: 5
            layer { dense { units: 9 } } layer { activation { kind: SIGMOID } }
            layer { dense { units: 6 } } layer { activation { kind: TANH } }
            layer { dense { units: 4 } } seed: 7 }
    data { train_path: "unused.h5" })",
                                            "p");
  CpuDevice device;
  Model original(device, config);
  const NeuronPlan plan = choose_neurons(config, original, 7);
  const ShrunkModel shrunk = remove_neurons(config, original, plan);
  Model small(device, shrunk.config);
  std::copy(shrunk.params.begin(), shrunk.params.end(), small.params().data<float>());
  Model zeroed(device, config);
  std::copy(original.params().data<float>(),
            original.params().data<float>() + original.num_params(), zeroed.params().data<float>());
  std::map<std::string, Tensor> params;
  for (const NamedParam& param : zeroed.named_params()) params[param.name] = param.value;
  const char* names[] = {"dense0", "dense2", "dense4"};
  for (int h = 0; h < 2; ++h) {
    Tensor& w = params[std::string(names[h]) + "/weight"];
    Tensor& next = params[std::string(names[h + 1]) + "/weight"];
    for (int64_t k : plan.neurons[h]) {
      for (int64_t i = 0; i < w.dim(1); ++i) w.data<float>()[k * w.dim(1) + i] = 0;
      params[std::string(names[h]) + "/bias"].data<float>()[k] = 0;
      for (int64_t o = 0; o < next.dim(0); ++o) next.data<float>()[o * next.dim(1) + k] = 0;
    }
  }
  RandomStream random(4, 0);
  Tensor input(device, {3, 5}, DType::kF32);
  for (int64_t i = 0; i < input.numel(); ++i) {
    input.data<float>()[i] = static_cast<float>(random.uniform() * 2 - 1);
  }
  const Tensor& expected = zeroed.forward(input, Pass{});
  const Tensor& actual = small.forward(input, Pass{});
  for (int64_t i = 0; i < expected.numel(); ++i) {
    EXPECT_NEAR(actual.data<float>()[i], expected.data<float>()[i], 1e-6) << i;
  }
}

TEST(CountNonzero, CountsEveryParameter) {
  const proto::Config config = parse_config(
      "model { input_size: 2 layer { dense { units: 2 } } }\n"
      "data { train_path: \"unused.h5\" }\n",
      "p");
  CpuDevice device;
  Model model(device, config);
  set_param(model, "dense0/weight", {0, 1, -2, 0});
  set_param(model, "dense0/bias", {0, 3});
  EXPECT_EQ(count_nonzero(model), 3);
}

}  // namespace
}  // namespace dpt
