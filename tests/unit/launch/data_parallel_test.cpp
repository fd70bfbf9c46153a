// Data parallelism in one process: W ranks as W threads over the in-process thread world, each
// running the real trainer. N ranks x (global batch B) must train the model 1 rank trains with
// batch B, with dropout and shuffling on. Tolerance: the only differences are the order of fp32
// sums (each rank's GEMM sums its shard of the batch, then the ring adds the shards), about 1e-7
// relative per operation; after 20 SGD steps we allow 2e-5 * max(1, |w|).
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "fake_gpu.h"
#include "launch/fingerprint.h"
#include "launch/training_run.h"
#include "rank_threads.h"
#include "train_fixture.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;
using namespace dpt::testing;

class DataParallelTest : public SmallRunTest {
 protected:
  DataParallelTest() : SmallRunTest("dpt_dp_test_") {}

  proto::Config config(const std::string& extra = "") {
    // The product's collective timeout, not a short one (see train_threads in train_fixture.h).
    return with(small_run_config("comm { timeout_s: 300 bucket_mb: 0.0005 }", "dp.prototxt"),
                extra);
  }

  // Trains with `world` threads into run<world><name>; returns rank 0's weights.
  std::vector<float> train_world(int world, const proto::Config& cfg, WorldRun* out = nullptr,
                                 const std::string& name = "") {
    const std::string run_dir = dir_ + "/run" + std::to_string(world) + name;
    WorldRun run = train_threads(world, cfg, run_dir);
    for (int rank = 0; rank < world; ++rank) EXPECT_EQ(run.errors[rank], "") << "rank " << rank;
    // Only rank 0 writes: config.prototxt, metrics.jsonl, model.h5, checkpoints/, tensorboard/.
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(run_dir)) {
      names.insert(entry.path().filename().string());
    }
    EXPECT_EQ(names, (std::set<std::string>{"checkpoints", "config.prototxt", "metrics.jsonl",
                                            "model.h5", "tensorboard"}));
    EXPECT_EQ(
        std::distance(fs::directory_iterator(run_dir + "/tensorboard"), fs::directory_iterator()),
        1);
    if (out) *out = run;
    return read_values(run_dir + "/model.h5");
  }
};

TEST_F(DataParallelTest, NRanksTrainTheModelOneRankTrains) {
  const proto::Config cfg = config();
  const std::vector<float> reference = train_world(1, cfg);
  for (int world : {2, 3, 4}) {
    WorldRun run;
    const std::vector<float> weights = train_world(world, cfg, &run);
    const double worst = worst_relative_difference(weights, reference);
    EXPECT_LT(worst, 2e-5) << world << " ranks";
    EXPECT_GT(worst, 0.0) << "suspicious: " << world << " ranks bit-identical to 1 rank";
    // Every rank reports the same (all-reduced) evaluation.
    for (const TrainSummary& summary : run.summaries) {
      ASSERT_TRUE(summary.last_eval.has_value());
      EXPECT_EQ(summary.last_eval->loss, run.summaries[0].last_eval->loss);
      EXPECT_EQ(summary.last_eval->accuracy, run.summaries[0].last_eval->accuracy);
    }
  }
}

// comm.reduce_dtype: gradients summed in bf16 / fp16 train close to the float32 model (8 / 11
// bits of mantissa per gradient element over 20 SGD steps; measured 9.8e-4 / 1.4e-4 relative,
// allowed 5e-3 / 1e-3), not identical to it (the rounding happened), and deterministically (two
// runs, the same bits).
TEST_F(DataParallelTest, SixteenBitGradientReductionTrainsCloseAndDeterministically) {
  const std::vector<float> reference = train_world(2, config());
  for (const auto& [dtype, tolerance] :
       {std::pair<std::string, double>{"REDUCE_BF16", 5e-3}, {"REDUCE_FP16", 1e-3}}) {
    const proto::Config cfg = config("comm { reduce_dtype: " + dtype + " }");
    const std::vector<float> first = train_world(2, cfg, nullptr, dtype);
    const double worst = worst_relative_difference(first, reference);
    EXPECT_LT(worst, tolerance) << dtype;
    EXPECT_GT(worst, 1e-6) << dtype << ": the gradients were not rounded";
    EXPECT_EQ(train_world(2, cfg, nullptr, dtype + "_again"), first) << dtype;
  }
}

TEST_F(DataParallelTest, UnevenLastBatchIsSplitAndStillMatches) {
  // 240 samples, batch 36: six full batches and a last one of 24 (drop_last false).
  const proto::Config cfg = config("train { batch_size: 36 drop_last: false }");
  const std::vector<float> reference = train_world(1, cfg);
  const std::vector<float> weights = train_world(3, cfg);
  EXPECT_LT(worst_relative_difference(weights, reference), 2e-5);
}

TEST_F(DataParallelTest, GlobalBatchNotDivisibleByWorldIsRefused) {
  const WorldRun run = train_threads(2, config("train { batch_size: 25 }"), dir_ + "/r");
  // Each rank refuses on its own; one may see the other's abort first.
  int named = 0;
  for (const std::string& error : run.errors) {
    const bool refused =
        error.find("train.batch_size: 25 is not divisible by the 2 workers") != std::string::npos;
    named += refused ? 1 : 0;
    EXPECT_TRUE(refused || error.find("aborted by rank") != std::string::npos) << error;
  }
  EXPECT_GE(named, 1);
}

