// The training step timed on a GPU: StepTimer (`dpt bench step`'s) on a CUDA device reports the
// phases from the GPU's timing events: every phase that runs kernels is charged, the optimizer
// included, and together they cover most of the synchronised step time and never more than it;
// with device.precision FP16 it scales the loss as training does; and `dpt bench step` on the GPU
// prints the training step before the per-layer table and writes both to its JSON. Skipped where
// no GPU is usable.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "comm/local_communicator.h"
#include "core/config.h"
#include "devices/cuda_support.h"
#include "launch/bench.h"
#include "launch/bench_step_timer.h"
#include "temp_dir.h"

namespace dpt {
namespace {

// Big enough that each phase runs for a while on any GPU dpt supports.
constexpr const char* kConfig = R"(
  model {
    input_size: 1024
    layer { dense { units: 4096 } }
    layer { activation { kind: RELU } }
    layer { dropout { rate: 0.1 } }
    layer { dense { units: 4096 } }
    layer { activation { kind: GELU } }
    layer { dense { units: 10 } }
  }
  optimizer { clip_grad_norm: 1.0 adam {} }
  train { batch_size: 2048 }
  device { kind: CUDA }
  data { train_path: "unused.h5" })";

std::string usable_gpu_reason() {
  const GpuProbe probe = probe_gpus();
  return usable_gpus(probe).empty() ? "no usable GPU: " + probe.reason : "";
}

TEST(GpuStepTiming, PhasesAreTheGpusTimeAndAddUpToTheStep) {
  const std::string why = usable_gpu_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  const proto::Config config = parse_config(kConfig, "timing.prototxt");
  std::unique_ptr<Device> gpu = make_cuda_device(usable_gpus(probe_gpus()).front().index);
  std::unique_ptr<Communicator> comm = make_local_communicator();
  StepTimer timer(config, *gpu, *comm, 20);
  timer.run(3, false);
  timer.run(10, true);
  const StepRun run = timer.result();
  const StepTimes& t = run.phase_sum;
  EXPECT_GT(t.forward_s, 0.0);
  EXPECT_GT(t.backward_s, t.forward_s);  // two GEMMs a layer against one, plus the loss
  EXPECT_GT(t.norm_s, 0.0);
  EXPECT_GT(t.optimizer_s, 0.0);  // read after the step's synchronize, not left for later
  EXPECT_EQ(t.sync_s, 0.0);       // one worker: no sync phase
  // The phases are disjoint intervals of the stream inside each step.
  const double per_step = t.total() / 10;
  EXPECT_LE(per_step, run.p99 * 1.05 + 1e-4) << "phases longer than the step";
  EXPECT_GE(per_step, run.p50 * 0.5) << "most of the step is in no phase";
}

// With device.precision FP16 the timed step scales its loss as training does: the scale is
// reported (init_scale 65536; growth_interval 2000, so it cannot grow in 7 steps), skips are
// counted, and the steps that did not overflow were applied. Overflow itself is not expected at
// these magnitudes (loss gradients of at most 65536 / 2048 = 32 per logit), but it is legitimate
// fp16 behaviour, so only a run where every measured step overflowed fails.
TEST(GpuStepTiming, Fp16StepScalesItsLossAsTrainingDoes) {
  const std::string why = usable_gpu_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  proto::Config config = parse_config(kConfig, "timing.prototxt");
  config.mutable_device()->set_precision(proto::FP16);
  std::unique_ptr<Device> gpu = make_cuda_device(usable_gpus(probe_gpus()).front().index);
  std::unique_ptr<Communicator> comm = make_local_communicator();
  StepTimer timer(config, *gpu, *comm, 20);
  timer.run(2, false);
  timer.run(5, true);
  const StepRun run = timer.result();
  EXPECT_GT(run.loss_scale, 0.0);  // 0 would mean no loss scaler in the step
  EXPECT_LE(run.loss_scale, 65536.0);
  EXPECT_LT(run.loss_scale_skipped, 5);
  EXPECT_GT(run.phase_sum.optimizer_s, 0.0);  // the steps that did not overflow were applied
}

class GpuBenchStepTest : public testing::TempDirTest {
 protected:
  GpuBenchStepTest() : TempDirTest("dpt_gpu_bench_step_test_") {}
};

TEST_F(GpuBenchStepTest, TimesTheTrainingStepThenTheLayers) {
  const std::string why = usable_gpu_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  std::ofstream(dir_ + "/cfg.prototxt") << kConfig;
  BenchStepArgs args;
  args.config = dir_ + "/cfg.prototxt";
  args.warmup = 2;
  args.steps = 5;
  args.json = dir_ + "/bench.json";
  std::FILE* out = std::tmpfile();
  const nlohmann::json json = bench_step(args, out);
  std::fclose(out);
  EXPECT_GT(json["samples_per_s"].get<double>(), 0.0);
  EXPECT_GT(json["step_time_p50_ms"].get<double>(), 0.0);
  EXPECT_GT(json["phase_ms"]["optimizer"].get<double>(), 0.0);
  EXPECT_GT(json["phase_ms"]["backward"].get<double>(), 0.0);
  EXPECT_EQ(json["num_params"].get<int64_t>(),
            1024 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 10 + 10);
  EXPECT_EQ(json["layers"].size(), 3u);
  // step_gemms: forward and weight gradient per layer, input gradient but for the first.
  const double flops = 2.0 * 2048 * (2 * 1024 * 4096 + 3 * 4096 * 4096 + 3 * 4096 * 10);
  EXPECT_NEAR(json["step_gemm_gflop"].get<double>(), flops / 1e9, 1e-6);
  std::ifstream written(args.json);
  EXPECT_TRUE(written.good());
}

}  // namespace
}  // namespace dpt
