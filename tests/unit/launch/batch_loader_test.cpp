// The double-buffered batch loader: on the CPU device it gathers straight into the device
// tensors (no staging copy) and hands out exactly the batches a direct gather gives; on a device
// that is not the CPU (FakeGpu: separate memory that counts copies) every batch goes through a
// host buffer and one asynchronous copy on the device's copy queue, ordered against compute on
// the device (the copy after the compute queued before it, compute after take() after the copy),
// and a prefetch never overwrites the batch in use.
// TrainStep with the next step's batch prefetched trains bit for bit as without it.
#include "launch/batch_loader.h"

#include <gtest/gtest.h>

#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "comm/local_communicator.h"
#include "core/config.h"
#include "core/model.h"
#include "devices/cpu_device.h"
#include "devices/error.h"
#include "fake_gpu.h"
#include "launch/device_transfer.h"
#include "launch/train_step.h"
#include "optim/optimizer.h"
#include "rank_threads.h"

namespace dpt {
namespace {

constexpr int64_t kFeatures = 3;

// Row r of a step's batch: inputs 10 * step + r + j / 10, label (step + r) % 5.
BatchSource source_for(int64_t step, int* calls = nullptr) {
  return [step, calls](int64_t row, int64_t n, Tensor& inputs, int32_t* labels) {
    EXPECT_EQ(inputs.device().kind(), DeviceKind::kCpu);  // what gather_batch requires
    if (calls) ++*calls;
    float* x = inputs.data<float>();
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < kFeatures; ++j) {
        x[i * kFeatures + j] = static_cast<float>(10 * step + row + i) + static_cast<float>(j) / 10;
      }
      labels[i] = static_cast<int32_t>((step + row + i) % 5);
    }
  };
}

// The batch's values, read back through the device.
void expect_batch(const DeviceBatch& batch, int64_t step, int64_t row, int64_t n) {
  Device& device = batch.inputs.device();
  ASSERT_EQ(batch.inputs.shape(), (Shape{n, kFeatures}));
  ASSERT_EQ(batch.labels.shape(), (Shape{n}));
  std::vector<float> x(static_cast<std::size_t>(n * kFeatures));
  std::vector<int32_t> labels(static_cast<std::size_t>(n));
  device.copy_to_host(x.data(), batch.inputs.raw(), batch.inputs.bytes());
  device.copy_to_host(labels.data(), batch.labels.raw(), batch.labels.bytes());
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(labels[i], (step + row + i) % 5) << "row " << i;
    for (int64_t j = 0; j < kFeatures; ++j) {
      EXPECT_EQ(x[i * kFeatures + j],
                static_cast<float>(10 * step + row + i) + static_cast<float>(j) / 10);
    }
  }
}

TEST(BatchLoader, CpuDeviceGathersIntoTheDeviceTensorsAndHitsWhenPrefetched) {
  CpuDevice cpu(CpuDeviceOptions{1});
  BatchLoader loader(cpu, 4, kFeatures, DType::kF32);
  int calls = 0;
  DeviceBatch first = loader.take({0, 0, 4}, source_for(0, &calls));
  expect_batch(first, 0, 0, 4);
  EXPECT_EQ(loader.misses(), 1);
  loader.prefetch({1, 0, 3}, source_for(1, &calls));
  expect_batch(first, 0, 0, 4);  // the batch in use is untouched by the prefetch
  DeviceBatch second = loader.take({1, 0, 3}, source_for(1, &calls));
  expect_batch(second, 1, 0, 3);
  EXPECT_EQ(loader.hits(), 1);
  EXPECT_EQ(calls, 2);                                 // each batch gathered once
  EXPECT_NE(first.inputs.raw(), second.inputs.raw());  // two slots
  // A prefetch of other rows than those asked for is replaced by a load of the right ones.
  loader.prefetch({2, 0, 4}, source_for(2, &calls));
  expect_batch(loader.take({2, 1, 3}, source_for(2, &calls)), 2, 1, 3);
  EXPECT_EQ(loader.misses(), 2);
  EXPECT_THROW(loader.prefetch({3, 0, 5}, source_for(3)), Error);  // more rows than the slots
}

