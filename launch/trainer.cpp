// The training loop: epochs, data order, the non-finite guard, the LR schedule, logging,
// evaluation, and the files of the run directory. The step itself is launch/train_step.
#include "launch/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/loss.h"
#include "core/random.h"
#include "devices/error.h"
#include "launch/metrics_writer.h"
#include "launch/train_step.h"
#include "optim/lr_schedule.h"
#include "optim/optimizer.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void write_text_file(const std::string& path, const std::string& text) {
  write_file_atomically(path, text.data(), text.size());
}

void prepare_run_dir(const std::string& run_dir) {
  std::error_code error;
  fs::create_directories(run_dir, error);
  DPT_CHECK_AS(ErrorKind::kIo, !error)
      << run_dir << ": cannot create the run directory: " << error.message();
}

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

}  // namespace

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
                    proto::LossKind loss, int64_t batch_size) {
  Device& device = model.device();
  batch_size = std::min(batch_size, std::max<int64_t>(dataset.size, 1));
  Tensor inputs(device, {batch_size, model.input_size()}, model.dtype());
  std::vector<int32_t> labels(static_cast<std::size_t>(batch_size));
  std::vector<int64_t> indices(static_cast<std::size_t>(batch_size));
  EvalResult result;
  int64_t correct = 0;
  for (int64_t start = 0; start < dataset.size; start += batch_size) {
    const int64_t n = std::min(batch_size, dataset.size - start);
    std::iota(indices.begin(), indices.begin() + n, start);
    gather_batch(dataset, indices.data(), n, normalization, inputs, labels.data());
    const Tensor& logits = model.forward(inputs.rows(n), Pass{});
    LossResult batch = compute_loss(loss, logits, labels.data(), nullptr, 0.0);
    result.loss += batch.loss_sum;
    correct += batch.correct;
  }
  result.samples = dataset.size;
  if (dataset.size > 0) {
    result.loss /= static_cast<double>(dataset.size);
    result.accuracy = static_cast<double>(correct) / static_cast<double>(dataset.size);
  }
  return result;
}

TrainSummary train(const proto::Config& config, Device& device, Communicator& comm,
                   const std::string& run_dir, TrainListener& listener) {
  DPT_CHECK_AS(ErrorKind::kConfig, comm.size() == 1)
      << "comm: training with " << comm.size() << " workers needs the MPI backend";
  const proto::TrainConfig& train_config = config.train();
  prepare_run_dir(run_dir);
  // Written first: proves the run directory is writable before any work is done.
  write_text_file(run_dir + "/config.prototxt", config_to_text(config));
  MetricsWriter metrics(run_dir + "/metrics.jsonl");

  const Dataset train_set = load_dataset(config.data().train_path());
  std::optional<Dataset> test_set;
  if (!config.data().test_path().empty()) test_set = load_dataset(config.data().test_path());
  Model model(device, config);
  check_dataset_fits(config, model, train_set);
  if (test_set) check_dataset_fits(config, model, *test_set);

  const int64_t batch = train_config.batch_size();
  DPT_CHECK_AS(ErrorKind::kConfig, batch <= train_set.size)
      << "train.batch_size: " << batch << " is larger than the " << train_set.size << " samples in "
      << train_set.path;
  const int64_t steps_per_epoch =
      train_config.drop_last() ? train_set.size / batch : (train_set.size + batch - 1) / batch;
  int64_t total_steps = train_config.epochs() * steps_per_epoch;
  const int64_t schedule_steps = config.optimizer().schedule().total_steps() > 0
                                     ? config.optimizer().schedule().total_steps()
                                     : total_steps;
  if (train_config.max_steps() > 0) total_steps = std::min(total_steps, train_config.max_steps());

  std::unique_ptr<Optimizer> optimizer =
      make_optimizer(device, config.optimizer(), model.num_params());
  TrainStep train_step(model, *optimizer, config);
  const Normalization normalization = normalization_from(config.data());
  listener.on_start(model, total_steps, steps_per_epoch);

  TrainSummary summary;
  const auto start = Clock::now();
  auto window_start = start;
  double window_loss = 0.0;
  int64_t window_steps = 0, window_samples = 0, consecutive_skips = 0, step = 0;
  auto run_eval = [&](int64_t epoch) {
    EvalResult result = evaluate(model, *test_set, normalization, config.model().loss(),
                                 train_config.eval_batch_size());
    result.step = step;
    result.epoch = epoch;
    metrics.write_eval(result);
    listener.on_eval(result);
    summary.last_eval = result;
  };

  for (int64_t epoch = 0; epoch < train_config.epochs() && step < total_steps; ++epoch) {
    const std::vector<int64_t> order = epoch_order(config, train_set.size, epoch);
    for (int64_t s = 0; s < steps_per_epoch && step < total_steps; ++s) {
      const int64_t first = s * batch;
      const int64_t this_batch = std::min(batch, train_set.size - first);
      StepResult result = train_step.compute_gradients(
          step, this_batch, [&](int64_t offset, int64_t n, Tensor& inputs, int32_t* labels) {
            gather_batch(train_set, order.data() + first + offset, n, normalization, inputs,
                         labels);
          });
      const double lr =
          lr_at(config.optimizer().schedule(), config.optimizer().lr(), step, schedule_steps);
      if (!std::isfinite(result.loss) || !std::isfinite(result.grad_norm)) {
        const std::string what = !std::isfinite(result.loss)
                                     ? "training loss is " + std::to_string(result.loss)
                                     : "gradient norm is " + std::to_string(result.grad_norm);
        DPT_CHECK_AS(ErrorKind::kNonFinite, train_config.on_non_finite() == proto::SKIP)
            << "step " << step << " (epoch " << epoch << "): " << what
            << "; lower optimizer.lr, set optimizer.clip_grad_norm, or set "
               "train.on_non_finite: SKIP";
        ++summary.skipped_steps;
        DPT_CHECK_AS(ErrorKind::kNonFinite,
                     ++consecutive_skips <= train_config.max_consecutive_skips())
            << "step " << step << " (epoch " << epoch << "): " << what << " for "
            << consecutive_skips << " steps in a row (train.max_consecutive_skips is "
            << train_config.max_consecutive_skips() << ")";
        listener.on_skip(step, what);
      } else {
        consecutive_skips = 0;
        train_step.apply(static_cast<float>(lr), result.times);
        window_loss += result.loss;
        summary.final_loss = result.loss;
        ++window_steps;
      }
      window_samples += this_batch;
      ++step;
      TrainProgress progress{step, total_steps,      epoch, result.loss,
                             lr,   result.grad_norm, 0.0,   seconds_since(start)};
      const double window_s = seconds_since(window_start);
      progress.samples_per_s = window_s > 0 ? window_samples / window_s : 0.0;
      listener.on_step(progress);
      if (step % train_config.log_every_steps() == 0 || step == total_steps) {
        if (window_steps > 0) progress.loss = window_loss / window_steps;
        metrics.write_train(progress);
        listener.on_log(progress);
        window_loss = 0.0;
        window_steps = window_samples = 0;
        window_start = Clock::now();
      }
    }
    const bool last_epoch = epoch + 1 == train_config.epochs() || step >= total_steps;
    const int64_t every = train_config.eval_every_epochs();
    if (test_set && (last_epoch || (every > 0 && (epoch + 1) % every == 0))) run_eval(epoch);
  }

  summary.steps = step;
  summary.seconds = seconds_since(start);
  model.save_weights(run_dir + "/model.h5", {{"config", config_to_text(config)},
                                             {"name", config.name()},
                                             {"steps", std::to_string(step)}});
  return summary;
}

}  // namespace dpt
