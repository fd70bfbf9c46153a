// Checkpoints and resume through the real trainer (threads as ranks): an interrupted and resumed
// run equals the uninterrupted one bit for bit at the same world size (with dropout and
// shuffling on), and within fp32 reduction-order rounding at another world size; --resume auto
// skips a corrupt newest checkpoint; incompatible configs are refused naming the field;
// retention keeps the newest K plus every Mth.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "launch/checkpoint.h"
#include "launch/checkpoint_dir.h"
#include "train_fixture.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;
using namespace dpt::testing;

class ResumeTest : public RandomDataTest {
 protected:
  ResumeTest() : RandomDataTest("dpt_resume_test_", {{"data.h5", 252, 10, 3, 4}}) {}

  // 252 samples, batch 24 (drop_last false: 11 steps an epoch, the last one of 12), 3 epochs.
  proto::Config config(const std::string& extra = "") {
    const std::string text = R"(
      model {
        input_size: 10
        layer { dense { units: 16 } }
        layer { activation { kind: TANH } }
        layer { dropout { rate: 0.2 } }
        layer { dense { units: 3 } }
      }
      optimizer { lr: 0.01 adamw { weight_decay: 0.01 } schedule { warmup_steps: 5 cosine {} } }
      train { batch_size: 24 epochs: 3 log_every_steps: 4 drop_last: false }
      comm { timeout_s: 300 bucket_mb: 0.0003 }
      checkpoint { every_steps: 4 keep_last: 100 }
    )" + data_text(dir_ + "/data.h5", dir_ + "/data.h5");
    return with(parse_config(text, "resume.prototxt"), extra);
  }
  std::string checkpoints(const std::string& run) { return dir_ + "/" + run + "/checkpoints"; }

  // Trains `run` with `world` ranks, stopped by SIGTERM at `stop_step` (after it), then resumes
  // with `resume_world` ranks to the end.
  void interrupted_run(const std::string& run, int world, int64_t stop_step, int resume_world) {
    const WorldRun first = train_threads(
        world,
        config("fault_injection { rank: 0 kind: FAULT_SIGTERM step: " + std::to_string(stop_step) +
               " }"),
        dir_ + "/" + run, "", true);
    ASSERT_TRUE(first.ok()) << first.errors[0];
    EXPECT_TRUE(first.summaries[0].stopped);
    EXPECT_EQ(first.summaries[0].steps, stop_step + 1);
    EXPECT_TRUE(fs::exists(checkpoints(run) + "/" + checkpoint_file_name(stop_step + 1)));
    EXPECT_FALSE(fs::exists(dir_ + "/" + run + "/model.h5"));
    const WorldRun second = train_threads(resume_world, config(), dir_ + "/" + run, "auto");
    ASSERT_TRUE(second.ok()) << second.errors[0];
    EXPECT_EQ(second.summaries[0].first_step, stop_step + 1);
    EXPECT_EQ(second.summaries[0].steps, 33);
  }
};

TEST_F(ResumeTest, SameWorldSizeResumesBitwiseIdenticallyAtEveryLaterCheckpoint) {
  for (int world : {1, 2}) {
    const std::string straight = "straight" + std::to_string(world);
    const std::string resumed = "resumed" + std::to_string(world);
    ASSERT_TRUE(train_threads(world, config(), dir_ + "/" + straight).ok());
    interrupted_run(resumed, world, 5, world);  // mid-epoch, between two periodic saves
    EXPECT_EQ(read_values(dir_ + "/" + resumed + "/model.h5"),
              read_values(dir_ + "/" + straight + "/model.h5"))
        << world << " ranks";
    // Every checkpoint after the interruption: parameters and optimizer state, bit for bit.
    int compared = 0;
    for (const CheckpointEntry& entry : list_checkpoints(checkpoints(resumed))) {
      if (entry.step <= 6) continue;
      const std::string twin = checkpoints(straight) + "/" + checkpoint_file_name(entry.step);
      ASSERT_TRUE(fs::exists(twin)) << twin;
      EXPECT_EQ(read_values(entry.path), read_values(twin)) << entry.path;
      const TrainState a = read_checkpoint(entry.path).state, b = read_checkpoint(twin).state;
      EXPECT_EQ(a.epoch, b.epoch);
      EXPECT_EQ(a.step_in_epoch, b.step_in_epoch);
      EXPECT_EQ(a.optimizer_steps, b.optimizer_steps);
      ++compared;
    }
    EXPECT_GE(compared, 6);
  }
}

TEST_F(ResumeTest, OtherWorldSizesContinueWithTheSameGlobalBatchToFp32Rounding) {
  ASSERT_TRUE(train_threads(1, config(), dir_ + "/straight").ok());
  const std::vector<float> reference = read_values(dir_ + "/straight/model.h5");
  // 4 -> 2 and 2 -> 3 ranks. The bound: as in data_parallel_test, only the order of fp32 sums
  // differs (shards of 6, 12 or 8 rows), ~1e-7 relative per step; 2e-5 after 33 Adam steps.
  interrupted_run("four_to_two", 4, 10, 2);
  EXPECT_LT(worst_relative_difference(read_values(dir_ + "/four_to_two/model.h5"), reference),
            2e-5);
  interrupted_run("two_to_three", 2, 16, 3);
  EXPECT_LT(worst_relative_difference(read_values(dir_ + "/two_to_three/model.h5"), reference),
            2e-5);
}