TEST(BatchLoader, OffTheCpuEveryBatchIsOneAsyncCopyFromAHostBuffer) {
  FakeGpu gpu;
  {
    BatchLoader loader(gpu, 4, kFeatures, DType::kF32);
    EXPECT_EQ(gpu.counts.host_allocations, 4);  // inputs and labels of two slots
    DeviceBatch previous = loader.take({0, 0, 4}, source_for(0));
    for (int64_t step = 1; step <= 5; ++step) {
      loader.prefetch({step, 0, 2}, source_for(step));
      expect_batch(previous, step - 1, 0, step == 1 ? 4 : 2);  // still intact
      previous = loader.take({step, 0, 2}, source_for(step));
      expect_batch(previous, step, 0, 2);
    }
    EXPECT_EQ(loader.hits(), 5);
    // Inputs and labels per batch, asynchronously on the copy queue (none on the compute
    // queue); a record per batch, and the host buffer of a slot is waited for before it is
    // filled again.
    EXPECT_EQ(gpu.counts.queued_copies, 2 * 6);
    EXPECT_EQ(gpu.counts.to_device_async, 0);
    EXPECT_EQ(gpu.counts.to_device, 0);
    EXPECT_EQ(gpu.counts.records, 6);
    EXPECT_GE(gpu.counts.waits, 6);
  }
  EXPECT_EQ(gpu.counts.host_frees, 4);
}

// evaluate()'s case: a loader per call, all on one kept page-locked host (make_pinned_host with
// keep_freed). Only the first loader page-locks; each later one gets the same blocks back, and
// they are freed once, when the kept host goes. Batches are still right through reused buffers.
TEST(BatchLoader, LoadersOnAKeptPinnedHostPageLockOnce) {
  FakeGpu gpu;
  {
    const std::unique_ptr<Device> staging = make_pinned_host(gpu, true);
    for (int64_t call = 0; call < 3; ++call) {
      BatchLoader loader(gpu, 4, kFeatures, DType::kF32, staging.get());
      EXPECT_EQ(gpu.counts.host_allocations, 4) << "call " << call;
      expect_batch(loader.take({call, 0, 4}, source_for(call)), call, 0, 4);
      loader.prefetch({call + 10, 0, 3}, source_for(call + 10));
      expect_batch(loader.take({call + 10, 0, 3}, source_for(call + 10)), call + 10, 0, 3);
    }
    EXPECT_EQ(gpu.counts.host_frees, 0);
    // Another size is page-locked anew (blocks are reused for the same size only).
    BatchLoader bigger(gpu, 8, kFeatures, DType::kF32, staging.get());
    EXPECT_EQ(gpu.counts.host_allocations, 8);
  }
  EXPECT_EQ(gpu.counts.host_frees, 8);
  // Without keep_freed each loader page-locks and frees its own.
  FakeGpu plain;
  const std::unique_ptr<Device> host = make_pinned_host(plain);
  for (int call = 0; call < 2; ++call)
    BatchLoader loader(plain, 4, kFeatures, DType::kF32, host.get());
  EXPECT_EQ(plain.counts.host_allocations, 8);
  EXPECT_EQ(plain.counts.host_frees, 8);
}

// The ordering that lets the copy stream overlap compute safely, call by call: before a slot's
// host buffer is refilled the host waits for its previous copy; the copy waits (on the device)
// for the compute queued before it, which includes every kernel still reading the slot; take()
// makes the compute queued after it wait for the copy. FakeGpu runs a queued copy only once
// something waits for it, so a take() that does not order compute after the copy hands out a
// batch whose contents are stale (expect_batch fails), besides the call log differing.
TEST(BatchLoader, CopiesAreOrderedAgainstComputeOnTheDevice) {
  FakeGpu gpu;
  using Calls = std::vector<std::string>;
  const Calls fill = {"wait", "wait_for_compute", "copy", "copy", "record"};
  Calls with_take = fill;
  with_take.push_back("make_compute_wait");
  {
    BatchLoader loader(gpu, 4, kFeatures, DType::kF32);
    EXPECT_EQ(gpu.queue_calls, Calls{});
    expect_batch(loader.take({0, 0, 4}, source_for(0)), 0, 0, 4);  // a miss: fill, then take
    EXPECT_EQ(gpu.queue_calls, with_take);
    for (int64_t step = 1; step <= 3; ++step) {
      gpu.queue_calls.clear();
      loader.prefetch({step, 0, 3}, source_for(step));
      EXPECT_EQ(gpu.queue_calls, fill) << "prefetch of step " << step;
      gpu.queue_calls.clear();
      const DeviceBatch batch = loader.take({step, 0, 3}, source_for(step));
      EXPECT_EQ(gpu.queue_calls, Calls{"make_compute_wait"}) << "take of step " << step;
      expect_batch(batch, step, 0, 3);
    }
    EXPECT_EQ(gpu.counts.copies_wait_for_compute, 4);
    EXPECT_EQ(gpu.counts.compute_waits_for_copies, 4);
    gpu.queue_calls.clear();
  }
  // The loader's end waits for both slots' copies before their buffers are freed.
  EXPECT_EQ(gpu.queue_calls, (Calls{"wait", "wait"}));
}

