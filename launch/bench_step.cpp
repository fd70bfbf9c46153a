// dpt bench step: times the real training step (launch/train_step) on synthetic data of the
// config's shapes with float32 matmuls and with bf16 matmuls (when the CPU has them), taking turns
// in blocks of steps, and, in the same run, plain GEMM sequences of exactly the step's shapes
// (launch/bench_gemm.h), so the step's GFLOP/s is reported as a ratio to the GEMM it is built on
// and bf16 as a ratio to float32. Prints a table; --json writes the same numbers (rank 0). Asserts
// nothing about time. Under mpirun with comm.balance: BALANCE_THROUGHPUT it also compares equal
// with throughput-balanced shares (launch/bench_balance.h). On a GPU (device.kind: CUDA, or AUTO
// where one is usable) it times the training step and the Dense layers there instead
// (launch/bench_gpu.h).
#include <fmt/core.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "comm/communicator.h"
#include "core/config.h"
#include "devices/cpu_info.h"
#include "devices/energy.h"
#include "devices/error.h"
#include "launch/bench.h"
#include "launch/bench_balance.h"
#include "launch/bench_gemm.h"
#include "launch/bench_gpu.h"
#include "launch/bench_step_timer.h"
#include "launch/commands.h"
#include "launch/device_select.h"
#include "launch/metrics_writer.h"