TEST_F(ResumeTest, AutoSkipsACorruptNewestCheckpointAndPathRefusesIt) {
  ASSERT_TRUE(train_threads(1, config("train { max_steps: 12 }"), dir_ + "/run").ok());
  const std::vector<CheckpointEntry> saved = list_checkpoints(checkpoints("run"));
  ASSERT_EQ(saved.back().step, 12);
  // Truncate the newest: auto must fall back to step 11 (the epoch-end save).
  fs::resize_file(saved.back().path, fs::file_size(saved.back().path) / 2);
  const WorldRun path_run = train_threads(1, config(), dir_ + "/run", saved.back().path);
  EXPECT_EQ(path_run.kinds[0], ErrorKind::kCheckpoint);
  EXPECT_NE(path_run.errors[0].find(saved.back().path), std::string::npos) << path_run.errors[0];
  const WorldRun resumed = train_threads(1, config(), dir_ + "/run", "auto");
  ASSERT_TRUE(resumed.ok()) << resumed.errors[0];
  EXPECT_EQ(resumed.summaries[0].first_step, 11);
  EXPECT_EQ(resumed.summaries[0].steps, 33);
}

TEST_F(ResumeTest, ResumeRefusesAChangedModelOrBatchButTakesSafeChanges) {
  ASSERT_TRUE(train_threads(1, config("train { max_steps: 8 }"), dir_ + "/run").ok());
  struct Case {
    std::string change, expected;
  };
  const std::vector<Case> cases = {
      {"train { batch_size: 12 }", "train.batch_size (checkpoint: 24, config: 12)"},
      {"train { seed: 9 }", "train.seed"},
      {"optimizer { sgd {} }", "optimizer.kind (checkpoint: adamw, config: sgd)"},
      {"optimizer { adamw { beta1: 0.8 } }", "optimizer.adamw.beta1"},
  };
  for (const Case& c : cases) {
    const WorldRun run = train_threads(1, config(c.change), dir_ + "/run", "auto");
    EXPECT_EQ(run.kinds[0], ErrorKind::kCheckpoint) << c.change;
    EXPECT_NE(run.errors[0].find("cannot resume with a different " + c.expected), std::string::npos)
        << run.errors[0];
  }
  // A different layer width: both shapes named (the config check names the field first).
  proto::Config wider_config = config();
  wider_config.mutable_model()->mutable_layer(0)->mutable_dense()->set_units(20);
  const WorldRun wider = train_threads(1, wider_config, dir_ + "/run", "auto");
  EXPECT_NE(wider.errors[0].find("model.layer[0].dense.units (checkpoint: 16, config: 20)"),
            std::string::npos)
      << wider.errors[0];
  // Safe: more steps, another lr, another log cadence.
  const WorldRun longer =
      train_threads(1, config("train { max_steps: 12 log_every_steps: 3 } optimizer { lr: 0.02 }"),
                    dir_ + "/run", "auto");
  ASSERT_TRUE(longer.ok()) << longer.errors[0];
  EXPECT_EQ(longer.summaries[0].first_step, 8);
  EXPECT_EQ(longer.summaries[0].steps, 12);
}

TEST_F(ResumeTest, FreshRunIntoADirectoryWithCheckpointsIsRefused) {
  ASSERT_TRUE(train_threads(1, config("train { max_steps: 4 }"), dir_ + "/run").ok());
  const WorldRun again = train_threads(1, config(), dir_ + "/run");
  EXPECT_EQ(again.kinds[0], ErrorKind::kConfig);
  EXPECT_NE(again.errors[0].find("pass --resume auto"), std::string::npos) << again.errors[0];
}

TEST_F(ResumeTest, RetentionKeepsTheNewestKAndEveryMth) {
  ASSERT_TRUE(train_threads(1,
                            config("checkpoint { every_steps: 1 every_epochs: 0 keep_last: 3 "
                                   "keep_every_steps: 10 }"),
                            dir_ + "/run")
                  .ok());
  std::vector<int64_t> steps;
  for (const CheckpointEntry& entry : list_checkpoints(checkpoints("run"))) {
    steps.push_back(entry.step);
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{10, 20, 30, 31, 32, 33}));
}

TEST_F(ResumeTest, UnwritableCheckpointDirectoryFailsBeforeTraining) {
  fs::create_directories(dir_ + "/run");
  std::ofstream(dir_ + "/run/checkpoints") << "a file where the directory should be";
  const WorldRun run = train_threads(1, config(), dir_ + "/run");
  EXPECT_EQ(run.kinds[0], ErrorKind::kIo);
  EXPECT_NE(run.errors[0].find("checkpoints"), std::string::npos) << run.errors[0];
  EXPECT_FALSE(fs::exists(dir_ + "/run/metrics.jsonl"));
}

}  // namespace
}  // namespace dpt
