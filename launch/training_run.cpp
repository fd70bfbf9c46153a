// TrainingRun's set-up and end: the run directory, data, model, step counts, optimizer and resume,
// the outputs, saves and the summary. The loop over epochs and steps is training_loop.cpp.
#include <algorithm>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/config.h"
#include "devices/error.h"
#include "launch/checkpoint.h"
#include "launch/checkpoint_dir.h"
#include "launch/device_transfer.h"
#include "launch/fingerprint.h"
#include "launch/resume.h"
#include "launch/training_run.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;

void write_text_file(const std::string& path, const std::string& text) {
  write_file_atomically(path, text.data(), text.size());
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

TrainingRun::TrainingRun(const proto::Config& config, Device& device, Communicator& comm,
                         const std::string& run_dir, TrainListener& listener,
                         const TrainOptions& options)
    : config_(config),
      comm_(comm),
      listener_(listener),
      options_(options),
      run_dir_(run_dir),
      checkpoint_dir_(run_dir + "/checkpoints"),
      writer_(comm.rank() == 0) {
  if (writer_) {
    prepare_run_dir(run_dir_);
    // Written first: proves the run directory is writable before any work is done.
    write_text_file(run_dir_ + "/config.prototxt", config_to_text(config_));
    prepare_checkpoint_dir(checkpoint_dir_, listener_);
  }
  load_data();
  build_model(device);
  check_batch();
  resume(device);
  open_outputs();
  prepare_step();
  listener_.on_start(*model_, total_steps_, steps_per_epoch_);
}

void TrainingRun::load_data() {
  train_set_ = load_dataset(config_.data().train_path());
  if (!config_.data().test_path().empty()) test_set_ = load_dataset(config_.data().test_path());
  normalization_ = normalization_from(config_.data());
}

void TrainingRun::build_model(Device& device) {
  ModelOptions model_options;
  // On one node the ranks map each other's gradient buffers: all-reduce without copies. (The
  // model calls grad_memory in its constructor only, and then drops it.)
  bool shared_grads = false;
  model_options.grad_memory = [&](std::size_t bytes) {
    std::shared_ptr<void> memory = comm_.allocate_shared(bytes);
    shared_grads = memory != nullptr;
    return memory;
  };
  model_ = std::make_unique<Model>(device, config_, model_options);
  if (device.kind() != DeviceKind::kCpu) {
    // allocate_shared is collective, and the model asks for it on a CPU only (gradients on a
    // GPU stay in device memory). In a world that mixes GPU and CPU workers (device differs per
    // rank) the GPU workers join with 0 bytes: the sizes then differ, so every rank gets null
    // and reduces its own buffer. Without this call the CPU workers' all_gather would meet the
    // GPU workers' next collective, a mismatch that stops the run at start-up.
    comm_.allocate_shared(0);
  } else if (shared_grads) {
    listener_.on_note("gradient buffer in memory the " + std::to_string(comm_.size()) +
                      " workers share: all-reduce without copies");
  } else if (!comm_.shared_memory_problem().empty()) {
    listener_.on_note("gradient buffer in this worker's own memory (all-reduce with copies): " +
                      comm_.shared_memory_problem());
  }
  check_dataset_fits(config_, *model_, train_set_);
  if (test_set_) check_dataset_fits(config_, *model_, *test_set_);
  check_same_run(comm_, config_, *model_, train_set_, test_set_ ? &*test_set_ : nullptr);
  if (options_.initial_params != nullptr) {
    DPT_CHECK(static_cast<int64_t>(options_.initial_params->size()) == model_->num_params())
        << "initial parameters: " << options_.initial_params->size() << " values for a model of "
        << model_->num_params();
    from_host(model_->params(), options_.initial_params->data());
  }
  // Initialisation is seeded and identical everywhere; broadcasting makes it so by construction.
  broadcast_tensor(comm_, model_->params(), 0);
}

void TrainingRun::check_batch() {
  const proto::TrainConfig& train = config_.train();
  batch_ = train.batch_size();
  DPT_CHECK_AS(ErrorKind::kConfig, batch_ <= train_set_.size)
      << "train.batch_size: " << batch_ << " is larger than the " << train_set_.size
      << " samples in " << train_set_.path;
  balance_ = config_.comm().balance() == proto::BALANCE_THROUGHPUT;
  DPT_CHECK_AS(ErrorKind::kConfig, balance_ || batch_ % comm_.size() == 0)
      << "train.batch_size: " << batch_ << " is not divisible by the " << comm_.size()
      << " workers (the global batch is split evenly; use a multiple of " << comm_.size() << ")";
  DPT_CHECK_AS(ErrorKind::kConfig, batch_ >= comm_.size())
      << "train.batch_size: " << batch_ << " is smaller than the " << comm_.size()
      << " workers (comm.balance gives every worker at least one row)";
  steps_per_epoch_ =
      train.drop_last() ? train_set_.size / batch_ : (train_set_.size + batch_ - 1) / batch_;
  total_steps_ = train.epochs() * steps_per_epoch_;
  const int64_t schedule_total = config_.optimizer().schedule().total_steps();
  schedule_steps_ = schedule_total > 0 ? schedule_total : total_steps_;
  if (train.max_steps() > 0) total_steps_ = std::min(total_steps_, train.max_steps());
}

void TrainingRun::resume(Device& device) {
  optimizer_ = make_optimizer(device, config_.optimizer(), model_->num_params());
  fingerprint_ = dataset_fingerprint(train_set_);
  const ResumeResult resumed = resume_training(comm_, options_.resume, checkpoint_dir_, config_,
                                               fingerprint_, *model_, *optimizer_);
  for (const std::string& note : resumed.notes) listener_.on_note(note);
  resumed_ = resumed.resumed;
  loss_scaling_.emplace(config_, options_.loss_scaling);
  loss_scaling_->restore(resumed.resumed, resumed.state, listener_);
  cursor_ = resumed.state;
  balancer_.emplace(config_.comm(), comm_.size(), batch_, cursor_.step, cursor_.balance_shares);
  for (const std::string& note : balancer_->notes()) listener_.on_note(note);
}

void TrainingRun::open_outputs() {
  const int64_t resume_step = resumed_ ? cursor_.step : -1;
  if (writer_) metrics_.emplace(run_dir_ + "/metrics.jsonl", resume_step);
  // TensorBoard (`tensorboard --logdir runs/`): rank 0, created before step 1 so an unwritable
  // directory fails early.
  if (writer_ && config_.monitor().tensorboard()) {
    tensorboard_.emplace(run_dir_ + "/tensorboard", resume_step);
  }
}

void TrainingRun::prepare_step() {
  train_step_ =
      std::make_unique<TrainStep>(*model_, *optimizer_, config_, comm_, loss_scaling_->scaler());
  // The timeline's time zero: all ranks leave this barrier together.
  comm_.barrier();
  if (config_.trace().enabled()) {
    trace_ = std::make_unique<TraceWriter>(run_dir_ + "/trace", comm_.rank(), Clock::now());
    train_step_->set_tracer(trace_.get());
  }
}

// Saves the state after `step_` steps, positioned at `cursor_` (rank 0 writes, the others go on
// and meet it at the next collective).
void TrainingRun::save() {
  if (last_saved_ == step_) return;
  last_saved_ = step_;
  if (!writer_) return;
  cursor_.step = step_;
  cursor_.optimizer_steps = optimizer_->steps();
  cursor_.skipped_steps = summary_.skipped_steps;
  cursor_.consecutive_skips = consecutive_skips_;
  cursor_.world_size = comm_.size();
  cursor_.global_batch = batch_;
  cursor_.optimizer = optimizer_->name();
  cursor_.config_text = config_to_text(config_);
  cursor_.version = DPT_VERSION;
  cursor_.data_fingerprint = fingerprint_;
  cursor_.balance_shares = balancer_->balanced() ? balancer_->shares() : std::vector<int64_t>{};
  loss_scaling_->save(cursor_);
  const std::string path = checkpoint_dir_ + "/" + checkpoint_file_name(step_);
  TraceSpan span(trace_.get(), "checkpoint", "save step " + std::to_string(step_));
  save_checkpoint(path, *model_, *optimizer_, cursor_);
  apply_retention(checkpoint_dir_, config_.checkpoint().keep_last(),
                  config_.checkpoint().keep_every_steps());
  summary_.last_checkpoint = path;
  listener_.on_checkpoint(path, step_);
}

void TrainingRun::stop() {
  // A signal reached some rank: every rank stops after this same step.
  if (config_.checkpoint().on_signal()) save();
  summary_.stopped = true;
  close_summary();
}

void TrainingRun::finish() {
  if (config_.checkpoint().at_end()) save();
  close_summary();
  if (options_.final_params != nullptr) {
    *options_.final_params = to_host(model_->params());
  }
  if (writer_) {
    model_->save_weights(run_dir_ + "/model.h5", {{"config", config_to_text(config_)},
                                                  {"name", config_.name()},
                                                  {"steps", std::to_string(step_)}});
  }
}

void TrainingRun::close_summary() {
  if (comm_.size() > 1) summary_.rank_stats = stragglers_->final_stats();
  if (balancer_->balanced()) summary_.balance_shares = balancer_->shares();
  loss_scaling_->report(summary_);
  summary_.steps = step_;
  summary_.seconds = seconds_since(start_);
}

}  // namespace dpt