namespace dpt {
namespace {

using nlohmann::json;

std::string energy_cell(const EnergyResult& e, double steps, int64_t batch) {
  if (!e.measured) return "n/a";
  const double per_step = e.reading.joules / steps;
  return fmt::format("{:.3g} / {:.3g}", per_step, per_step / static_cast<double>(batch));
}

json energy_json(const std::vector<EnergyResult>& energy, double steps, int64_t batch) {
  json out = json::object();
  for (const EnergyResult& e : energy) {
    if (!e.measured) {
      out[e.meter] = {{"na", e.reason}};
      continue;
    }
    const double per_step = e.reading.joules / steps;
    out[e.meter] = {{"joules", e.reading.joules},
                    {"seconds", e.reading.seconds},
                    {"watts", e.reading.watts()},
                    {"joules_per_step", per_step},
                    {"joules_per_sample", per_step / static_cast<double>(batch)}};
  }
  return out;
}

void print_row(std::FILE* out, const std::string& label, const std::string& fp32,
               const std::string& bf16) {
  fmt::print(out, "{:<44}{:>16}{:>16}\n", label, fp32, bf16);
}

}  // namespace

json bench_step(const BenchStepArgs& args, std::FILE* out, const WorldInfo& world) {
  DPT_CHECK_AS(ErrorKind::kConfig, args.steps > 0 && args.warmup >= 0)
      << "--steps must be > 0 and --warmup >= 0";
  const proto::Config config = load_config(args.config, args.overrides);
  // A CUDA device (device.kind CUDA, or AUTO on a machine with a usable GPU): the training step
  // and the per-layer table on the GPU (launch/bench_gpu.h); the CPU bench otherwise.
  DeviceChoice choice = select_device(config.device(), world);
  if (choice.device->kind() == DeviceKind::kCuda) {
    return bench_step_gpu(args, config, std::move(choice), out);
  }
  const auto& cpu = static_cast<const CpuDevice&>(*choice.device);
  fmt::print(out, "{}\n{}\n", choice.reason, choice.precision_reason);

  const std::vector<std::string> bf16_cpu = bf16_features(detect_cpu());
  const std::string bf16_na =
      bf16_cpu.empty() ? "n/a: the CPU lists neither avx512_bf16 nor amx_bf16" : "";
  std::unique_ptr<Communicator> comm = make_communicator(config.comm(), choice.device.get());
  // Same threads and sgemm library as configured; only the matmul precision differs. The two
  // take turns in kBlocks blocks of steps after their warm-up.
  const int64_t total = args.warmup + args.steps;
  CpuDevice fp32_device(CpuDeviceOptions{cpu.threads(), cpu.gemm_library()});
  StepTimer fp32_timer(config, fp32_device, *comm, total);
  std::optional<CpuDevice> bf16_device;
  std::optional<StepTimer> bf16_timer;
  if (bf16_na.empty()) {
    bf16_device.emplace(
        CpuDeviceOptions{cpu.threads(), cpu.gemm_library(), MatmulPrecision::kBf16});
    bf16_timer.emplace(config, *bf16_device, *comm, total);
  }
  constexpr int64_t kBlocks = 5;
  fp32_timer.run(args.warmup, false);
  if (bf16_timer) bf16_timer->run(args.warmup, false);
  for (int64_t block = 0; block < kBlocks; ++block) {
    const int64_t count = (block + 1) * args.steps / kBlocks - block * args.steps / kBlocks;
    fp32_timer.run(count, true);
    if (bf16_timer) bf16_timer->run(count, true);
  }
  const StepRun fp32 = fp32_timer.result();
  std::optional<StepRun> bf16;
  if (bf16_timer) bf16 = bf16_timer->result();

  const int64_t batch = config.train().batch_size();
  const int64_t micro =
      config.train().micro_batch_size() > 0 ? config.train().micro_batch_size() : batch;
  const std::vector<GemmShape>& shapes = fp32.shapes;
  const double flops = gemm_flops(shapes);
  const double n = static_cast<double>(args.steps);
  const std::string in_use = matmul_precision_name(cpu.matmul_precision());
  fmt::print(
      out, "model {} ({} params), batch {} (micro {}), {} optimizer, {} steps after {} warmup\n",
      fp32.model_summary, fp32.num_params, batch, micro, fp32.optimizer, args.steps, args.warmup);

  json json_out = {{"config", args.config},       {"device", choice.device->name()},
                   {"model", fp32.model_summary}, {"num_params", fp32.num_params},
                   {"batch_size", batch},         {"micro_batch_size", micro},
                   {"steps", args.steps},         {"step_gemm_gflop", flops / 1e9},
                   {"precision_in_use", in_use}};
  auto run_json = [&](const StepRun& run) {
    return json{
        {"step_time_p50_ms", run.p50 * 1e3},          {"step_time_p95_ms", run.p95 * 1e3},
        {"step_time_p99_ms", run.p99 * 1e3},          {"samples_per_s", batch / run.p50},
        {"step_gflops", flops / run.p50 / 1e9},       {"phase_ms", phase_ms_json(run.phase_sum, n)},
        {"energy", energy_json(run.energy, n, batch)}};
  };
  json_out["fp32"] = run_json(fp32);
  json_out["bf16"] = bf16 ? run_json(*bf16) : json{{"na", bf16_na.substr(5)}};

  // One column per precision; the bf16 column says n/a and why where the CPU lacks it.
  auto cell = [&](auto value) { return bf16 ? value(*bf16) : std::string("n/a"); };
  print_row(out, "", in_use == "fp32" ? "fp32 (in use)" : "fp32",
            in_use == "bf16" ? "bf16 (in use)" : "bf16");
  auto times = [](const StepRun& r) {
    return fmt::format("{:.2f} / {:.2f}", r.p50 * 1e3, r.p99 * 1e3);
  };
  auto samples = [&](const StepRun& r) { return fmt::format("{:.0f}", batch / r.p50); };
  auto gflops = [&](const StepRun& r) { return fmt::format("{:.1f}", flops / r.p50 / 1e9); };
  print_row(out, "training step p50 / p99 (ms)", times(fp32), cell(times));
  print_row(out, "samples/s", samples(fp32), cell(samples));
  print_row(out, "step GFLOP/s (GEMM flops / p50)", gflops(fp32), cell(gflops));
  const char* phases[] = {"data",      "forward",   "backward + loss",
                          "grad sync", "grad norm", "optimizer"};
  for (int phase = 0; phase < 6; ++phase) {
    auto ms = [&](const StepRun& r) {
      const StepTimes& t = r.phase_sum;
      const double values[] = {t.data_s, t.forward_s, t.backward_s,
                               t.sync_s, t.norm_s,    t.optimizer_s};
      return fmt::format("{:.2f}", values[phase] / n * 1e3);
    };
    print_row(out, fmt::format("  {} (ms/step)", phases[phase]), ms(fp32), cell(ms));
  }
  bool measured = false;
  for (std::size_t i = 0; i < fp32.energy.size(); ++i) {
    const EnergyResult& e = fp32.energy[i];
    measured = measured || e.measured;
    print_row(out, "energy J/step / J/sample, " + e.meter, energy_cell(e, n, batch),
              bf16 ? energy_cell(bf16->energy[i], n, batch) : "n/a");
  }
  fmt::print(out, "{}{}\n", measured ? "fp32 " : "", energy_summary(fp32.energy));
  if (bf16 && measured) fmt::print(out, "bf16 {}\n", energy_summary(bf16->energy));
  if (bf16) {
    json_out["bf16_step_speedup"] = fp32.p50 / bf16->p50;
    fmt::print(out, "bf16 step speedup (fp32 p50 / bf16 p50): {:.2f}x\n", fp32.p50 / bf16->p50);
  } else {
    fmt::print(out, "bf16 rows: {}\n", bf16_na);
  }

  // oneDNN's sgemm and bf16 matmul take turns (their ratio is the point); OpenBLAS runs after.
  SgemmVsBf16 turns;
  if (bf16) {
    turns = time_sgemm_vs_bf16(shapes, cpu.threads(), args.warmup, args.steps);
  } else {
    turns.sgemm_s =
        time_sgemms(shapes, cpu.threads(), CpuGemmLibrary::kOneDnn, args.warmup, args.steps);
  }
  const double openblas_s =
      time_sgemms(shapes, cpu.threads(), CpuGemmLibrary::kOpenBlas, args.warmup, args.steps);
  for (CpuGemmLibrary library : {CpuGemmLibrary::kOneDnn, CpuGemmLibrary::kOpenBlas}) {
    const double seconds = library == CpuGemmLibrary::kOneDnn ? turns.sgemm_s : openblas_s;
    const double gemm_gflops = flops / seconds / 1e9;
    const bool used = library == cpu.gemm_library();
    const double ratio = flops / fp32.p50 / 1e9 / gemm_gflops;
    fmt::print(out, "{:<44}{:>10.1f}   fp32 step/sgemm {:.1f}%{}\n",
               fmt::format("plain sgemm, same shapes, {}", cpu_gemm_library_name(library)),
               gemm_gflops, 100.0 * ratio, used ? "  <- sgemm library in use" : "");
    json_out["sgemm"][cpu_gemm_library_name(library)] = {
        {"gflops", gemm_gflops}, {"step_over_sgemm", ratio}, {"in_use", used}};
  }
  if (bf16) {
    const double gemm_gflops = flops / turns.bf16_s / 1e9;
    const double ratio = flops / bf16->p50 / 1e9 / gemm_gflops;
    fmt::print(out, "{:<44}{:>10.1f}   bf16 step/matmul {:.1f}%, {:.2f}x oneDNN sgemm ({})\n",
               "plain bf16 matmul, same shapes", gemm_gflops, 100.0 * ratio,
               turns.sgemm_s / turns.bf16_s, turns.implementation);
    json_out["bf16_matmul"] = {{"gflops", gemm_gflops},
                               {"step_over_matmul", ratio},
                               {"over_onednn_sgemm", turns.sgemm_s / turns.bf16_s},
                               {"implementation", turns.implementation}};
  } else {
    fmt::print(out, "{:<44}{:>10}   {}\n", "plain bf16 matmul, same shapes", "n/a",
               bf16_na.substr(5));
    json_out["bf16_matmul"] = {{"na", bf16_na.substr(5)}};
  }
  if (comm->size() > 1 && config.comm().balance() == proto::BALANCE_THROUGHPUT) {
    json_out["balance"] = compare_balance(
        *comm, config, batch, args.warmup, args.steps, fp32.phase_sum,
        [&](Shard shard, StepTimes& phases) { return fp32_timer.step(shard, phases); });
  }
  // Under mpirun every rank has its own numbers; rank 0's are written.
  if (!args.json.empty() && comm->rank() == 0) write_json_file(args.json, json_out);
  return json_out;
}

int run_bench_step(const BenchStepArgs& args, const WorldInfo& world) {
  bench_step(args, stdout, world);
  return 0;
}

}  // namespace dpt
