// train() and the helpers it shares with other commands: each epoch's data order, the dataset
// checks and evaluation. The run itself is launch/training_run (set-up and end) with
// launch/training_loop.cpp (epochs and steps); the step is launch/train_step.
#include "launch/trainer.h"

#include <algorithm>
#include <numeric>

#include "core/loss_accumulator.h"
#include "core/random.h"
#include "devices/error.h"
#include "launch/balance.h"
#include "launch/batch_loader.h"
#include "launch/training_run.h"

namespace dpt {

// Stream ids of the shuffling RandomStream: one per epoch, apart from initialisation's.
constexpr uint64_t kShuffleStream = uint64_t{1} << 32;

std::vector<int64_t> epoch_order(const proto::Config& config, int64_t n, int64_t epoch) {
  if (!config.data().shuffle()) {
    std::vector<int64_t> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    return order;
  }
  return random_permutation(n, config.train().seed(), kShuffleStream + epoch);
}

Normalization normalization_from(const proto::DataConfig& data) {
  return {data.input_scale(), data.mean(), data.std()};
}

void check_dataset_fits(const proto::Config& config, const Model& model, const Dataset& dataset) {
  DPT_CHECK_AS(ErrorKind::kConfig, dataset.feature_size == model.input_size())
      << "model.input_size: " << model.input_size() << " does not match " << dataset.path
      << ", whose samples have " << dataset.feature_size << " features "
      << shape_string(dataset.sample_shape);
  DPT_CHECK_AS(ErrorKind::kConfig, dataset.num_classes == model.output_size())
      << "model.layer[" << config.model().layer_size() - 1 << "]: the last layer has "
      << model.output_size() << " outputs but " << dataset.path << " has " << dataset.num_classes
      << " classes";
}

EvalResult evaluate(Model& model, const Dataset& dataset, const Normalization& normalization,
                    proto::LossKind loss, int64_t batch_size, Communicator* comm,
                    const std::vector<int64_t>& shares, Device* staging) {
  Device& device = model.device();
  Shard shard{0, dataset.size};
  if (comm && !shares.empty()) {
    shard = shard_in(apportion(dataset.size, std::vector<double>(shares.begin(), shares.end())),
                     comm->rank());
  } else if (comm) {
    shard = shard_of(dataset.size, comm->rank(), comm->size());
  }
  batch_size = std::min(batch_size, std::max<int64_t>(shard.end - shard.begin, 1));
  BatchLoader loader(device, batch_size, model.input_size(), model.dtype(), staging);
  std::vector<int64_t> indices(static_cast<std::size_t>(shard.end - shard.begin));
  std::iota(indices.begin(), indices.end(), shard.begin);
  // Rows of this rank's shard, from its start.
  const BatchSource source = [&](int64_t row, int64_t n, Tensor& inputs, int32_t* labels) {
    gather_batch(dataset, indices.data() + row, n, normalization, inputs, labels);
  };
  // The batches' loss sums, read back once after the last (no wait for the device per batch).
  LossAccumulator losses(loss);
  for (int64_t row = 0; row < shard.end - shard.begin; row += batch_size) {
    const int64_t n = std::min(batch_size, shard.end - shard.begin - row);
    const DeviceBatch micro = loader.take({0, row, n}, source);
    const Tensor& logits = model.forward(micro.inputs, Pass{});
    // The next batch loads while the device runs this one.
    const int64_t next_n = std::min(batch_size, shard.end - shard.begin - row - n);
    if (next_n > 0) loader.prefetch({0, row + n, next_n}, source);
    losses.add(logits, micro.labels, nullptr, 0.0);
  }
  // {loss sum, correct}, summed over this rank's shard, then over ranks.
  const LossResult sums = losses.total();
  double totals[2] = {sums.loss_sum, static_cast<double>(sums.correct)};
  if (comm && comm->size() > 1) comm->all_reduce(totals, totals, 2, DType::kF64, ReduceOp::kSum);
  EvalResult result;
  result.samples = dataset.size;
  if (dataset.size > 0) {
    result.loss = totals[0] / static_cast<double>(dataset.size);
    result.accuracy = totals[1] / static_cast<double>(dataset.size);
  }
  return result;
}

TrainSummary train(const proto::Config& config, Device& device, Communicator& comm,
                   const std::string& run_dir, TrainListener& listener,
                   const TrainOptions& options) {
  TrainingRun training(config, device, comm, run_dir, listener, options);
  return training.run();
}

}  // namespace dpt
