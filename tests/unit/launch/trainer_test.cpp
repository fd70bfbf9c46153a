// Trainer tests on a small synthetic dataset the test writes itself: the loss falls and the run
// directory is complete, runs are bitwise deterministic, gradient accumulation equals the full
// batch, non-finite steps stop or are skipped as configured, and data that does not fit the config
// is refused naming the field.
#include "launch/trainer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/array_file.h"
#include "core/config.h"
#include "core/random.h"
#include "devices/cpu_device.h"
#include "devices/error.h"
#include "temp_dir.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;

class TrainerTest : public testing::TempDirTest {
 protected:
  TrainerTest() : TempDirTest("dpt_trainer_test_") {}
  void SetUp() override {
    TempDirTest::SetUp();
    // 3 classes of 4x4 images: class c lights up row c, plus noise everywhere.
    const int64_t n = 300;
    std::vector<uint8_t> images(static_cast<std::size_t>(n * 16));
    std::vector<int32_t> labels(static_cast<std::size_t>(n));
    RandomStream random(5, 0);
    for (int64_t i = 0; i < n; ++i) {
      labels[i] = static_cast<int32_t>(i % 3);
      for (int64_t j = 0; j < 16; ++j) {
        const bool lit = j / 4 == labels[i];
        images[i * 16 + j] = static_cast<uint8_t>((lit ? 150 : 0) + random.below(100));
      }
    }
    write_dataset(dir_ + "/train.h5", images, {n, 4, 4}, labels, 3);
    write_dataset(dir_ + "/test.h5", images, {n, 4, 4}, labels, 3);
  }

  proto::Config config(const std::string& extra = "") {
    std::string text = R"(
      model {
        input_size: 16
        layer { dense { units: 32 } }
        layer { activation { kind: RELU } }
        layer { dropout { rate: 0.1 } }
        layer { dense { units: 3 } }
      }
      optimizer { lr: 0.01 adam {} }
      train { batch_size: 30 epochs: 4 log_every_steps: 5 }
      data { train_path: ")" +
                       dir_ + R"(/train.h5" test_path: ")" + dir_ + R"(/test.h5" }
    )";
    return parse_config(text, "test.prototxt", split(extra));
  }

  static std::vector<std::string> split(const std::string& overrides) {
    std::vector<std::string> list;
    std::istringstream stream(overrides);
    for (std::string item; stream >> item;) list.push_back(item);
    return list;
  }

  TrainSummary run(const proto::Config& cfg, const std::string& run_dir,
                   TrainListener* listener = nullptr) {
    TrainListener quiet;
    auto comm = make_communicator(cfg.comm());
    return train(cfg, device_, *comm, run_dir, listener ? *listener : quiet);
  }

  std::vector<float> weights(const std::string& run_dir) {
    std::vector<float> all;
    for (const Array& a : read_array_file(run_dir + "/model.h5").arrays) {
      all.insert(all.end(), a.values.begin(), a.values.end());
    }
    return all;
  }

  template <typename F>
  Error expect_error(F&& body) {
    try {
      body();
    } catch (const Error& e) {
      return e;
    }
    ADD_FAILURE() << "expected a dpt::Error";
    return Error(ErrorKind::kInternal, "");
  }

  CpuDevice device_;
};

TEST_F(TrainerTest, LossFallsAndTheRunDirectoryIsComplete) {
  const proto::Config cfg = config();
  TrainSummary summary = run(cfg, dir_ + "/run");
  EXPECT_EQ(summary.steps, 4 * 10);
  ASSERT_TRUE(summary.last_eval.has_value());
  EXPECT_GT(summary.last_eval->accuracy, 0.95);

  std::ifstream metrics(dir_ + "/run/metrics.jsonl");
  std::vector<nlohmann::json> train_records, eval_records;
  for (std::string line; std::getline(metrics, line);) {
    nlohmann::json record = nlohmann::json::parse(line);
    (record["kind"] == "train" ? train_records : eval_records).push_back(record);
  }
  ASSERT_EQ(train_records.size(), 8u);
  ASSERT_EQ(eval_records.size(), 4u);
  for (const char* key : {"step", "epoch", "loss", "lr", "samples_per_s"}) {
    EXPECT_TRUE(train_records[0].contains(key)) << key;
  }
  for (const char* key : {"step", "epoch", "test_loss", "test_accuracy"}) {
    EXPECT_TRUE(eval_records[0].contains(key)) << key;
  }
  EXPECT_EQ(train_records[0]["step"], 5);
  EXPECT_EQ(eval_records.back()["epoch"], 3);
  EXPECT_LT(train_records.back()["loss"].get<double>(),
            0.5 * train_records.front()["loss"].get<double>());

  // The copied config is the resolved one and parses back to the same message.
  std::ifstream copied(dir_ + "/run/config.prototxt");
  std::string text((std::istreambuf_iterator<char>(copied)), std::istreambuf_iterator<char>());
  EXPECT_EQ(parse_config(text, "copy").SerializeAsString(), cfg.SerializeAsString());
}

