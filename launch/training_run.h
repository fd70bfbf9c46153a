// One training run, the body of train() (launch/trainer.h): the constructor sets the run up
// (run directory, data, model, optimizer, resume, loss scaling, balancer, metrics, TensorBoard,
// trace; training_run.cpp), run() goes through the epochs and their steps (training_loop.cpp;
// launch/train_step does the step itself), writes the log lines, evaluates, saves checkpoints,
// stops on a signal and finishes the run (training_run.cpp). Every rank makes the same
// collective calls in the same order; only rank 0 writes files.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "core/config.pb.h"
#include "core/dataset.h"
#include "core/model.h"
#include "launch/balance.h"
#include "launch/log_window.h"
#include "launch/loss_scaling.h"
#include "launch/metrics_writer.h"
#include "launch/straggler.h"
#include "launch/tensorboard_listener.h"
#include "launch/trace_writer.h"
#include "launch/train_step.h"
#include "launch/trainer.h"
#include "optim/optimizer.h"

namespace dpt {

class TrainingRun {
 public:
  // Sets the run up and calls listener.on_start; the arguments are train()'s and must outlive
  // the run. A collective (the checks that all ranks run the same job, the initial broadcast,
  // resume, the barrier that starts the timeline). Throws what train() documents.
  TrainingRun(const proto::Config& config, Device& device, Communicator& comm,
              const std::string& run_dir, TrainListener& listener, const TrainOptions& options);
  // Trains until train.epochs, train.max_steps or a stop request; call once.
  TrainSummary run();

 private:
  using Clock = std::chrono::steady_clock;
  static double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

  // Set-up (training_run.cpp), in this order. build_model: the model, checked against the data
  // and the other ranks, with rank 0's parameters everywhere. check_batch: the global batch
  // against the data and the workers, then the step counts. resume: the optimizer, the state a
  // checkpoint holds, loss scaling and the balancer. open_outputs: metrics.jsonl and TensorBoard
  // (rank 0). prepare_step: the training step and the trace, timed from a barrier.
  void load_data();
  void build_model(Device& device);
  void check_batch();
  void resume(Device& device);
  void open_outputs();
  void prepare_step();

  // The loop (training_loop.cpp). run_epoch and run_step return false when a stop request ended
  // the run.
  bool run_epoch(int64_t epoch);
  bool run_step(int64_t epoch, int64_t s, const std::vector<int64_t>& order);
  BatchSource rows_from(const int64_t* rows) const;
  std::optional<NextBatch> next_batch(int64_t epoch, int64_t s, const std::vector<int64_t>& order);
  void update(StepResult& result, int64_t epoch, double lr);
  void record_balance(const StepResult& result, Shard shard);
  void record_stragglers(double step_s, const StepResult& result);
  void report(const StepResult& result, int64_t epoch, double lr);
  void log(TrainProgress progress);
  void end_epoch(int64_t epoch);
  void evaluate_test_set(int64_t epoch);

  // The end (training_run.cpp). save: a checkpoint of the state after step_ steps (at most one
  // per step; rank 0 writes). stop: after a stop request. finish: after the last step. Both
  // close the summary (a collective with more than one worker: the per-rank statistics).
  void save();
  void stop();
  void finish();
  void close_summary();

  const proto::Config& config_;
  Communicator& comm_;
  TrainListener& listener_;
  const TrainOptions& options_;
  const std::string run_dir_;
  const std::string checkpoint_dir_;
  const bool writer_;  // only rank 0 writes files

  Dataset train_set_;
  std::optional<Dataset> test_set_;
  std::unique_ptr<Model> model_;
  // evaluate()'s page-locked staging buffers, kept from one evaluation to the next (made at the
  // first; launch/device_transfer.h make_pinned_host with keep_freed).
  std::unique_ptr<Device> eval_staging_;
  int64_t batch_ = 0;     // the global batch
  bool balance_ = false;  // comm.balance: BALANCE_THROUGHPUT
  int64_t steps_per_epoch_ = 0;
  int64_t total_steps_ = 0;
  int64_t schedule_steps_ = 0;  // the LR schedule's length
  std::unique_ptr<Optimizer> optimizer_;
  std::string fingerprint_;  // of the training data, for checkpoints
  bool resumed_ = false;
  std::optional<LossScaling> loss_scaling_;
  TrainState cursor_;  // where the next step starts; zero for a fresh run
  std::optional<Balancer> balancer_;
  std::optional<MetricsWriter> metrics_;
  std::optional<TensorBoardListener> tensorboard_;
  std::unique_ptr<TrainStep> train_step_;
  std::unique_ptr<TraceWriter> trace_;
  Normalization normalization_;

  TrainSummary summary_;
  Clock::time_point start_;
  LogWindow window_;
  std::optional<StragglerMonitor> stragglers_;
  int64_t step_ = 0;  // steps done
  int64_t last_saved_ = -1;
  int64_t consecutive_skips_ = 0;
  std::vector<int64_t> next_order_;  // the next epoch's, once a step has prefetched from it
};

}  // namespace dpt
