// Unequal shares give the homogeneous update: TrainStep with hand-chosen uneven shards (one row,
// none, several micro-batches) returns the 1-rank gradient and loss; the real trainer with
// comm.balance: BALANCE_THROUGHPUT and one rank on a slower device gives that rank fewer rows and
// still trains the 1-rank weights (same tolerance as data_parallel_test: 2e-5 * max(1, |w|)); a
// resume keeps the checkpoint's shares, and another world size measures again; device settings
// may differ between ranks. The slower device is a CPU whose phase clock charges set durations
// (fake_phase_clock.h), so the shares are exact: a slowed rank that sleeps (FAULT_SLOW_SAMPLES)
// is measured by the wall clock, which a loaded machine stretches for the other ranks too.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fake_phase_clock.h"
#include "launch/balance.h"
#include "launch/checkpoint.h"
#include "launch/train_step.h"
#include "optim/optimizer.h"
#include "train_fixture.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;
using namespace dpt::testing;
using Counts = std::vector<int64_t>;

// One step's gradient and loss from `shards` (one per rank) of a 24-row batch, rank 0's copy.
struct Gradient {
  std::vector<float> grads;
  double loss = 0;
};

Gradient step_gradient(const std::vector<Shard>& shards) {
  const proto::Config config = parse_config(R"(
      model {
        input_size: 6
        layer { dense { units: 10 } }
        layer { activation { kind: GELU } }
        layer { dropout { rate: 0.25 } }
        layer { dense { units: 3 } }
      }
      optimizer { sgd {} }
      train { batch_size: 24 micro_batch_size: 4 }
      comm { bucket_mb: 0.0001 timeout_s: 20 }
      data { train_path: "unused.h5" })",
                                            "step.prototxt");
  // Row i of the global batch is a fixed function of i, whichever rank loads it.
  const BatchSource source = [](int64_t row, int64_t n, Tensor& inputs, int32_t* labels) {
    float* x = inputs.data<float>();
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < 6; ++j) x[i * 6 + j] = std::sin(0.7f * (row + i) + 1.3f * j);
      labels[i] = static_cast<int32_t>((row + i) % 3);
    }
  };
  const int world = static_cast<int>(shards.size());
  ThreadWorld thread_world(world, CommOptions{20.0});
  Gradient result;
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      auto comm = thread_world.communicator(rank);
      CpuDevice device(CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn});
      Model model(device, config);
      model.init_params();
      auto optimizer = make_optimizer(device, config.optimizer(), model.num_params());
      TrainStep step(model, *optimizer, config, *comm);
      const StepResult out = step.compute_gradients(3, 24, shards[rank], source);
      if (rank != 0) return;
      const float* g = model.grads().data<float>();
      result.grads.assign(g, g + model.num_params());
      result.loss = out.loss;
    });
  }
  for (auto& thread : threads) thread.join();
  return result;
}

TEST(BalancedStep, UnequalSharesGiveTheOneRankGradient) {
  const Gradient reference = step_gradient({{0, 24}});
  const std::vector<std::vector<Shard>> splits = {
      {{0, 1}, {1, 17}, {17, 24}},  // one row; 16 rows in 4 micro-batches; 7 rows as 4 + 3
      {{0, 0}, {0, 23}, {23, 24}},  // a rank with no rows still joins the sum
      {{0, 12}, {12, 24}},          // the equal split
  };
  for (const std::vector<Shard>& split : splits) {
    const Gradient g = step_gradient(split);
    const double worst = worst_relative_difference(g.grads, reference.grads);
    EXPECT_LT(worst, 1e-6) << split.size() << " ranks, rank 0 has " << split[0].end - split[0].begin
                           << " rows";
    EXPECT_NEAR(g.loss, reference.loss, 1e-6 * std::fabs(reference.loss));
  }
}

class BalanceTrainTest : public SmallRunTest {
 protected:
  BalanceTrainTest() : SmallRunTest("dpt_balance_test_") {}

  // Balanced after 1 warm-up and 2 measured steps.
  proto::Config config(const std::string& extra = "") {
    const std::string blocks = R"(
      comm { timeout_s: 300 bucket_mb: 0.0005 balance: BALANCE_THROUGHPUT
             balance_warmup_steps: 1 balance_steps: 2 })";
    return with(small_run_config(blocks, "balance.prototxt"), extra);
  }

  // Trains `name` with `world` ranks; rank `slow` (-1: none) on a device 20x slower than the
  // others': 20 ms against 1 ms for each lap of data, forward and backward (a micro-batch laps
  // data twice, so 80 ms against 4 ms).
  WorldRun run(int world, const proto::Config& cfg, const std::string& name,
               const std::string& resume = "", int slow = 1) {
    const MakeDevice devices = [slow](int rank) {
      const double lap = rank == slow ? 20e-3 : 1e-3;
      return std::make_unique<CpuWithFakeClock>(std::vector<double>{lap, lap, lap});
    };
    WorldRun result = train_threads(world, cfg, dir_ + "/" + name, resume, false, devices);
    for (int rank = 0; rank < world; ++rank) EXPECT_EQ(result.errors[rank], "") << "rank " << rank;
    for (const TrainSummary& summary : result.summaries) {
      EXPECT_EQ(summary.balance_shares, result.summaries[0].balance_shares);
    }
    return result;
  }
  std::vector<float> weights(const std::string& name) {
    return read_values(dir_ + "/" + name + "/model.h5");
  }
  // The "balance" records of a run's metrics.jsonl.
  int balance_records(const std::string& name) {
    std::ifstream in(dir_ + "/" + name + "/metrics.jsonl");
    int count = 0;
    for (std::string line; std::getline(in, line);) {
      count += line.find("\"kind\":\"balance\"") != std::string::npos ? 1 : 0;
    }
    return count;
  }
};

