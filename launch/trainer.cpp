// The training loop: epochs, data order, the non-finite guard, the LR schedule, logging,
// evaluation, and the files of the run directory. The step itself is launch/train_step.
#include "launch/trainer.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/loss.h"
#include "core/random.h"
#include "devices/error.h"
#include "launch/balance.h"
#include "launch/checkpoint.h"
#include "launch/checkpoint_dir.h"
#include "launch/device_transfer.h"
#include "launch/fault_injection.h"
#include "launch/fingerprint.h"
#include "launch/loss_scaling.h"
#include "launch/metrics_writer.h"
#include "launch/resume.h"
#include "launch/tensorboard_listener.h"
#include "launch/trace_writer.h"
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

PhaseMs mean_ms(const StepTimes& total, int64_t steps) {
  const double scale = steps > 0 ? 1e3 / static_cast<double>(steps) : 0.0;
  return {total.data_s * scale, total.forward_s * scale, total.backward_s * scale,
          total.sync_s * scale, total.norm_s * scale,    total.optimizer_s * scale};
}

// Creates the checkpoint directory, proves it writable before step 1 (a probe file), and removes
// what saves killed midway left behind.
void prepare_checkpoint_dir(const std::string& dir, TrainListener& listener) {
  std::error_code error;
  fs::create_directories(dir, error);
  DPT_CHECK_AS(ErrorKind::kIo, !error)
      << dir << ": cannot create the checkpoint directory: " << error.message();
  const std::string probe = dir + "/.write_probe";
  write_text_file(probe, "dpt\n");
  fs::remove(probe, error);
  for (const std::string& path : remove_leftovers(dir)) {
    listener.on_note("removed " + path + ", left by a save that was interrupted");
  }
}

void prepare_run_dir(const std::string& run_dir) {
  std::error_code error;
  fs::create_directories(run_dir, error);
  DPT_CHECK_AS(ErrorKind::kIo, !error)
      << run_dir << ": cannot create the run directory: " << error.message();
}

}  // namespace

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
                    const std::vector<int64_t>& shares) {
  Device& device = model.device();
  Shard shard{0, dataset.size};
  if (comm && !shares.empty()) {
    shard = shard_in(apportion(dataset.size, std::vector<double>(shares.begin(), shares.end())),
                     comm->rank());
  } else if (comm) {
    shard = shard_of(dataset.size, comm->rank(), comm->size());
  }
  batch_size = std::min(batch_size, std::max<int64_t>(shard.end - shard.begin, 1));
  BatchLoader loader(device, batch_size, model.input_size(), model.dtype());
  std::vector<int64_t> indices(static_cast<std::size_t>(shard.end - shard.begin));
  std::iota(indices.begin(), indices.end(), shard.begin);
  // Rows of this rank's shard, from its start.
  const BatchSource source = [&](int64_t row, int64_t n, Tensor& inputs, int32_t* labels) {
    gather_batch(dataset, indices.data() + row, n, normalization, inputs, labels);
  };
  // {loss sum, correct}, summed over this rank's shard, then over ranks.
  double totals[2] = {0.0, 0.0};
  for (int64_t row = 0; row < shard.end - shard.begin; row += batch_size) {
    const int64_t n = std::min(batch_size, shard.end - shard.begin - row);
    const DeviceBatch micro = loader.take({0, row, n}, source);
    const Tensor& logits = model.forward(micro.inputs, Pass{});
    // The next batch loads while the device runs this one.
    const int64_t next_n = std::min(batch_size, shard.end - shard.begin - row - n);
    if (next_n > 0) loader.prefetch({0, row + n, next_n}, source);
    LossResult batch = compute_loss(loss, logits, micro.labels, nullptr, 0.0);
    totals[0] += batch.loss_sum;
    totals[1] += static_cast<double>(batch.correct);
  }
  if (comm && comm->size() > 1) comm->all_reduce(totals, totals, 2, DType::kF64, ReduceOp::kSum);
  EvalResult result;
  result.samples = dataset.size;
  if (dataset.size > 0) {
    result.loss = totals[0] / static_cast<double>(dataset.size);
    result.accuracy = totals[1] / static_cast<double>(dataset.size);
  }
  return result;
}

