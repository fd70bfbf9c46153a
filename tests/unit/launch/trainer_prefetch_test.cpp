// The trainer loads each step's first micro-batch during the step before (TrainStep's NextBatch),
// across epoch boundaries too, where the next epoch's shuffled order is needed early. A wrong
// guess with the right key would train on the wrong rows silently, so this checks the trainer
// against a plain loop over TrainStep that loads every batch when it is needed: shuffled epochs,
// a short last batch, micro-batches; the parameters must be bit for bit the same.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "comm/local_communicator.h"
#include "core/config.h"
#include "core/model.h"
#include "devices/cpu_device.h"
#include "launch/train_step.h"
#include "launch/trainer.h"
#include "optim/lr_schedule.h"
#include "optim/optimizer.h"
#include "train_fixture.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;

TEST(TrainerPrefetch, TrainsOnTheSameRowsAsLoadingEachBatchWhenNeeded) {
  const std::string dir =
      ::testing::TempDir() + "dpt_trainer_prefetch_test_" + std::to_string(::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  testing::write_random_dataset(dir + "/train.h5", 50, 6, 3, 11);
  for (const char* micro : {"0", "4"}) {
    SCOPED_TRACE(std::string("micro_batch_size ") + micro);
    const proto::Config config = parse_config(R"(
      model {
        input_size: 6
        layer { dense { units: 7 } }
        layer { activation { kind: TANH } }
        layer { dense { units: 3 } }
      }
      optimizer { lr: 0.1 sgd { momentum: 0.9 } schedule { cosine {} } }
      train { batch_size: 8 epochs: 3 drop_last: false micro_batch_size: )" +
                                                  std::string(micro) + R"( }
      data { train_path: ")" + dir + R"(/train.h5" shuffle: true }
      checkpoint { at_end: false }
    )",
                                              "trainer_prefetch_test");
    std::unique_ptr<Communicator> comm = make_local_communicator();
    CpuDevice device(CpuDeviceOptions{1});
    TrainListener quiet;
    std::vector<float> trained;
    TrainOptions options;
    options.final_params = &trained;
    const TrainSummary summary = train(config, device, *comm, dir + "/run" + micro, quiet, options);
    ASSERT_EQ(summary.steps, 21);  // 3 epochs of 7 steps, the last of each 2 rows

    // The reference: every batch loaded when its step needs it.
    const Dataset data = load_dataset(config.data().train_path());
    Model model(device, config);
    std::unique_ptr<Optimizer> optimizer =
        make_optimizer(device, config.optimizer(), model.num_params());
    TrainStep step(model, *optimizer, config, *comm);
    const Normalization normalization = normalization_from(config.data());
    int64_t s = 0;
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      const std::vector<int64_t> order = epoch_order(config, data.size, epoch);
      for (int64_t first = 0; first < data.size; first += 8, ++s) {
        const int64_t batch = std::min<int64_t>(8, data.size - first);
        StepResult result = step.compute_gradients(
            s, batch, {0, batch}, [&](int64_t row, int64_t n, Tensor& inputs, int32_t* labels) {
              gather_batch(data, order.data() + first + row, n, normalization, inputs, labels);
            });
        step.apply(static_cast<float>(
                       lr_at(config.optimizer().schedule(), config.optimizer().lr(), s, 21)),
                   result.times);
      }
    }
    const float* reference = model.params().data<float>();
    EXPECT_EQ(trained, std::vector<float>(reference, reference + model.num_params()));
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace dpt