TEST_F(BalanceTrainTest, ASlowedRankGetsFewerRowsAndTheModelIsTheOneRankModel) {
  run(1, config(), "one");
  const WorldRun two = run(2, config(), "two");
  const Counts& shares = two.summaries[0].balance_shares;
  ASSERT_EQ(shares.size(), 2u);
  // 12 rows each while measuring: 3000 and 150 samples/s, so 24 rows split 22.86 : 1.14.
  EXPECT_EQ(shares, (Counts{23, 1}));
  EXPECT_EQ(balance_records("two"), 1);
  const double worst = worst_relative_difference(weights("two"), weights("one"));
  EXPECT_LT(worst, 2e-5);
  EXPECT_GT(worst, 0.0) << "suspicious: 2 ranks bit-identical to 1 rank";
}

TEST_F(BalanceTrainTest, RebalancingAnUnevenBatchWithMicroBatchesStillMatches) {
  // Batch 35 is not divisible by 3 ranks (allowed when balanced); 240 = 6 x 35 + a last batch
  // of 30, split in the shares' proportions; micro-batches of 5 rows.
  const proto::Config cfg = config(
      "train { batch_size: 35 micro_batch_size: 5 drop_last: false } "
      "comm { rebalance_every_steps: 3 }");
  run(1, cfg, "one");
  const WorldRun three = run(3, cfg, "three", "", 2);
  const Counts& shares = three.summaries[0].balance_shares;
  ASSERT_EQ(shares.size(), 3u);
  EXPECT_LT(shares[2], shares[0]);
  EXPECT_LT(shares[2], shares[1]);
  EXPECT_EQ(balance_records("three"), 4) << "steps 3, 6, 9 and 12 of 14";
  EXPECT_LT(worst_relative_difference(weights("three"), weights("one")), 2e-5);
  for (const TrainSummary& summary : three.summaries) {
    ASSERT_TRUE(summary.last_eval.has_value());
    EXPECT_NEAR(summary.last_eval->loss, three.summaries[0].last_eval->loss, 1e-12);
  }
}

TEST_F(BalanceTrainTest, ResumeKeepsTheSharesAndAnotherWorldSizeMeasuresAgain) {
  run(1, config(), "one");
  const WorldRun first = run(2, config("train { max_steps: 8 }"), "two");
  const Counts saved = first.summaries[0].balance_shares;
  EXPECT_EQ(saved, (Counts{23, 1}));
  EXPECT_EQ(
      read_checkpoint(dir_ + "/two/checkpoints/" + checkpoint_file_name(8)).state.balance_shares,
      saved);
  fs::copy(dir_ + "/two", dir_ + "/three", fs::copy_options::recursive);

  // Without the slow device a new measurement would give 12 rows each: the shares that
  // continue are the checkpoint's.
  const WorldRun resumed = run(2, config(), "two", "auto", -1);
  EXPECT_EQ(resumed.summaries[0].first_step, 8);
  EXPECT_EQ(resumed.summaries[0].balance_shares, saved);
  EXPECT_EQ(balance_records("two"), 1) << "the first run's, kept";
  EXPECT_LT(worst_relative_difference(weights("two"), weights("one")), 2e-5);

  // 2 -> 3 ranks: step 9 warms up, steps 10-11 are measured (rank 1 slow once more): 8 rows
  // each at 2000, 100 and 2000 samples/s give 11.7, 0.6 and 11.7 rows; rank 1 takes one of
  // rank 0's.
  const WorldRun wider = run(3, config(), "three", "auto");
  EXPECT_EQ(wider.summaries[0].balance_shares, (Counts{11, 1, 12}));
  EXPECT_EQ(balance_records("three"), 2);
  EXPECT_LT(worst_relative_difference(weights("three"), weights("one")), 2e-5);
}

TEST_F(BalanceTrainTest, DeviceSettingsMayDifferBetweenRanks) {
  ThreadWorld world(2, CommOptions{300.0});
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      auto comm = world.communicator(rank);
      try {
        CpuDevice device(CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn});
        TrainListener quiet;
        const std::string device_text =
            rank == 0 ? "device { threads: 2 cpu_gemm: OPENBLAS }" : "device { threads: 1 }";
        train(config(device_text + " train { max_steps: 4 }"), device, *comm, dir_ + "/dev", quiet);
      } catch (const Error& e) {
        errors[static_cast<std::size_t>(rank)] = e.what();
        comm->abort(e.exit_code());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
}

}  // namespace
}  // namespace dpt
