// dpt tune CONFIG [--out FILE] [--json FILE]: sets the memory budget, loads the data, runs the
// tuner (launch/tuner.h) with real measurements (launch/tune_probe.h) on every rank, and on rank 0
// writes the tuned config with its explanation as a comment header, prints the explanation and
// optionally writes the numbers as JSON.
#include <fmt/core.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "comm/communicator.h"
#include "core/atomic_file.h"
#include "core/config.h"
#include "core/dataset.h"
#include "devices/cpu_info.h"
#include "devices/error.h"
#include "launch/commands.h"
#include "launch/device_select.h"
#include "launch/metrics_writer.h"
#include "launch/trainer.h"
#include "launch/tune_probe.h"
#include "launch/tuner.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;

// CONFIG's directory, CONFIG's stem + "_tuned" + its extension (".prototxt" when it has none).
std::string default_out(const std::string& config) {
  const fs::path path(config);
  const std::string extension =
      path.extension().empty() ? std::string(".prototxt") : path.extension().string();
  return (path.parent_path() / (path.stem().string() + "_tuned" + extension)).string();
}

int64_t dataset_bytes(const Dataset& dataset) {
  return static_cast<int64_t>(dataset.inputs_u8.size() + dataset.inputs_f32.size() * sizeof(float) +
                              dataset.labels.size() * sizeof(int32_t));
}

int64_t available_memory() {
  std::ifstream file("/proc/meminfo");
  DPT_CHECK_AS(ErrorKind::kConfig, file.good())
      << "tune.memory_budget_mb: 0 derives the budget from /proc/meminfo, which cannot be read; "
         "set tune.memory_budget_mb";
  std::stringstream text;
  text << file.rdbuf();
  return parse_meminfo(text.str()).available_bytes;
}

nlohmann::json result_json(const TuneArgs& args, const std::string& out, const TuneInputs& in,
                           const proto::Config& config, const TuneResult& r) {
  nlohmann::json table = nlohmann::json::array();
  for (const BatchTiming& t : r.table) {
    table.push_back({{"batch", t.batch},
                     {"step_ms", t.step_s * 1e3},
                     {"samples_per_s", t.samples_per_s},
                     {"peak_bytes", t.peak_bytes}});
  }
  nlohmann::json range = nullptr;
  if (r.lr_pick) {
    nlohmann::json points = nlohmann::json::array();
    for (const LrPoint& p : r.lr_points) {
      points.push_back(
          {{"lr", p.lr},
           {"loss", std::isfinite(p.loss) ? nlohmann::json(p.loss) : nullptr},
           {"smoothed", std::isfinite(p.smoothed) ? nlohmann::json(p.smoothed) : nullptr}});
    }
    range = {{"points", points},
             {"min_loss_lr", r.lr_points[r.lr_pick->min_index].lr},
             {"steepest_lr", r.lr_points[r.lr_pick->steepest_index].lr},
             {"pick", r.lr_pick->lr},
             {"rule", "min_loss_lr / 10"}};
  }
  const proto::LrScheduleConfig& schedule = r.tuned.optimizer().schedule();
  return {{"config", args.config},
          {"out", out},
          {"workers", in.workers},
          {"budget_bytes", in.budget_bytes},
          {"budget_source", in.budget_source},
          {"memory_fit",
           {{"batches", {r.fit_batches[0], r.fit_batches[1]}},
            {"bytes", {r.fit_bytes[0], r.fit_bytes[1]}},
            {"fixed_bytes", r.fit.fixed_bytes},
            {"per_sample_bytes", r.fit.per_sample_bytes}}},
          {"batch_cap", r.cap},
          {"largest_batch", r.largest},
          {"largest_batch_peak_bytes", r.largest_peak},
          {"throughput", table},
          {"fastest_batch", r.table[r.fastest].batch},
          {"chosen_batch", r.chosen ? nlohmann::json(r.table[*r.chosen].batch) : nullptr},
          {"global_batch", r.global_batch},
          {"micro_batch", r.accumulation.micro},
          {"accumulation_steps", r.accumulation.steps},
          {"lr",
           {{"config", config.optimizer().lr()},
            {"reference_batch", r.reference_batch},
            {"rule", lr_scaling_name(r.rule)},
            {"scaled", r.scaled_lr},
            {"tuned", r.tuned.optimizer().lr()}}},
          {"lr_range_test", range},
          {"warmup_steps", schedule.warmup_steps()},
          {"warmup_start_factor", schedule.warmup_start_factor()},
          {"eval_batch_size", r.tuned.train().eval_batch_size()},
          {"explanation", r.explanation}};
}

}  // namespace

