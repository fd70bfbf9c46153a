// Prune-and-retrain tests (launch/prune_finetune.h) on a small synthetic dataset: pruned weights
// stay exactly zero through fine-tuning by the real trainer while the others move (and without
// the mask they would not stay zero), the trainer starts from the given parameters, rounds follow
// the schedule, structured rounds shrink the model and train it, two ranks as threads give the
// one-rank result, and the fine-tuning config is what the rounds need.
#include "launch/prune_finetune.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "train_fixture.h"

namespace dpt {
namespace {

using testing::with;

class PruneFinetuneTest : public testing::RandomDataTest {
 protected:
  PruneFinetuneTest() : RandomDataTest("prune_finetune_test_", {{"data.h5", 240, 12, 3, 5}}) {}

  proto::Config config(const std::string& compress) {
    return parse_config(R"(
      model { input_size: 12
              layer { dense { units: 16 } } layer { activation { kind: TANH } }
              layer { dense { units: 10 } } layer { activation { kind: TANH } }
              layer { dense { units: 3 } } }
      optimizer { lr: 0.01 adam {} }
      train { batch_size: 24 epochs: 2 log_every_steps: 5 }
      monitor { tensorboard: false }
      device { threads: 1 }
    )" + testing::data_text(dir_ + "/data.h5", dir_ + "/data.h5") +
                            "compress { " + compress + " }",
                        "test.prototxt");
  }

  // A trained model's state, nothing pruned.
  PruneState trained(const proto::Config& cfg) {
    auto comm = make_communicator(cfg.comm());
    std::vector<float> params;
    TrainOptions options;
    options.final_params = &params;
    TrainListener quiet;
    train(cfg, device_, *comm, dir_ + "/base", quiet, options);
    const std::unique_ptr<Model> model = build_model(device_, cfg, params);
    return start_pruning(cfg, *model);
  }

  CpuDevice device_{CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn}};
};

TEST_F(PruneFinetuneTest, PrunedWeightsStayExactlyZeroWhileTheOthersTrain) {
  const proto::Config cfg = config("prune { sparsity: 0.7 iterations: 2 finetune_steps: 15 }");
  PruneState state = trained(cfg);
  const std::vector<float> before = state.params;
  std::vector<PruneRound> rounds;
  auto comm = make_communicator(cfg.comm());
  TrainListener quiet;
  // Weights after round 1's pruning, to compare with what round 1's fine-tuning made of them.
  prune_to(state, device_, scheduled_sparsity(0.7, 1, 2));
  const std::vector<float> pruned_round1 = state.params;
  state = start_pruning(cfg, *build_model(device_, cfg, before));
  std::vector<float> after_round1;  // the weights round 2 starts from, before its pruning
  prune_and_finetune(state, device_, *comm, dir_ + "/tune", quiet, [&](const PruneRound& round) {
    rounds.push_back(round);
    if (round.round == 1) after_round1 = state.params;
  });
  ASSERT_EQ(rounds.size(), 2u);
  EXPECT_NEAR(rounds[0].sparsity, 0.7 * 7 / 8, 0.01);
  EXPECT_DOUBLE_EQ(rounds[1].sparsity, static_cast<double>(state.mask.pruned) /
                                           static_cast<double>(state.mask.prunable));
  EXPECT_EQ(rounds[0].steps, 15);
  EXPECT_EQ(rounds[1].steps, 15);
  ASSERT_TRUE(rounds[1].eval.has_value());

  // 12*16 + 16*10 + 10*3 = 382 weights; round(0.7 * 382) = 267 pruned.
  EXPECT_EQ(state.mask.prunable, 382);
  EXPECT_EQ(state.mask.pruned, 267);
  // Round 2's fine-tuning moves every kept entry, except those of neurons that gradients cannot
  // reach: a hidden neuron whose outgoing weights are all pruned (or lead only to such neurons) has
  // zero gradient, and Adam (no weight decay) leaves its incoming weights and bias as they were.
  // Flat layout: W0 [16, 12] at 0, b0 at 192, W1 [10, 16] at 208, b1 at 368, W2 [3, 10] at 378.
  auto kept_at = [&](int64_t i) { return state.mask.keep[static_cast<std::size_t>(i)] != 0; };
  std::vector<bool> live1(10, false), live0(16, false);
  for (int j = 0; j < 10; ++j) {
    for (int o = 0; o < 3; ++o) live1[j] = live1[j] || kept_at(378 + o * 10 + j);
  }
  for (int k = 0; k < 16; ++k) {
    for (int j = 0; j < 10; ++j) live0[k] = live0[k] || (kept_at(208 + j * 16 + k) && live1[j]);
  }
  std::vector<bool> frozen(state.params.size(), false);
  for (int k = 0; k < 16; ++k) {
    for (int i = 0; i < 12 && !live0[k]; ++i) frozen[k * 12 + i] = true;
    frozen[192 + k] = !live0[k];
  }
  for (int j = 0; j < 10; ++j) {
    for (int k = 0; k < 16 && !live1[j]; ++k) frozen[208 + j * 16 + k] = true;
    frozen[368 + j] = !live1[j];
  }
  ASSERT_EQ(state.params.size(), 411u);
  for (std::size_t i = 0; i < state.params.size(); ++i) {
    if (!state.mask.keep[i]) {
      EXPECT_EQ(state.params[i], 0.0f) << i;
    } else if (frozen[i]) {
      EXPECT_EQ(state.params[i], after_round1[i]) << i;
    } else {
      EXPECT_NE(state.params[i], after_round1[i]) << i;
    }
  }
  // The file the trainer wrote for the last round holds the same masked weights.
  const std::vector<float> saved = testing::read_values(dir_ + "/tune/round_2/model.h5");
  EXPECT_EQ(saved, state.params);

  // Without re-applying the mask, training revives pruned weights: the mask is what holds them.
  TrainOptions options;
  options.initial_params = &pruned_round1;
  std::vector<float> unmasked;
  options.final_params = &unmasked;
  train(finetune_config(cfg, 15, 1), device_, *comm, dir_ + "/unmasked", quiet, options);
  int64_t revived = 0;
  for (std::size_t i = 0; i < unmasked.size(); ++i) {
    revived += pruned_round1[i] == 0.0f && unmasked[i] != 0.0f ? 1 : 0;
  }
  EXPECT_GT(revived, 100);
}