namespace {

// Runs `body`; a communication error gets "<what> <step>: " in front ("step 41: all_reduce #87
// timed out"), so the user learns what the job was doing when a peer went missing. The label is
// built only on that path: this wraps every step.
template <typename Body>
auto in_context(const char* what, int64_t step, Body body) -> decltype(body()) {
  try {
    return body();
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kComm) throw;
    throw Error(e.kind(), std::string(what) + " " + std::to_string(step) + ": " + e.what());
  }
}

}  // namespace

TrainSummary train(const proto::Config& config, Device& device, Communicator& comm,
                   const std::string& run_dir, TrainListener& listener,
                   const TrainOptions& options) {
  const proto::TrainConfig& train_config = config.train();
  const proto::CheckpointConfig& checkpoint_config = config.checkpoint();
  const bool writer = comm.rank() == 0;  // only rank 0 writes files
  const std::string checkpoint_dir = run_dir + "/checkpoints";
  if (writer) {
    prepare_run_dir(run_dir);
    // Written first: proves the run directory is writable before any work is done.
    write_text_file(run_dir + "/config.prototxt", config_to_text(config));
    prepare_checkpoint_dir(checkpoint_dir, listener);
  }

  const Dataset train_set = load_dataset(config.data().train_path());
  std::optional<Dataset> test_set;
  if (!config.data().test_path().empty()) test_set = load_dataset(config.data().test_path());
  ModelOptions model_options;
  // On one node the ranks map each other's gradient buffers: all-reduce without copies.
  bool shared_grads = false;
  model_options.grad_memory = [&](std::size_t bytes) {
    std::shared_ptr<void> memory = comm.allocate_shared(bytes);
    shared_grads = memory != nullptr;
    return memory;
  };
  Model model(device, config, model_options);
  if (shared_grads) {
    listener.on_note("gradient buffer in memory the " + std::to_string(comm.size()) +
                     " workers share: all-reduce without copies");
  }
  check_dataset_fits(config, model, train_set);
  if (test_set) check_dataset_fits(config, model, *test_set);
  check_same_run(comm, config, model, train_set, test_set ? &*test_set : nullptr);
  if (options.initial_params != nullptr) {
    DPT_CHECK(static_cast<int64_t>(options.initial_params->size()) == model.num_params())
        << "initial parameters: " << options.initial_params->size() << " values for a model of "
        << model.num_params();
    from_host(model.params(), options.initial_params->data());
  }
  // Initialisation is seeded and identical everywhere; broadcasting makes it so by construction.
  broadcast_tensor(comm, model.params(), 0);

  const int64_t batch = train_config.batch_size();
  DPT_CHECK_AS(ErrorKind::kConfig, batch <= train_set.size)
      << "train.batch_size: " << batch << " is larger than the " << train_set.size << " samples in "
      << train_set.path;
  const bool balance = config.comm().balance() == proto::BALANCE_THROUGHPUT;
  DPT_CHECK_AS(ErrorKind::kConfig, balance || batch % comm.size() == 0)
      << "train.batch_size: " << batch << " is not divisible by the " << comm.size()
      << " workers (the global batch is split evenly; use a multiple of " << comm.size() << ")";
  DPT_CHECK_AS(ErrorKind::kConfig, batch >= comm.size())
      << "train.batch_size: " << batch << " is smaller than the " << comm.size()
      << " workers (comm.balance gives every worker at least one row)";
  const int64_t steps_per_epoch =
      train_config.drop_last() ? train_set.size / batch : (train_set.size + batch - 1) / batch;
  int64_t total_steps = train_config.epochs() * steps_per_epoch;
  const int64_t schedule_steps = config.optimizer().schedule().total_steps() > 0
                                     ? config.optimizer().schedule().total_steps()
                                     : total_steps;
  if (train_config.max_steps() > 0) total_steps = std::min(total_steps, train_config.max_steps());

  std::unique_ptr<Optimizer> optimizer =
      make_optimizer(device, config.optimizer(), model.num_params());
  const std::string fingerprint = dataset_fingerprint(train_set);
  const ResumeResult resumed =
      resume_training(comm, options.resume, checkpoint_dir, config, fingerprint, model, *optimizer);
  for (const std::string& note : resumed.notes) listener.on_note(note);
  LossScaling loss_scaling(config, options.loss_scaling);
  loss_scaling.restore(resumed.resumed, resumed.state, listener);
  TrainState cursor = resumed.state;  // where the next step starts; zero for a fresh run
  Balancer balancer(config.comm(), comm.size(), batch, cursor.step, cursor.balance_shares);
  for (const std::string& note : balancer.notes()) listener.on_note(note);
  std::optional<MetricsWriter> metrics;
  if (writer) metrics.emplace(run_dir + "/metrics.jsonl", resumed.resumed ? cursor.step : -1);
  // TensorBoard (`tensorboard --logdir runs/`): rank 0, created before step 1 so an unwritable
  // directory fails early.
  std::optional<TensorBoardListener> tensorboard;
  if (writer && config.monitor().tensorboard()) {
    tensorboard.emplace(run_dir + "/tensorboard", resumed.resumed ? cursor.step : -1);
  }

  TrainStep train_step(model, *optimizer, config, comm, loss_scaling.scaler());
  // The timeline's time zero: all ranks leave this barrier together.
  comm.barrier();
  std::unique_ptr<TraceWriter> trace;
  if (config.trace().enabled()) {
    trace = std::make_unique<TraceWriter>(run_dir + "/trace", comm.rank(), Clock::now());
    train_step.set_tracer(trace.get());
  }
  const Normalization normalization = normalization_from(config.data());
  listener.on_start(model, total_steps, steps_per_epoch);

  TrainSummary summary;
  summary.first_step = cursor.step;
  summary.skipped_steps = cursor.skipped_steps;
  const auto start = Clock::now();
  auto window_start = start;
  double window_loss = 0.0;
  int64_t window_steps = 0, window_samples = 0, consecutive_skips = cursor.consecutive_skips;
  StepTimes window_times;
  int64_t window_timed = 0;  // steps in window_times (skipped ones included)
  StragglerMonitor stragglers(comm, comm.size() > 1 ? config.monitor().straggler_every_steps() : 0,
                              config.monitor().straggler_threshold());
  auto finish_ranks = [&] {
    if (comm.size() > 1) summary.rank_stats = stragglers.final_stats();
    if (balancer.balanced()) summary.balance_shares = balancer.shares();
  };
  int64_t step = cursor.step, last_saved = resumed.resumed ? cursor.step : -1;
  auto run_eval = [&](int64_t epoch) {
    TraceSpan span(trace.get(), "eval", "evaluate");
    EvalResult result = in_context("evaluation after step", step, [&] {
      return evaluate(model, *test_set, normalization, config.model().loss(),
                      train_config.eval_batch_size(), &comm,
                      balancer.balanced() ? balancer.shares() : std::vector<int64_t>{});
    });
    result.step = step;
    result.epoch = epoch;
    if (metrics) metrics->write_eval(result);
    if (tensorboard) tensorboard->on_eval(result);
    listener.on_eval(result);
    summary.last_eval = result;
  };
  // Saves the state after `step` steps, positioned at `cursor` (rank 0 writes, the others go on
  // and meet it at the next collective).
  auto save = [&] {
    if (last_saved == step) return;
    last_saved = step;
    if (!writer) return;
    cursor.step = step;
    cursor.optimizer_steps = optimizer->steps();
    cursor.skipped_steps = summary.skipped_steps;
    cursor.consecutive_skips = consecutive_skips;
    cursor.world_size = comm.size();
    cursor.global_batch = batch;
    cursor.optimizer = optimizer->name();
    cursor.config_text = config_to_text(config);
    cursor.version = DPT_VERSION;
    cursor.data_fingerprint = fingerprint;
    cursor.balance_shares = balancer.balanced() ? balancer.shares() : std::vector<int64_t>{};
    loss_scaling.save(cursor);
    const std::string path = checkpoint_dir + "/" + checkpoint_file_name(step);
    TraceSpan span(trace.get(), "checkpoint", "save step " + std::to_string(step));
    save_checkpoint(path, model, *optimizer, cursor);
    apply_retention(checkpoint_dir, checkpoint_config.keep_last(),
                    checkpoint_config.keep_every_steps());
    summary.last_checkpoint = path;
    listener.on_checkpoint(path, step);
  };

  std::vector<int64_t> next_order;  // the next epoch's, once a step has prefetched from it
  for (int64_t epoch = cursor.epoch; epoch < train_config.epochs() && step < total_steps; ++epoch) {
    const std::vector<int64_t> order =
        next_order.empty() ? epoch_order(config, train_set.size, epoch) : std::move(next_order);
    next_order.clear();
    const int64_t first_s = epoch == cursor.epoch ? cursor.step_in_epoch : 0;
    for (int64_t s = first_s; s < steps_per_epoch && step < total_steps; ++s) {
      const int64_t first = s * batch;
      const int64_t this_batch = std::min(batch, train_set.size - first);
      const auto step_start = Clock::now();
      if (trace && config.trace().max_steps() > 0 &&
          step - summary.first_step >= config.trace().max_steps()) {
        trace->stop();
      }
      TraceSpan step_span(trace.get(), "step", trace ? "step " + std::to_string(step) : "");
      maybe_inject_fault(config.fault_injection(), comm.rank(), step);
      const bool stop_here = options.stop_requested && options.stop_requested();
      const Shard shard = balancer.shard(this_batch, comm.rank());
      // The next step's batch, loaded while this one computes (if the balancer moves its shard,
      // the loader loads the rows asked for then).
      std::optional<NextBatch> next;
      const bool wraps = s + 1 == steps_per_epoch;
      if (step + 1 < total_steps && (!wraps || epoch + 1 < train_config.epochs())) {
        if (wraps) next_order = epoch_order(config, train_set.size, epoch + 1);
        const int64_t next_first = wraps ? 0 : first + batch;
        const int64_t* next_rows = (wraps ? next_order : order).data() + next_first;
        next = NextBatch{
            step + 1, balancer.shard(std::min(batch, train_set.size - next_first), comm.rank()),
            [&, next_rows](int64_t row, int64_t n, Tensor& inputs, int32_t* labels) {
              gather_batch(train_set, next_rows + row, n, normalization, inputs, labels);
            }};
      }
      StepResult result = in_context("step", step, [&] {
        return train_step.compute_gradients(
            step, this_batch, shard,
            [&](int64_t row, int64_t n, Tensor& inputs, int32_t* labels) {
              gather_batch(train_set, order.data() + first + row, n, normalization, inputs, labels);
            },
            stop_here, next ? &*next : nullptr);
      });
      const double lr =
          lr_at(config.optimizer().schedule(), config.optimizer().lr(), step, schedule_steps);
      // A non-finite loss is the guard's even with loss scaling: no scale can fix it.
      if (!std::isfinite(result.loss) || (!result.overflow && !std::isfinite(result.grad_norm))) {
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
      } else if (result.overflow) {
        listener.on_skip(step, loss_scaling.skipped(step));
      } else {
        consecutive_skips = 0;
        train_step.apply(static_cast<float>(lr), result.times);
        if (options.after_update) options.after_update(model.params());
        window_loss += result.loss;
        summary.final_loss = result.loss;
        ++window_steps;
      }
      window_samples += this_batch;
      window_times.add(result.times);
      ++window_timed;
      ++step;
      const double step_s = seconds_since(step_start);
      if (std::optional<BalanceDecision> decision = in_context("balance after step", step, [&] {
            return balancer.record(comm, step, per_sample_seconds(result.times),
                                   shard.end - shard.begin);
          })) {
        if (metrics) metrics->write_balance(*decision);
        listener.on_note(describe(*decision));
      }
      if (std::optional<RankWindow> ranks = in_context("straggler report after step", step, [&] {
            return stragglers.record(step, step_s, result.times.sync_s);
          })) {
        if (metrics) metrics->write_ranks(*ranks);
        if (tensorboard) {
          tensorboard->scalars(step,
                               {{"ranks/slowest_compute_ms", ranks->compute_ms[ranks->slowest]},
                                {"ranks/slowest_over_median", ranks->ratio}});
        }
        listener.on_ranks(*ranks);
        if (ranks->straggler) {
          listener.on_note(fmt::format(
              "straggler: rank {} took {:.1f} ms per step to compute, {:.2f}x the median, in "
              "steps {}-{} (the others waited for it){}",
              ranks->slowest, ranks->compute_ms[ranks->slowest], ranks->ratio,
              ranks->first_step + 1, ranks->last_step,
              balance ? "" : "; comm.balance: BALANCE_THROUGHPUT gives slower ranks fewer rows"));
        }
      }
      const bool epoch_end = s + 1 == steps_per_epoch;
      cursor.epoch = epoch_end ? epoch + 1 : epoch;
      cursor.step_in_epoch = epoch_end ? 0 : s + 1;
      TrainProgress progress;
      progress.step = step;
      progress.total_steps = total_steps;
      progress.epoch = epoch;
      progress.loss = result.loss;
      progress.lr = lr;
      progress.grad_norm = result.grad_norm;
      loss_scaling.report(progress);
      progress.elapsed_s = seconds_since(start);
      const double window_s = seconds_since(window_start);
      progress.samples_per_s = window_s > 0 ? window_samples / window_s : 0.0;
      listener.on_step(progress);
      if (step % train_config.log_every_steps() == 0 || step == total_steps || result.stop) {
        if (window_steps > 0) progress.loss = window_loss / window_steps;
        progress.time_ms = mean_ms(window_times, window_timed);
        if (metrics) metrics->write_train(progress);
        if (tensorboard) tensorboard->on_log(progress);
        listener.on_log(progress);
        window_loss = 0.0;
        window_steps = window_samples = 0;
        window_times = StepTimes();
        window_timed = 0;
        window_start = Clock::now();
      }
      if (result.stop) {
        // A signal reached some rank: every rank stops after this same step.
        if (checkpoint_config.on_signal()) save();
        summary.stopped = true;
        finish_ranks();
        loss_scaling.report(summary);
        summary.steps = step;
        summary.seconds = seconds_since(start);
        return summary;
      }
      // Saves due at an epoch's end wait for its evaluation.
      const int64_t every = checkpoint_config.every_steps();
      if (!epoch_end && every > 0 && step % every == 0) save();
    }
    const bool epoch_done = cursor.epoch == epoch + 1;
    const bool last_epoch = epoch + 1 == train_config.epochs() || step >= total_steps;
    const int64_t every = train_config.eval_every_epochs();
    if (test_set && (last_epoch || (every > 0 && (epoch + 1) % every == 0))) run_eval(epoch);
    const int64_t save_steps = checkpoint_config.every_steps();
    const int64_t save_epochs = checkpoint_config.every_epochs();
    if (epoch_done && ((save_steps > 0 && step % save_steps == 0) ||
                       (save_epochs > 0 && (epoch + 1) % save_epochs == 0))) {
      save();
    }
  }
  if (checkpoint_config.at_end()) save();
  finish_ranks();
  loss_scaling.report(summary);

  summary.steps = step;
  summary.seconds = seconds_since(start);
  if (options.final_params != nullptr) {
    *options.final_params = to_host(model.params());
  }
  if (writer) {
    model.save_weights(run_dir + "/model.h5", {{"config", config_to_text(config)},
                                               {"name", config.name()},
                                               {"steps", std::to_string(step)}});
  }
  return summary;
}

}  // namespace dpt