int run_tune(const TuneArgs& args, const WorldInfo& world) {
  const proto::Config config = load_config(args.config, args.overrides);
  const std::string out = args.out.empty() ? default_out(args.config) : args.out;
  std::error_code error;
  DPT_CHECK_AS(ErrorKind::kConfig, fs::absolute(out).lexically_normal() !=
                                           fs::absolute(args.config).lexically_normal() &&
                                       !fs::equivalent(out, args.config, error))
      << "--out: " << out << " is the input config; dpt tune never overwrites it";
  std::unique_ptr<Communicator> comm = make_communicator(config.comm());
  DPT_CHECK_AS(ErrorKind::kConfig, comm->size() == world.size)
      << "comm.backend: \"" << config.comm().backend() << "\" gives a world of " << comm->size()
      << " but the launcher started " << world.size << " processes";
  const proto::TuneConfig& tune_config = config.tune();
  // Read before any worker loads data, which MemAvailable would otherwise count twice.
  const int64_t available = tune_config.memory_budget_mb() > 0 ? 0 : available_memory();
  comm->barrier();
  // The memory budget is host memory (MemAvailable): tuning is for the CPU.
  DeviceChoice choice = select_device(cpu_only(config.device(), "dpt tune"), world);
  const Dataset train_set = load_dataset(config.data().train_path());
  std::optional<Dataset> test_set;
  if (!config.data().test_path().empty()) test_set = load_dataset(config.data().test_path());
  {
    const Model model(*choice.device, config);
    check_dataset_fits(config, model, train_set);
    if (test_set) check_dataset_fits(config, model, *test_set);
  }

  TuneInputs in;
  in.workers = comm->size();
  in.train_samples = train_set.size;
  in.test_samples = test_set ? test_set->size : 0;
  if (tune_config.memory_budget_mb() > 0) {
    in.budget_bytes = static_cast<int64_t>(tune_config.memory_budget_mb() * (1 << 20));
    in.budget_source = "tune.memory_budget_mb";
  } else {
    const int64_t data = dataset_bytes(train_set) + (test_set ? dataset_bytes(*test_set) : 0);
    in.budget_bytes =
        cpu_memory_budget(available, tune_config.memory_fraction(), world.local_size, data);
    in.budget_source = fmt::format(
        "tune.memory_fraction {:g} x MemAvailable {} / {} workers on this node - {} of datasets "
        "per worker",
        tune_config.memory_fraction(), format_bytes(static_cast<double>(available)),
        world.local_size, format_bytes(static_cast<double>(data)));
    // Nodes may differ: every rank takes the smallest, so all decide alike.
    double budget = static_cast<double>(in.budget_bytes);
    if (comm->size() > 1) comm->all_reduce(&budget, &budget, 1, DType::kF64, ReduceOp::kMin);
    in.budget_bytes = static_cast<int64_t>(budget);
    DPT_CHECK_AS(ErrorKind::kConfig, in.budget_bytes > 0)
        << "tune.memory_budget_mb: 0 derives a budget of " << format_bytes(budget) << " ("
        << in.budget_source << "); set tune.memory_budget_mb";
  }

  StepProbe probe(config, *choice.device, *comm, train_set);
  const TuneResult result = tune(config, in, probe);
  if (comm->rank() != 0) return 0;
  std::string text = fmt::format(
      "# Tuned by `dpt tune {}` (dpt {}): {} worker{}, {}.\n"
      "# Each line below says what was measured or chosen and why (README \"Tuning\").\n",
      args.config, DPT_VERSION, in.workers, in.workers > 1 ? "s" : "", choice.device->name());
  for (const std::string& line : result.explanation) text += "# " + line + "\n";
  text += config_to_text(result.tuned);
  write_file_atomically(out, text.data(), text.size());
  for (const std::string& line : result.explanation) fmt::print("{}\n", line);
  fmt::print("wrote {}\n", out);
  if (!args.json.empty()) {
    write_json_file(args.json, result_json(args, out, in, config, result));
    fmt::print("wrote {}\n", args.json);
  }
  return 0;
}

}  // namespace dpt