proto::Config step_config() {
  return parse_config(R"(
    model {
      input_size: 3
      layer { dense { units: 8 } }
      layer { activation { kind: RELU } }
      layer { dense { units: 5 } }
    }
    optimizer { lr: 0.05 adam {} }
    train { batch_size: 12 micro_batch_size: 4 epochs: 1 }
    data { train_path: "unused.h5" }
  )",
                      "step_config");
}

struct Trained {
  std::vector<double> losses;
  std::vector<float> params;
  int64_t hits = 0;
};

// Six steps; `next_guess`: 0 no prefetch of the next step, 1 the right rows, 2 wrong rows.
Trained train_steps(int next_guess) {
  const proto::Config config = step_config();
  CpuDevice cpu(CpuDeviceOptions{1});
  std::unique_ptr<Communicator> comm = make_local_communicator();
  Model model(cpu, config);
  std::unique_ptr<Optimizer> optimizer =
      make_optimizer(cpu, config.optimizer(), model.num_params());
  TrainStep step(model, *optimizer, config, *comm);
  Trained out;
  for (int64_t s = 0; s < 6; ++s) {
    NextBatch next{s + 1, next_guess == 1 ? Shard{0, 12} : Shard{1, 12}, source_for(s + 1)};
    StepResult result =
        step.compute_gradients(s, 12, {0, 12}, source_for(s), false, next_guess ? &next : nullptr);
    step.apply(0.05f, result.times);
    out.losses.push_back(result.loss);
  }
  const float* p = model.params().data<float>();
  out.params.assign(p, p + model.num_params());
  out.hits = step.loader().hits();
  return out;
}

TEST(TrainStepLoading, PrefetchingTheNextStepTrainsBitForBitAsWithout) {
  const Trained plain = train_steps(0);
  const Trained prefetched = train_steps(1);
  const Trained guessed_wrong = train_steps(2);
  // Within a step, micro-batches 2 and 3 of 3 are prefetched; across steps, the first of 3.
  EXPECT_EQ(plain.hits, 6 * 2);
  EXPECT_EQ(prefetched.hits, 6 * 2 + 5);
  EXPECT_EQ(guessed_wrong.hits, 6 * 2);
  EXPECT_EQ(plain.losses, prefetched.losses);
  EXPECT_EQ(plain.params, prefetched.params);
  EXPECT_EQ(plain.losses, guessed_wrong.losses);
  EXPECT_EQ(plain.params, guessed_wrong.params);
}

// A rank's loader holds its share of the batch (equal shares: at most ceil(12 / world) rows), or
// a micro-batch when that is smaller, and the whole batch (or micro-batch) where the balancer may
// move rows: on a GPU every slot row is device and page-locked memory.
TEST(TrainStepLoader, HoldsThisRanksShareNotTheWholeBatch) {
  const auto rows_with = [](int world, int64_t micro, proto::Balance balance) {
    proto::Config config = step_config();
    config.mutable_train()->set_micro_batch_size(micro);
    config.mutable_comm()->set_balance(balance);
    std::vector<int64_t> rows(static_cast<std::size_t>(world));
    const std::vector<std::string> errors =
        testing::on_ranks(world, 30, [&](int rank, Communicator& comm) {
          CpuDevice cpu(CpuDeviceOptions{1});
          Model model(cpu, config);
          std::unique_ptr<Optimizer> optimizer =
              make_optimizer(cpu, config.optimizer(), model.num_params());
          TrainStep step(model, *optimizer, config, comm);
          rows[static_cast<std::size_t>(rank)] = step.loader().rows();
        });
    EXPECT_EQ(errors, std::vector<std::string>(static_cast<std::size_t>(world)));
    return rows;
  };
  EXPECT_EQ(rows_with(1, 0, proto::BALANCE_EQUAL), (std::vector<int64_t>{12}));
  EXPECT_EQ(rows_with(1, 4, proto::BALANCE_EQUAL), (std::vector<int64_t>{4}));
  EXPECT_EQ(rows_with(2, 0, proto::BALANCE_EQUAL), (std::vector<int64_t>{6, 6}));
  EXPECT_EQ(rows_with(5, 0, proto::BALANCE_EQUAL), (std::vector<int64_t>(5, 3)));  // 12 / 5
  EXPECT_EQ(rows_with(2, 4, proto::BALANCE_EQUAL), (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(rows_with(2, 0, proto::BALANCE_THROUGHPUT), (std::vector<int64_t>{12, 12}));
}

}  // namespace
}  // namespace dpt
