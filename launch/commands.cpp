// dpt train, dpt eval (fp32 weights or an int8 model file) and dpt data import-idx.
#include "launch/commands.h"

#include <fmt/core.h>
#include <unistd.h>

#include <csignal>
#include <optional>

#include "comm/communicator.h"
#include "core/config.h"
#include "core/dataset.h"
#include "core/idx.h"
#include "core/int8_file.h"
#include "core/model.h"
#include "devices/error.h"
#include "launch/console.h"
#include "launch/device_select.h"
#include "launch/int8_eval.h"
#include "launch/stop_signal.h"
#include "launch/trace_writer.h"
#include "launch/trainer.h"

namespace dpt {

namespace {

// Per-rank step times of a data-parallel run: who computed slowest, who waited most.
void print_rank_stats(const std::vector<RankStats>& stats) {
  if (stats.size() < 2) return;
  fmt::print("per-rank step time (compute without waiting; ms): rank  mean   p99   waiting\n");
  for (std::size_t r = 0; r < stats.size(); ++r) {
    fmt::print("{:>57} {:>5.1f} {:>5.1f} {:>9.1f}\n", r, stats[r].mean_ms, stats[r].p99_ms,
               stats[r].wait_mean_ms);
  }
}

}  // namespace

int run_train(const TrainArgs& args, const WorldInfo& world) {
  const proto::Config config = load_config(args.config, args.overrides);
  // Before anything starts a thread that computes, so that every such thread blocks SIGTERM and
  // SIGINT (launch/stop_signal.h: a signal must not interrupt oneDNN's GEMM).
  std::optional<StopSignal> signals;
  if (config.checkpoint().on_signal()) signals.emplace();
  // The device first: the nccl backend (and auto's choice of it) needs the worker's GPU set.
  DeviceChoice choice = select_device(config.device(), world);
  std::unique_ptr<Communicator> comm = make_communicator(config.comm(), choice.device.get());
  DPT_CHECK_AS(ErrorKind::kConfig, comm->size() == world.size)
      << "comm.backend: \"" << config.comm().backend() << "\" gives a world of " << comm->size()
      << " but the launcher started " << world.size << " processes";
  if (comm->rank() == 0) {
    if (world.size > 1) {
      // Device memory: NCCL, or MPI when it is CUDA-aware (comm.cuda_aware_mpi).
      const char* gradients = choice.device->kind() != DeviceKind::kCuda ? ""
                              : comm->device_memory()
                                  ? "; gradients reduced straight from GPU memory"
                                  : "; gradients staged through page-locked host memory";
      fmt::print(stderr, "world: {} workers over {} (rank 0 on {} node-local workers){}\n",
                 world.size, comm->backend(), world.local_size, gradients);
    }
    fmt::print(stderr, "{}\n{}\n", choice.reason, choice.precision_reason);
  }
  // Rank 0 speaks for the job; the others stay quiet unless they fail.
  ConsoleListener console(isatty(STDERR_FILENO) == 1);
  TrainListener quiet;
  TrainListener& listener = comm->rank() == 0 ? static_cast<TrainListener&>(console) : quiet;
  TrainOptions options;
  options.resume = args.resume;
  if (signals) options.stop_requested = [&signals] { return signals->received() != 0; };
  TrainSummary summary = train(config, *choice.device, *comm, args.run_dir, listener, options);
  if (comm->rank() != 0) return 0;
  if (summary.stopped) {
    fmt::print("stopped by {} after step {}; saved {}; continue with --resume auto\n",
               signals && signals->received() == SIGINT ? "SIGINT" : "a signal", summary.steps,
               summary.last_checkpoint.empty() ? "nothing" : summary.last_checkpoint);
    return 0;
  }
  if (summary.first_step > 0 && summary.steps == summary.first_step) {
    fmt::print("nothing to train: the run was already complete at step {}\n", summary.steps);
  } else {
    fmt::print("trained {} steps in {}, final train loss {:.4f}",
               summary.steps - summary.first_step, format_duration(summary.seconds),
               summary.final_loss);
    if (summary.first_step > 0) fmt::print(" (resumed at step {})", summary.first_step);
    if (summary.skipped_steps > 0) fmt::print(", {} steps skipped", summary.skipped_steps);
    if (summary.loss_scale_skipped > 0) {
      fmt::print(", {} steps skipped by fp16 loss scaling", summary.loss_scale_skipped);
    }
    fmt::print("\n");
  }
  if (summary.last_eval) {
    fmt::print("test_loss {:.4f} test_accuracy {:.4f}\n", summary.last_eval->loss,
               summary.last_eval->accuracy);
  }
  fmt::print("weights: {}/model.h5, metrics: {}/metrics.jsonl\n", args.run_dir, args.run_dir);
  print_rank_stats(summary.rank_stats);
  return 0;
}

int run_eval(const EvalArgs& args) {
  const proto::Config config = load_config(args.config, args.overrides);
  DPT_CHECK_AS(ErrorKind::kConfig, !config.data().test_path().empty())
      << args.config << ": data.test_path: required by dpt eval";
  // int8 inference is CPU code.
  const bool int8_file = is_int8_model_file(args.weights);
  DeviceChoice choice =
      select_device(int8_file ? cpu_only(config.device(), "int8 inference") : config.device());
  Model model(*choice.device, config);
  // An int8 model file (core/int8_file.h) runs on the int8 path; anything else must be fp32
  // weights (load_weights names the file and the format it found).
  std::unique_ptr<Int8Model> int8;
  if (int8_file) {
    int8 = std::make_unique<Int8Model>(*choice.device, load_quantized_model(args.weights, model));
  } else {
    model.load_weights(args.weights);
  }
  const Dataset test_set = load_dataset(config.data().test_path());
  check_dataset_fits(config, model, test_set);
  const Normalization normalization = normalization_from(config.data());
  const int64_t batch = config.train().eval_batch_size();
  EvalResult result = int8 ? evaluate_int8(*int8, *choice.device, test_set, normalization,
                                           config.model().loss(), batch)
                           : evaluate(model, test_set, normalization, config.model().loss(), batch);
  fmt::print("test_loss {:.4f} test_accuracy {:.4f} ({} samples{})\n", result.loss, result.accuracy,
             result.samples, int8 ? ", int8" : "");
  return 0;
}

int run_trace_merge(const TraceMergeArgs& args) {
  const std::string out = args.out.empty() ? args.run_dir + "/trace/merged.json" : args.out;
  const int64_t events = merge_traces(args.run_dir, out);
  fmt::print("wrote {} events to {} (open in chrome://tracing or ui.perfetto.dev)\n", events, out);
  return 0;
}

int run_import_idx(const ImportIdxArgs& args) {
  const int64_t samples = import_idx(args.images, args.labels, args.out, args.num_classes);
  fmt::print("wrote {} samples to {}\n", samples, args.out);
  return 0;
}

}  // namespace dpt