TEST_F(TrainerTest, StartsFromGivenParametersCallsAfterUpdateAndHandsBackTheResult) {
  // Tiny lr: the final weights stay next to where training started.
  const proto::Config cfg = config("optimizer.lr=1e-6 train.max_steps=6");
  Model fresh(device_, cfg);
  const float* init = fresh.params().data<float>();
  std::vector<float> start(init, init + fresh.num_params());
  for (float& value : start) value += 1.0f;  // far from the seeded initialisation
  std::vector<float> final_params;
  int calls = 0;
  TrainOptions options;
  options.initial_params = &start;
  options.final_params = &final_params;
  options.after_update = [&](Tensor& params) {
    ++calls;
    params.data<float>()[0] = 7.0f;  // what the hook writes is what training goes on with
  };
  TrainListener quiet;
  auto comm = make_communicator(cfg.comm());
  const TrainSummary summary = train(cfg, device_, *comm, dir_ + "/run", quiet, options);
  EXPECT_EQ(summary.steps, 6);
  EXPECT_EQ(calls, 6);
  ASSERT_EQ(final_params.size(), start.size());
  EXPECT_EQ(final_params[0], 7.0f);
  double worst = 0.0;
  for (std::size_t i = 1; i < start.size(); ++i) {
    worst = std::max(worst, std::fabs(double(final_params[i]) - start[i]));
  }
  EXPECT_LT(worst, 1e-4);
  EXPECT_EQ(weights(dir_ + "/run"), final_params);
  // The wrong number of values is refused before training.
  start.pop_back();
  EXPECT_THROW(train(cfg, device_, *comm, dir_ + "/bad", quiet, options), Error);
}

TEST_F(TrainerTest, SameConfigAndSeedGiveBitwiseIdenticalWeights) {
  run(config(), dir_ + "/a");
  run(config(), dir_ + "/b");
  EXPECT_EQ(weights(dir_ + "/a"), weights(dir_ + "/b"));
  run(config("train.seed=2"), dir_ + "/c");
  EXPECT_NE(weights(dir_ + "/a"), weights(dir_ + "/c"));
}

TEST_F(TrainerTest, GradientAccumulationMatchesTheFullBatch) {
  const std::string common = "model.layer[2].dropout.rate=0 optimizer={lr:0.05,sgd{momentum:0.9}}";
  run(config(common), dir_ + "/full");
  run(config(common + " train.micro_batch_size=10"), dir_ + "/micro");
  std::vector<float> full = weights(dir_ + "/full"), micro = weights(dir_ + "/micro");
  ASSERT_EQ(full.size(), micro.size());
  for (std::size_t i = 0; i < full.size(); ++i) {
    EXPECT_NEAR(full[i], micro[i], 1e-4 * std::max(1.0f, std::fabs(full[i]))) << i;
  }
}

TEST_F(TrainerTest, NonFiniteLossStopsNamingTheStep) {
  Error e = expect_error([&] { run(config("optimizer.lr=1e30 optimizer.sgd={}"), dir_ + "/r"); });
  EXPECT_EQ(e.kind(), ErrorKind::kNonFinite);
  EXPECT_NE(std::string(e.what()).find("step 1 (epoch 0)"), std::string::npos) << e.what();
  EXPECT_FALSE(fs::exists(dir_ + "/r/model.h5"));  // never save non-finite weights
}

struct SkipCounter : TrainListener {
  void on_skip(int64_t, const std::string&) override { ++skips; }
  int skips = 0;
};

TEST_F(TrainerTest, SkipPolicyCountsAndGivesUpAfterTheLimit) {
  SkipCounter counter;
  Error e = expect_error([&] {
    run(config("optimizer.lr=1e30 optimizer.sgd={} train.on_non_finite=SKIP "
               "train.max_consecutive_skips=3"),
        dir_ + "/r", &counter);
  });
  EXPECT_EQ(e.kind(), ErrorKind::kNonFinite);
  EXPECT_NE(std::string(e.what()).find("for 4 steps in a row"), std::string::npos) << e.what();
  EXPECT_EQ(counter.skips, 3);
}

TEST_F(TrainerTest, DataThatDoesNotFitTheConfigNamesTheField) {
  Error e = expect_error([&] { run(config("model.input_size=15"), dir_ + "/r"); });
  EXPECT_EQ(e.kind(), ErrorKind::kConfig);
  EXPECT_NE(std::string(e.what()).find("model.input_size: 15 does not match"), std::string::npos)
      << e.what();
  e = expect_error([&] { run(config("model.layer[3].dense.units=4"), dir_ + "/r"); });
  EXPECT_NE(std::string(e.what()).find("model.layer[3]: the last layer has 4 outputs but"),
            std::string::npos)
      << e.what();
  e = expect_error([&] { run(config("train.batch_size=600"), dir_ + "/r"); });
  EXPECT_NE(std::string(e.what()).find("train.batch_size: 600 is larger than the 300 samples"),
            std::string::npos)
      << e.what();
}

TEST_F(TrainerTest, UnwritableRunDirectoryFailsBeforeTraining) {
  std::ofstream(dir_ + "/file") << "x";
  Error e = expect_error([&] { run(config(), dir_ + "/file/run"); });
  EXPECT_EQ(e.kind(), ErrorKind::kIo);
  EXPECT_NE(std::string(e.what()).find(dir_ + "/file/run"), std::string::npos) << e.what();
}

}  // namespace
}  // namespace dpt