TEST_F(DataParallelTest, DifferentConfigsAreRefusedNamingRankAndField) {
  // A long timeout: the check refuses at once, but a loaded machine may start one rank's thread
  // seconds after the other's, and a timeout would fail the ranks with kComm instead.
  ThreadWorld world(2, CommOptions{30.0});
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        CpuDevice device(CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn});
        auto comm = world.communicator(rank);
        TrainListener quiet;
        train(config(rank == 1 ? "optimizer { lr: 0.2 }" : ""), device, *comm,
              dir_ + "/r" + std::to_string(rank), quiet);
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::kConfig);
        errors[static_cast<std::size_t>(rank)] = e.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_NE(errors[0].find("rank 1 differs from rank 0 in config"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("optimizer.lr"), std::string::npos) << errors[1];
}

// A GPU worker beside a CPU worker on one node (device differs per rank: README "Heterogeneous
// workers"). The CPU worker's model asks the communicator for a shared gradient buffer, which is a
// collective; the GPU worker's gradients stay on its device, yet it must join that call, or the
// CPU worker's all_gather meets the GPU worker's next collective and start-up stops on the
// mismatch. FakeGpu stands for the GPU; it cannot compute, so the run is set up, not trained.
TEST_F(DataParallelTest, GpuAndCpuWorkersOnOneNodeSetTheRunUp) {
  struct Notes : TrainListener {
    std::string text;
    void on_note(const std::string& line) override { text += line + "\n"; }
  };
  const proto::Config cfg = config();
  const TrainOptions options;
  std::vector<std::string> notes(2);
  const std::vector<std::string> errors = on_ranks(2, 5.0, [&](int rank, Communicator& comm) {
    FakeGpu gpu;
    CpuDevice cpu(CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn});
    Device& device = rank == 0 ? static_cast<Device&>(gpu) : cpu;
    Notes listener;
    TrainingRun run(cfg, device, comm, dir_ + "/mixed", listener, options);
    notes[static_cast<std::size_t>(rank)] = listener.text;
  });
  EXPECT_EQ(errors, (std::vector<std::string>{"", ""}));
  // No rank takes the shared buffer: the CPU worker reduces its own.
  EXPECT_NE(notes[1].find("gradient buffer in this worker's own memory"), std::string::npos)
      << notes[1];
  EXPECT_EQ(notes[0].find("gradient buffer"), std::string::npos) << notes[0];
}

// fp16 loss scaling changes what a rank adds to the sum (its loss gradient times the scale) and
// how it reads the sum (divided by the scale), so unlike the rest of `device` it must agree:
// a rank scaling alone, or with another device.loss_scale, is refused at start-up.
TEST_F(DataParallelTest, LossScalingMustAgreeAcrossRanks) {
  const Dataset data = load_dataset(dir_ + "/data.h5");
  // Both ranks fail alike on a difference, so neither aborts (an abort could reach the other
  // before it has read rank 0's config text for its message).
  const auto check = [&](const std::string& device0, const std::string& device1) {
    // 30 s, as in DifferentConfigsAreRefusedNamingRankAndField: not a race with thread start-up.
    ThreadWorld world(2, CommOptions{30.0});
    std::vector<std::string> errors(2);
    std::vector<std::thread> threads;
    for (int rank = 0; rank < 2; ++rank) {
      threads.emplace_back([&, rank] {
        try {
          const proto::Config cfg = with(config(), rank == 0 ? device0 : device1);
          CpuDevice device(CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn});
          const Model model(device, cfg);
          check_same_run(*world.communicator(rank), cfg, model, data, nullptr);
        } catch (const Error& e) {
          errors[static_cast<std::size_t>(rank)] = e.what();
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    return errors;
  };
  const std::vector<std::string> none = {"", ""};
  // How a worker runs may differ, fp16 on both with the same scaler too.
  EXPECT_EQ(check("device { kind: CPU threads: 2 }", "device { kind: CUDA precision: BF16 }"),
            none);
  EXPECT_EQ(check("device { kind: CUDA precision: FP16 }",
                  "device { kind: CUDA precision: FP16 threads: 3 }"),
            none);
  std::vector<std::string> errors =
      check("device { kind: CUDA precision: FP16 }", "device { kind: CUDA precision: TF32 }");
  EXPECT_NE(errors[0].find("rank 1 differs from rank 0 in config"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("device.precision"), std::string::npos) << errors[1];
  errors = check("device { kind: CUDA precision: FP16 }",
                 "device { kind: CUDA precision: FP16 loss_scale { init_scale: 1024 } }");
  EXPECT_NE(errors[1].find("device.loss_scale.init_scale"), std::string::npos) << errors[1];
  // Another field than device is still named as itself (rank 0's text is resolved; so is ours).
  errors = check("", "comm { bucket_mb: 1 }");
  EXPECT_NE(errors[1].find("comm.bucket_mb"), std::string::npos) << errors[1];
}

}  // namespace
}  // namespace dpt
