// dpt bench report (launch/bench_report.h): runs the measurements and turns their JSON into the
// rows of one ReportTable (launch/report_table.h), so the printed table, the CSV and the JSON are
// the same numbers. Ratios are against ceilings measured in this same run.
#include "launch/bench_report.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "comm/communicator.h"
#include "core/atomic_file.h"
#include "core/config.h"
#include "core/dataset.h"
#include "devices/cpu_device.h"
#include "devices/cpu_info.h"
#include "devices/cpu_peak.h"
#include "devices/error.h"
#include "launch/bench.h"
#include "launch/comm_probe.h"
#include "launch/device_select.h"
#include "launch/metrics_writer.h"
#include "launch/report_table.h"
#include "launch/trainer.h"

namespace dpt {
namespace {

using nlohmann::json;

double number(const json& object, const char* key) { return object.at(key).get<double>(); }

std::string size_text(uint64_t bytes) {
  if (bytes >= (1 << 20)) return fmt::format("{} MiB", bytes >> 20);
  return fmt::format("{} KiB", bytes >> 10);
}

// Compute ceilings, and the step's plain GEMMs against them.
void add_compute(ReportTable& table, const FmaPeak& peak, const TriadBandwidth& triad,
                 const json& step) {
  const char* section = "compute";
  table.add(section, "FMA peak (measured)", peak.gflops, "GFLOP/s",
            fmt::format("float32, {} kernel, {} threads", peak.isa, peak.threads));
  for (const auto& [library, result] : step.at("sgemm").items()) {
    const double gflops = number(result, "gflops");
    table.add(section, fmt::format("sgemm at the step's shapes, {}", library), gflops, "GFLOP/s",
              fmt::format("{:.1f} % of FMA peak{}", 100 * gflops / peak.gflops,
                          result.at("in_use").get<bool>() ? "; library in use" : ""));
  }
  const json& bf16 = step.at("bf16_matmul");
  if (bf16.contains("na")) {
    table.add_na(section, "bf16 matmul at the step's shapes", bf16.at("na").get<std::string>());
  } else {
    const double gflops = number(bf16, "gflops");
    table.add(section, "bf16 matmul at the step's shapes", gflops, "GFLOP/s",
              fmt::format("{:.1f} % of the float32 FMA peak ({:.2f}x oneDNN sgemm)",
                          100 * gflops / peak.gflops, number(bf16, "over_onednn_sgemm")));
  }
  table.add(section, "memory bandwidth, triad", triad.gbytes_per_s, "GB/s",
            fmt::format("a[i] = b[i] + s c[i], 3 x {} arrays; no vendor figure is read, this is "
                        "the ceiling",
                        size_text(static_cast<uint64_t>(triad.array_bytes))));
}

void add_training(ReportTable& table, const json& step, const FmaPeak& peak) {
  const char* section = "training";
  for (const char* precision : {"fp32", "bf16"}) {
    const json& run = step.at(precision);
    const std::string label = precision == std::string("fp32") ? "float32" : "bf16";
    if (run.contains("na")) {
      table.add_na(section, label + " step", run.at("na").get<std::string>());
      continue;
    }
    table.add(section, label + " samples/s", number(run, "samples_per_s"), "samples/s",
              fmt::format("batch {}", step.at("batch_size").get<int64_t>()));
    table.add(section, label + " step p50", number(run, "step_time_p50_ms"), "ms");
    table.add(section, label + " step p95", number(run, "step_time_p95_ms"), "ms");
    table.add(section, label + " step p99", number(run, "step_time_p99_ms"), "ms");
    table.add(section, label + " step GEMM rate", number(run, "step_gflops"), "GFLOP/s",
              fmt::format("{:.1f} % of FMA peak", 100 * number(run, "step_gflops") / peak.gflops));
    const json& phases = run.at("phase_ms");
    const double total = number(run, "step_time_p50_ms");
    const std::pair<const char*, const char*> split[] = {{"forward", "forward"},
                                                         {"backward", "backward + loss"},
                                                         {"grad_sync", "gradient sync"},
                                                         {"optimizer", "optimizer"},
                                                         {"data", "data"}};
    for (const auto& [key, name] : split) {
      const double ms = number(phases, key);
      table.add(section, fmt::format("{} {}", label, name), ms, "ms",
                fmt::format("{:.0f} % of the p50 step (mean per step)", 100 * ms / total));
    }
  }
  if (step.contains("bf16_step_speedup")) {
    table.add(section, "bf16 step speedup", number(step, "bf16_step_speedup"), "x",
              "float32 p50 / bf16 p50, measured taking turns");
  }
}

void add_power(ReportTable& table, const json& step) {
  const char* section = "power and energy";
  for (const char* precision : {"fp32", "bf16"}) {
    const json& run = step.at(precision);
    if (run.contains("na")) continue;
    for (const auto& [meter, e] : run.at("energy").items()) {
      const std::string label = fmt::format("{} training, {}", precision, meter);
      if (e.contains("na")) {
        table.add_na(section, label, e.at("na").get<std::string>());
        continue;
      }
      table.add(section, label + ": average power", number(e, "watts"), "W");
      table.add(section, label + ": energy per step", number(e, "joules_per_step"), "J");
      table.add(section, label + ": energy per sample", number(e, "joules_per_sample"), "J");
    }
  }
}

void add_comm(ReportTable& table, const std::vector<AllReduceTiming>& rows,
              const std::string& backend, int world) {
  const char* section = "communication";
  if (world == 1) {
    table.add_na(section, "all-reduce", "one worker: run under mpirun -np N to measure it");
    return;
  }
  for (const AllReduceTiming& row : rows) {
    table.add(section, fmt::format("all-reduce {}", size_text(row.bytes)), row.time_us, "us",
              fmt::format("algbw {:.3f} GB/s, busbw {:.3f} GB/s; {} ranks, {}", row.algbw_gbs,
                          row.busbw_gbs, world, backend));
  }
}

void add_inference(ReportTable& table, const json& inference) {
  const char* section = "inference";
  const auto pair = [&](const char* key, const std::string& name, const char* unit, double scale) {
    const json& v = inference.at(key);
    table.add(section, "fp32 " + name, number(v, "fp32") * scale, unit);
    table.add(section, "int8 " + name, number(v, "int8") * scale, unit,
              fmt::format("{:.2f}x fp32", number(v, "speedup")));
  };
  pair("batch1_p50_us", "latency, batch 1, p50", "us", 1);
  pair("batch1_p99_us", "latency, batch 1, p99", "us", 1);
  pair("large_batch_samples_per_s",
       fmt::format("throughput, batch {}", inference.at("batch").get<int64_t>()), "samples/s", 1);
  table.add(section, "int8 weights size", number(inference, "weights_bytes_int8") / 1e6, "MB",
            fmt::format("fp32 {:.2f} MB", number(inference, "weights_bytes_fp32") / 1e6));
  table.add(section, "fp32 / int8 argmax agreement", 100 * number(inference, "argmax_agreement"),
            "%", "on the timed batch");
}

// Trains the config for `epochs` epochs with `precision`; returns the final test accuracy.
double trained_accuracy(proto::Config config, proto::Precision precision, int64_t epochs,
                        Communicator& comm, const WorldInfo& world, const std::string& run_dir) {
  config.mutable_device()->set_precision(precision);
  config.mutable_train()->set_epochs(epochs);
  config.mutable_train()->set_max_steps(0);
  config.mutable_checkpoint()->set_every_epochs(0);
  config.mutable_checkpoint()->set_at_end(false);
  DeviceChoice choice = select_device(config.device(), world);
  if (comm.rank() == 0) std::filesystem::remove_all(run_dir);
  comm.barrier();
  TrainListener silent;
  const TrainSummary summary = train(config, *choice.device, comm, run_dir, silent);
  DPT_CHECK_AS(ErrorKind::kConfig, summary.last_eval.has_value())
      << "--accuracy-epochs needs data.test_path in the config";
  return summary.last_eval->accuracy;
}

void add_accuracy(ReportTable& table, const proto::Config& config, const BenchReportArgs& args,
                  bool bf16_available, Communicator& comm, const WorldInfo& world, std::FILE* out) {
  const char* section = "accuracy";
  if (args.accuracy_epochs == 0) {
    table.add_na(section, "fp32 vs bf16 test accuracy",
                 "not measured: pass --accuracy-epochs N to train both N epochs");
    return;
  }
  // Every rank trains both or neither: each one's CPU decides bf16, and the training below
  // (device selection included) is collective.
  int64_t everywhere = bf16_available ? 1 : 0;
  comm.all_reduce(&everywhere, &everywhere, 1, DType::kI64, ReduceOp::kMin);
  if (everywhere == 0) {
    table.add_na(
        section, "fp32 vs bf16 test accuracy",
        bf16_available ? "a worker's CPU has no bf16 matmul" : "the CPU has no bf16 matmul");
    return;
  }
  fmt::print(out, "training {} epochs in float32 and in bf16 for the accuracy comparison\n",
             args.accuracy_epochs);
  std::fflush(out);
  const double fp32 = trained_accuracy(config, proto::FP32, args.accuracy_epochs, comm, world,
                                       args.out + "/accuracy_fp32");
  const double bf16 = trained_accuracy(config, proto::BF16, args.accuracy_epochs, comm, world,
                                       args.out + "/accuracy_bf16");
  const std::string note = fmt::format("after {} epochs, same seeds", args.accuracy_epochs);
  table.add(section, "float32 test accuracy", 100 * fp32, "%", note);
  table.add(section, "bf16 test accuracy", 100 * bf16, "%", note);
  table.add(section, "bf16 - float32", 100 * (bf16 - fp32), "points");
}

void write_text(const std::string& path, const std::string& text) {
  write_file_atomically(path, text.data(), text.size());
}

}  // namespace

int run_bench_report(const BenchReportArgs& args, const WorldInfo& world) {
  DPT_CHECK_AS(ErrorKind::kConfig, args.steps > 0 && args.warmup >= 0 &&
                                       args.inference_seconds >= 0 && args.accuracy_epochs >= 0)
      << "--steps must be > 0, --warmup, --inference-seconds and --accuracy-epochs >= 0";
  const proto::Config config = load_config(args.config, args.overrides);
  const bool leader = world.rank == 0;
  std::FILE* out = leader ? stdout : nullptr;
  std::FILE* null = nullptr;
  if (!leader) null = out = std::fopen("/dev/null", "w");
  DPT_CHECK(out != nullptr) << "cannot open /dev/null";
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(
      null, [](std::FILE* f) { return f ? std::fclose(f) : 0; });
  if (leader) {
    std::error_code error;
    std::filesystem::create_directories(args.out, error);
    DPT_CHECK_AS(ErrorKind::kIo, !error) << "--out " << args.out << ": " << error.message();
  }
  std::unique_ptr<Communicator> comm = make_communicator(config.comm());
  // The ceilings are the CPU's, whatever device.kind trains on.
  proto::DeviceConfig cpu_config = config.device();
  cpu_config.set_kind(proto::CPU);
  const int threads =
      static_cast<const CpuDevice&>(*select_device(cpu_config, world).device).threads();

  fmt::print(out, "== compute ceilings\n");
  const FmaPeak peak = measure_fma_peak(threads);
  const TriadBandwidth triad = measure_triad(threads);
  fmt::print(out, "FMA peak {:.1f} GFLOP/s ({}, {} threads); triad {:.1f} GB/s\n\n", peak.gflops,
             peak.isa, peak.threads, triad.gbytes_per_s);

  fmt::print(out, "== training step (dpt bench step)\n");
  std::fflush(out);
  BenchStepArgs step_args;
  step_args.config = args.config;
  step_args.overrides = args.overrides;
  step_args.warmup = args.warmup;
  step_args.steps = args.steps;
  const json step = bench_step(step_args, out, world);

  std::vector<AllReduceTiming> comm_rows;
  if (comm->size() > 1) {
    fmt::print(out, "\n== all-reduce on the {} backend\n", comm->backend());
    std::fflush(out);
    const uint64_t grad_bytes = static_cast<uint64_t>(step.at("num_params").get<int64_t>()) * 4;
    uint64_t max_bytes = 4096;
    while (max_bytes < grad_bytes && max_bytes < (uint64_t{64} << 20)) max_bytes *= 2;
    comm_rows = measure_all_reduce(*comm, 4096, max_bytes);
  }

  ReportTable table;
  add_compute(table, peak, triad, step);
  add_training(table, step, peak);
  add_power(table, step);
  add_comm(table, comm_rows, comm->backend(), comm->size());
  add_accuracy(table, config, args, !step.at("bf16").contains("na"), *comm, world, out);

  json inference;
  if (leader) {  // inference is one process's business: measured on rank 0 alone
    fmt::print(out, "\n== inference (dpt bench inference)\n");
    std::fflush(out);
    BenchInferenceArgs inference_args;
    inference_args.config = args.config;
    inference_args.overrides = args.overrides;
    inference_args.seconds = args.inference_seconds;
    inference = bench_inference(inference_args, out);
    add_inference(table, inference);
  }
  if (!leader) return 0;

  const CpuInfo cpu = detect_cpu();
  const std::string heading =
      fmt::format("dpt bench report: {} on {} ({}; workers: {}, threads each: {})\n\n", args.config,
                  cpu.model_name, step.at("device").get<std::string>(), comm->size(), threads);
  const std::string text = heading + table.text();
  fmt::print(out, "\n{}", text);
  write_text(args.out + "/report.txt", text);
  write_text(args.out + "/report.csv", table.csv());
  write_json_file(args.out + "/report.json", {{"config", args.config},
                                              {"cpu", cpu.model_name},
                                              {"workers", comm->size()},
                                              {"rows", table.json()},
                                              {"bench_step", step},
                                              {"bench_inference", inference}});
  fmt::print(out, "\nwrote {0}/report.txt, {0}/report.csv, {0}/report.json\n", args.out);
  return 0;
}

}  // namespace dpt
