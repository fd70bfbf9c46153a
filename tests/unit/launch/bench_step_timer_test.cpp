// StepTimer (launch/bench_step_timer.h), the timed step of `dpt bench step`, on the CPU: with
// device.precision FP16 it scales its loss as `dpt train` does (launch/loss_scaling.h), so the
// scale grows after clean steps and a step whose gradients overflowed is skipped (no update) and
// counted; without FP16 it reports no loss scale. The timer is handed a CPU device whatever
// device.kind says (the config needs kind CUDA for FP16), and the model ignores device.precision
// there, so the scaling is what differs.
#include "launch/bench_step_timer.h"

#include <gtest/gtest.h>

#include "comm/local_communicator.h"
#include "core/config.h"
#include "devices/cpu_device.h"
#include "launch/device_transfer.h"

namespace dpt {
namespace {

// A small model; `device` (a text-format device block or "") and the SGD learning rate vary.
proto::Config step_config(const std::string& device, const std::string& lr = "0.01") {
  return parse_config(R"(
    model {
      input_size: 12
      layer { dense { units: 16 } }
      layer { activation { kind: RELU } }
      layer { dense { units: 4 } }
    }
    optimizer { lr: )" + lr +
                          R"( sgd {} }
    train { batch_size: 8 }
    data { train_path: "unused.h5" }
  )" + device,
                      "timer.prototxt");
}

TEST(BenchStepTimerTest, Fp16ScalesTheLossAsTrainingDoes) {
  CpuDevice device(CpuDeviceOptions{1});
  std::unique_ptr<Communicator> comm = make_local_communicator();
  const proto::Config config = step_config(
      "device { kind: CUDA precision: FP16 loss_scale { init_scale: 1024 growth_interval: 2 } }");
  StepTimer timer(config, device, *comm, 10);
  timer.run(1, false);  // a warm-up step counts towards growth, not towards the skips
  timer.run(3, true);
  const StepRun run = timer.result();
  EXPECT_EQ(run.loss_scale, 4096.0);  // 1024 doubled after steps 2 and 4
  EXPECT_EQ(run.loss_scale_skipped, 0);
}

TEST(BenchStepTimerTest, Fp16StepWhoseGradientsOverflowIsNotApplied) {
  CpuDevice device(CpuDeviceOptions{1});
  std::unique_ptr<Communicator> comm = make_local_communicator();
  // The first step's update, at this learning rate, makes the weights so large that the next
  // forward pass overflows: inf logits, NaN loss and gradients.
  const proto::Config config =
      step_config("device { kind: CUDA precision: FP16 loss_scale { init_scale: 1024 } }", "1e35");
  StepTimer timer(config, device, *comm, 10);
  timer.run(1, false);
  const std::vector<float> before = to_host(timer.params());
  timer.run(1, true);
  const StepRun run = timer.result();
  EXPECT_EQ(run.loss_scale_skipped, 1);
  EXPECT_EQ(run.loss_scale, 512.0);  // backed off once
  EXPECT_EQ(to_host(timer.params()), before) << "the overflowed step was applied";
}

TEST(BenchStepTimerTest, NoLossScaleWithoutFp16) {
  CpuDevice device(CpuDeviceOptions{1});
  std::unique_ptr<Communicator> comm = make_local_communicator();
  const proto::Config config = step_config("");  // the timer keeps a reference to it
  StepTimer timer(config, device, *comm, 10);
  const std::vector<float> before = to_host(timer.params());
  timer.run(2, true);
  const StepRun run = timer.result();
  EXPECT_EQ(run.loss_scale, 0.0);
  EXPECT_EQ(run.loss_scale_skipped, 0);
  EXPECT_NE(to_host(timer.params()), before);  // the steps were applied
}

}  // namespace
}  // namespace dpt
