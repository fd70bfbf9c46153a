// The step's phase times are the device's (devices/device.h PhaseClock), not host laps: with a
// CPU device whose clock charges set durations (fake_phase_clock.h), TrainStep reports exactly
// those per phase, whatever the host took; and a whole data-parallel run hands them on to what
// consumes them: the metrics' phase split, the straggler windows' wait and comm.balance's
// samples/s and shares (a rank whose device is slower gets fewer rows though both hosts are the
// same).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "fake_phase_clock.h"
#include "launch/train_step.h"
#include "optim/optimizer.h"
#include "train_fixture.h"

namespace dpt {
namespace {

using namespace dpt::testing;

// One lap of data, forward, backward, sync, norm, optimizer (seconds; a host step takes ms).
const std::vector<double> kLap = {1, 2, 4, 8, 16, 32};

// Step 0 of a 24-row batch in micro-batches of 12 on `world` ranks; rank 0's times.
StepTimes step_times(int world) {
  const proto::Config config = parse_config(R"(
      model { input_size: 6 layer { dense { units: 5 } } layer { dense { units: 3 } } }
      optimizer { sgd {} }
      train { batch_size: 24 micro_batch_size: 12 }
      comm { timeout_s: 20 }
      data { train_path: "unused.h5" })",
                                            "phases.prototxt");
  const BatchSource source = [](int64_t row, int64_t n, Tensor& inputs, int32_t* labels) {
    float* x = inputs.data<float>();
    for (int64_t i = 0; i < n * 6; ++i) x[i] = 0.01f * static_cast<float>((row * 6 + i) % 17);
    for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>((row + i) % 3);
  };
  ThreadWorld thread_world(world, CommOptions{20.0});
  StepTimes times;
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      auto comm = thread_world.communicator(rank);
      CpuWithFakeClock device(kLap);
      Model model(device, config);
      model.init_params();
      auto optimizer = make_optimizer(device, config.optimizer(), model.num_params());
      TrainStep step(model, *optimizer, config, *comm);
      // This rank's rows of the batch, as 24 / world rows in micro-batches of 12.
      StepResult result = step.compute_gradients(0, 24, shard_of(24, rank, world), source);
      step.apply(0.1f, result.times);
      if (rank == 0) times = result.times;
    });
  }
  for (auto& thread : threads) thread.join();
  return times;
}

TEST(PhaseTimes, TrainStepReportsTheDevicesPhaseTimes) {
  // One rank, two micro-batches: per micro-batch two data laps (its load, the next one's
  // prefetch), a forward and a backward lap; no sync; one norm and one optimizer lap.
  const StepTimes one = step_times(1);
  EXPECT_EQ(one.data_s, 4 * kLap[0]);
  EXPECT_EQ(one.forward_s, 2 * kLap[1]);
  EXPECT_EQ(one.backward_s, 2 * kLap[2]);
  EXPECT_EQ(one.sync_s, 0.0);
  EXPECT_EQ(one.norm_s, kLap[4]);
  EXPECT_EQ(one.optimizer_s, kLap[5]);
  // Two ranks, one micro-batch each: the sync phase is lapped once.
  const StepTimes two = step_times(2);
  EXPECT_EQ(two.data_s, 2 * kLap[0]);
  EXPECT_EQ(two.forward_s, kLap[1]);
  EXPECT_EQ(two.backward_s, kLap[2]);
  EXPECT_EQ(two.sync_s, kLap[3]);
  EXPECT_EQ(two.norm_s, kLap[4]);
  EXPECT_EQ(two.optimizer_s, kLap[5]);
}

class PhaseTimesRunTest : public SmallRunTest {
 protected:
  PhaseTimesRunTest() : SmallRunTest("dpt_phase_times_test_") {}
};

TEST_F(PhaseTimesRunTest, MetricsStragglersAndBalanceGetTheDevicesTimes) {
  const proto::Config config = small_run_config(R"(
      comm { timeout_s: 300 bucket_mb: 0.0005 balance: BALANCE_THROUGHPUT
             balance_warmup_steps: 1 balance_steps: 2 }
      monitor { straggler_every_steps: 5 })",
                                                "run.prototxt");
  const std::string run_dir = dir_ + "/run";
  // Milliseconds per lap: rank 1's forward is 7x rank 0's, so its device computes a step's
  // share in 2 + 14 + 4 = 20 ms against rank 0's 2 + 2 + 4 = 8 ms (data is lapped twice).
  const std::vector<std::vector<double>> laps = {{1e-3, 2e-3, 4e-3, 0.5e-3, 0.25e-3, 0.125e-3},
                                                 {1e-3, 14e-3, 4e-3, 0.5e-3, 0.25e-3, 0.125e-3}};
  ThreadWorld thread_world(2, CommOptions{300.0});
  std::vector<std::string> errors(2);
  std::vector<TrainSummary> summaries(2);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      auto comm = thread_world.communicator(rank);
      try {
        CpuWithFakeClock device(laps[rank]);
        TrainListener quiet;
        summaries[rank] = train(config, device, *comm, run_dir, quiet);
      } catch (const std::exception& e) {
        errors[rank] = e.what();
        comm->abort(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(errors[0], "");
  ASSERT_EQ(errors[1], "");
  // 12 rows per rank while measuring: 1500 and 600 samples/s, so 24 rows split 17 : 7.
  EXPECT_EQ(summaries[0].balance_shares, (std::vector<int64_t>{17, 7}));

  std::ifstream in(run_dir + "/metrics.jsonl");
  int train_records = 0, ranks_records = 0, balance_records = 0;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json record = nlohmann::json::parse(line);
    if (record["kind"] == "train") {
      ++train_records;
      const nlohmann::json& ms = record["time_ms"];  // rank 0's, per step
      EXPECT_NEAR(ms["data"].get<double>(), 2.0, 1e-9) << line;
      EXPECT_NEAR(ms["forward"].get<double>(), 2.0, 1e-9) << line;
      EXPECT_NEAR(ms["backward"].get<double>(), 4.0, 1e-9) << line;
      EXPECT_NEAR(ms["sync"].get<double>(), 0.5, 1e-9) << line;
      EXPECT_NEAR(ms["norm"].get<double>(), 0.25, 1e-9) << line;
      EXPECT_NEAR(ms["optimizer"].get<double>(), 0.125, 1e-9) << line;
    } else if (record["kind"] == "ranks") {
      ++ranks_records;
      for (int rank = 0; rank < 2; ++rank) {
        EXPECT_NEAR(record["wait_ms"][rank].get<double>(), 0.5, 1e-9) << line;
      }
    } else if (record["kind"] == "balance") {
      ++balance_records;
      EXPECT_NEAR(record["samples_per_s"][0].get<double>(), 1500.0, 1e-6) << line;
      EXPECT_NEAR(record["samples_per_s"][1].get<double>(), 600.0, 1e-6) << line;
    }
  }
  EXPECT_EQ(train_records, 4);  // 20 steps, a line every 5
  EXPECT_EQ(ranks_records, 4);
  EXPECT_EQ(balance_records, 1);
}

}  // namespace
}  // namespace dpt