TEST_F(PruneFinetuneTest, StructuredRoundsShrinkTheModelAndTrainIt) {
  const proto::Config cfg =
      config("prune { sparsity: 0.5 structure: STRUCTURED iterations: 2 finetune_steps: 10 }");
  PruneState state = trained(cfg);
  EXPECT_EQ(state.hidden_original, 26);
  auto comm = make_communicator(cfg.comm());
  TrainListener quiet;
  std::vector<int64_t> hidden;
  prune_and_finetune(state, device_, *comm, dir_ + "/tune", quiet,
                     [&](const PruneRound&) { hidden.push_back(state.hidden); });
  // round(26 * 0.5 * 7/8) = 11 removed, then round(26 * 0.5) = 13.
  EXPECT_EQ(hidden, (std::vector<int64_t>{15, 13}));
  EXPECT_DOUBLE_EQ(state.sparsity(), 0.5);
  const auto& layers = state.config.model().layer();
  EXPECT_EQ(layers[0].dense().units() + layers[2].dense().units(), 13);
  EXPECT_GE(layers[0].dense().units(), 1);
  EXPECT_EQ(layers[4].dense().units(), 3);
  // The round's run trained exactly this architecture and these are its final weights.
  EXPECT_EQ(testing::read_values(dir_ + "/tune/round_2/model.h5"), state.params);
}

TEST_F(PruneFinetuneTest, TwoRanksAsThreadsMatchOneRank) {
  const proto::Config cfg = config("prune { sparsity: 0.6 iterations: 1 finetune_steps: 12 }");
  PruneState start = trained(cfg);
  PruneState one = start;
  {
    auto comm = make_communicator(cfg.comm());
    TrainListener quiet;
    prune_and_finetune(one, device_, *comm, dir_ + "/one", quiet, {});
  }
  ThreadWorld world(2, CommOptions{60});
  std::vector<PruneState> states(2, start);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      CpuDevice device(CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn});
      TrainListener quiet;
      prune_and_finetune(states[rank], device, *world.communicator(rank), dir_ + "/two", quiet, {});
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(states[0].params, states[1].params);
  EXPECT_LT(testing::worst_relative_difference(states[0].params, one.params), 2e-5);
  for (std::size_t i = 0; i < one.params.size(); ++i) {
    if (!one.mask.keep[i]) {
      EXPECT_EQ(states[0].params[i], 0.0f) << i;
    }
  }
}

TEST(FinetuneConfig, RunsExactlyTheStepsWithTheScheduleOverThemAndNoCheckpoints) {
  const proto::Config cfg = parse_config(R"(
      name: "m"
      model { input_size: 2 layer { dense { units: 2 } } }
      data { train_path: "t.h5" }
      optimizer { schedule { warmup_steps: 5 cosine {} } }
      train { epochs: 20 seed: 4 })",
                                         "p");
  const proto::Config tune = finetune_config(cfg, 300, 2);
  EXPECT_EQ(tune.name(), "m-finetune-round-2");
  EXPECT_EQ(tune.train().max_steps(), 300);
  EXPECT_GE(tune.train().epochs(), 300);
  EXPECT_EQ(tune.train().seed(), 6u);
  EXPECT_EQ(tune.optimizer().schedule().total_steps(), 300);
  EXPECT_EQ(tune.optimizer().schedule().warmup_steps(), 5);
  EXPECT_TRUE(tune.optimizer().schedule().has_cosine());
  EXPECT_FALSE(tune.checkpoint().at_end());
  EXPECT_EQ(tune.checkpoint().every_epochs(), 0);
  EXPECT_EQ(tune.checkpoint().every_steps(), 0);
  validate_config(tune, "tune");
}

}  // namespace
}  // namespace dpt
