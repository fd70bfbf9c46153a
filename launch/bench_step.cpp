// dpt bench step: times the real training step (launch/train_step) on synthetic data of the
// config's shapes, and, in the same run, a plain sgemm sequence of exactly the step's GEMM shapes
// with each CPU library, so the step's GFLOP/s is reported as a ratio to the GEMM it is built on.
// Prints a table; --json writes the same numbers. Asserts nothing about time. Under mpirun with
// comm.balance: BALANCE_THROUGHPUT it also times the step with throughput-balanced shares and
// compares them with equal shares measured in the same run.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "comm/communicator.h"
#include "core/config.h"
#include "core/gemm.h"
#include "core/random.h"
#include "devices/cpu_device.h"
#include "devices/energy.h"
#include "devices/error.h"
#include "launch/balance.h"
#include "launch/commands.h"
#include "launch/device_select.h"
#include "launch/metrics_writer.h"
#include "launch/train_step.h"
#include "optim/lr_schedule.h"

namespace dpt {
namespace {

using Clock = std::chrono::steady_clock;

double percentile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(q * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

// The GEMMs of one training step: per micro-batch, per Dense layer, forward and grad-weight, and
// grad-input for every layer but the first.
std::vector<GemmShape> step_gemms(const Model& model, int64_t batch, int64_t micro) {
  std::vector<GemmShape> shapes;
  for (int64_t offset = 0; offset < batch; offset += micro) {
    const int64_t rows = std::min(micro, batch - offset);
    for (std::size_t i = 0; i < model.layers().size(); ++i) {
      const Layer& layer = *model.layers()[i];
      if (layer.num_params() == 0) continue;
      const int64_t in = layer.input_size(), out = layer.output_size();
      shapes.push_back(dense_gemm_shape(false, true, rows, out, in));
      shapes.push_back(dense_gemm_shape(true, false, out, in, rows));
      if (i > 0) shapes.push_back(dense_gemm_shape(false, false, rows, in, out));
    }
  }
  return shapes;
}

double gemm_flops(const std::vector<GemmShape>& shapes) {
  double flops = 0;
  for (const GemmShape& s : shapes) flops += 2.0 * s.m * s.n * s.k;
  return flops;
}

// Median seconds of running the whole GEMM sequence once, on `library`.
double time_gemms(const std::vector<GemmShape>& shapes, const CpuDevice& base,
                  CpuGemmLibrary library, int64_t warmup, int64_t reps) {
  CpuDevice device(CpuDeviceOptions{base.threads(), library});
  std::vector<std::vector<float>> a, b, c;
  RandomStream random(7, 0);
  for (const GemmShape& s : shapes) {
    a.emplace_back(static_cast<std::size_t>(s.m * s.k));
    b.emplace_back(static_cast<std::size_t>(s.k * s.n));
    c.emplace_back(static_cast<std::size_t>(s.m * s.n));
    for (float& x : a.back()) x = static_cast<float>(random.uniform() - 0.5);
    for (float& x : b.back()) x = static_cast<float>(random.uniform() - 0.5);
  }
  std::vector<double> times;
  for (int64_t r = 0; r < warmup + reps; ++r) {
    const auto start = Clock::now();
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      gemm(device, shapes[i], 1.0f, a[i].data(), b[i].data(), 0.0f, c[i].data());
    }
    if (r >= warmup) times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  return percentile(times, 0.5);
}

// Each step's time on the slowest rank (steps end together, but each rank's clock sees its own).
std::vector<double> slowest_per_step(Communicator& comm, std::vector<double> times) {
  comm.all_reduce(times.data(), times.data(), times.size(), DType::kF64, ReduceOp::kMax);
  return times;
}

std::string joined(const std::vector<int64_t>& values) {
  std::string text;
  for (int64_t v : values) text += (text.empty() ? "" : ", ") + std::to_string(v);
  return text;
}

// Runs one step computing `shard`; returns its seconds and adds its phases to `phases`.
using OneStep = std::function<double(Shard shard, StepTimes& phases)>;

// Shares in proportion to the samples/s each rank showed in `steps` timed steps with equal
// shares (`equal_phases`), then `warmup` steps with them, then `steps` pairs of one step with
// equal shares and one with balanced shares, so both see the same machine load.
nlohmann::json compare_balance(Communicator& comm, const proto::Config& config, int64_t batch,
                               int64_t warmup, int64_t steps, const StepTimes& equal_phases,
                               const OneStep& one_step) {
  const std::vector<int64_t> equal = equal_shares(batch, comm.size());
  const double mine[2] = {static_cast<double>(equal[static_cast<std::size_t>(comm.rank())]) *
                              static_cast<double>(steps),
                          per_sample_seconds(equal_phases)};
  std::vector<double> measured(2 * static_cast<std::size_t>(comm.size()));
  comm.all_gather(mine, measured.data(), 2, DType::kF64);
  std::vector<double> rates;
  for (int r = 0; r < comm.size(); ++r) rates.push_back(measured[2 * r] / measured[2 * r + 1]);
  const std::vector<int64_t> shares = apportion(batch, rates);
  const Shard equal_shard = shard_in(equal, comm.rank()), balanced = shard_in(shares, comm.rank());
  StepTimes unused;
  for (int64_t i = 0; i < warmup; ++i) one_step(balanced, unused);
  std::vector<double> equal_times, balanced_times;
  for (int64_t i = 0; i < steps; ++i) {
    equal_times.push_back(one_step(equal_shard, unused));
    balanced_times.push_back(one_step(balanced, unused));
  }
  const std::vector<double> a = slowest_per_step(comm, equal_times);
  const std::vector<double> b = slowest_per_step(comm, balanced_times);
  const double a50 = percentile(a, 0.5), b50 = percentile(b, 0.5);
  const proto::FaultInjection& fault = config.fault_injection();
  const bool simulated = fault.kind() == proto::FAULT_SLOW_SAMPLES && fault.rank() >= 0;
  nlohmann::json json = {{"samples_per_s", rates},
                         {"equal",
                          {{"shares", equal},
                           {"step_time_p50_ms", a50 * 1e3},
                           {"step_time_p99_ms", percentile(a, 0.99) * 1e3}}},
                         {"throughput",
                          {{"shares", shares},
                           {"step_time_p50_ms", b50 * 1e3},
                           {"step_time_p99_ms", percentile(b, 0.99) * 1e3}}},
                         {"equal_over_throughput", a50 / b50},
                         {"simulated_slow_rank", nullptr}};
  if (simulated) {
    json["simulated_slow_rank"] = {{"rank", fault.rank()},
                                   {"us_per_sample", fault.slow_us_per_sample()}};
  }
  if (comm.rank() != 0) return json;
  fmt::print("balance over {} ranks{} (step time: the slowest rank's, p50, steps alternating)\n",
             comm.size(),
             simulated ? fmt::format(", simulated: rank {} sleeps {} us per sample", fault.rank(),
                                     fault.slow_us_per_sample())
                       : "");
  std::string rate_text;
  for (double rate : rates) {
    rate_text += (rate_text.empty() ? "" : ", ") + fmt::format("{:.0f}", rate);
  }
  fmt::print("  samples/s per rank (with equal shares)   {}\n", rate_text);
  fmt::print("  equal shares      {:<22} {:>10.2f} ms\n", joined(equal), a50 * 1e3);
  fmt::print("  throughput shares {:<22} {:>10.2f} ms   equal / throughput {:.2f}\n",
             joined(shares), b50 * 1e3, a50 / b50);
  return json;
}

}  // namespace

int run_bench_step(const BenchStepArgs& args) {
  DPT_CHECK_AS(ErrorKind::kConfig, args.steps > 0 && args.warmup >= 0)
      << "--steps must be > 0 and --warmup >= 0";
  const proto::Config config = load_config(args.config, args.overrides);
  DeviceChoice choice = select_device(config.device());
  DPT_CHECK_AS(ErrorKind::kConfig, choice.device->kind() == DeviceKind::kCpu)
      << "dpt bench step: only the CPU device is supported by this build";
  const auto& cpu = static_cast<const CpuDevice&>(*choice.device);
  fmt::print("{}\n", choice.reason);

  Model model(*choice.device, config);
  auto optimizer = make_optimizer(*choice.device, config.optimizer(), model.num_params());
  std::unique_ptr<Communicator> comm = make_communicator(config.comm());
  TrainStep train_step(model, *optimizer, config, *comm);
  const int64_t batch = config.train().batch_size();
  const int64_t micro =
      config.train().micro_batch_size() > 0 ? config.train().micro_batch_size() : batch;

  // Synthetic samples, fixed before timing so data generation is not measured as compute.
  std::vector<float> samples(static_cast<std::size_t>(micro * model.input_size()));
  RandomStream random(3, 0);
  for (float& x : samples) x = static_cast<float>(random.uniform());
  const BatchSource source = [&](int64_t, int64_t n, Tensor& inputs, int32_t* labels) {
    std::copy(samples.begin(), samples.begin() + n * model.input_size(), inputs.data<float>());
    for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>(i % model.output_size());
  };

  int64_t step = 0;
  const OneStep one_step = [&](Shard shard, StepTimes& phases) {
    const auto start = Clock::now();
    StepResult result = train_step.compute_gradients(step, batch, shard, source);
    const double lr = lr_at(config.optimizer().schedule(), config.optimizer().lr(), step,
                            args.warmup + args.steps);
    train_step.apply(static_cast<float>(lr), result.times);
    ++step;
    phases.add(result.times);
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  const Shard shard = shard_of(batch, comm->rank(), comm->size());
  StepTimes warmup_phases, phase_sum;
  for (int64_t i = 0; i < args.warmup; ++i) one_step(shard, warmup_phases);
  const std::vector<std::unique_ptr<EnergyMeter>> meters = default_energy_meters();
  start_meters(meters);
  std::vector<double> step_times;
  for (int64_t i = 0; i < args.steps; ++i) step_times.push_back(one_step(shard, phase_sum));
  const std::vector<EnergyResult> energy = stop_meters(meters);

  const std::vector<GemmShape> shapes = step_gemms(model, batch, micro);
  const double flops = gemm_flops(shapes);
  const double p50 = percentile(step_times, 0.5), p99 = percentile(step_times, 0.99);
  const double step_gflops = flops / p50 / 1e9;
  nlohmann::json json = {{"config", args.config},         {"device", choice.device->name()},
                         {"model", model.summary()},      {"num_params", model.num_params()},
                         {"batch_size", batch},           {"micro_batch_size", micro},
                         {"steps", args.steps},           {"step_gemm_gflop", flops / 1e9},
                         {"step_time_p50_ms", p50 * 1e3}, {"step_time_p99_ms", p99 * 1e3},
                         {"samples_per_s", batch / p50},  {"step_gflops", step_gflops}};
  const double n = static_cast<double>(args.steps);
  json["phase_ms"] = {
      {"data", phase_sum.data_s / n * 1e3},         {"forward", phase_sum.forward_s / n * 1e3},
      {"backward", phase_sum.backward_s / n * 1e3}, {"grad_sync", phase_sum.sync_s / n * 1e3},
      {"grad_norm", phase_sum.norm_s / n * 1e3},    {"optimizer", phase_sum.optimizer_s / n * 1e3}};

  fmt::print("model {} ({} params), batch {} (micro {}), {} optimizer, {} steps after {} warmup\n",
             model.summary(), model.num_params(), batch, micro, optimizer->name(), args.steps,
             args.warmup);
  fmt::print("{:<34}{:>12}\n", "training step p50 / p99 (ms)",
             fmt::format("{:.2f} / {:.2f}", p50 * 1e3, p99 * 1e3));
  fmt::print("{:<34}{:>12.0f}\n", "samples/s", batch / p50);
  fmt::print("{:<34}{:>12.1f}\n", "step GFLOP/s (GEMM flops / p50)", step_gflops);
  for (const EnergyResult& e : energy) {
    if (!e.measured) {
      fmt::print("{:<34}{:>12}  {}\n", "energy J/step / J/sample", "n/a", e.meter);
      json["energy"][e.meter] = {{"na", e.reason}};
      continue;
    }
    const double per_step = e.reading.joules / n;
    fmt::print("{:<34}{:>12}  {}\n", "energy J/step / J/sample",
               fmt::format("{:.3g} / {:.3g}", per_step, per_step / batch), e.meter);
    json["energy"][e.meter] = {{"joules", e.reading.joules},
                               {"seconds", e.reading.seconds},
                               {"watts", e.reading.watts()},
                               {"joules_per_step", per_step},
                               {"joules_per_sample", per_step / batch}};
  }
  fmt::print("{}\n", energy_summary(energy));
  fmt::print(
      "split (ms/step): data {:.2f}  forward {:.2f}  backward+loss {:.2f}  grad sync {:.2f}  "
      "norm {:.2f}  optimizer {:.2f}\n",
      phase_sum.data_s / n * 1e3, phase_sum.forward_s / n * 1e3, phase_sum.backward_s / n * 1e3,
      phase_sum.sync_s / n * 1e3, phase_sum.norm_s / n * 1e3, phase_sum.optimizer_s / n * 1e3);
  for (CpuGemmLibrary library : {CpuGemmLibrary::kOneDnn, CpuGemmLibrary::kOpenBlas}) {
    const double seconds = time_gemms(shapes, cpu, library, args.warmup, args.steps);
    const double gflops = flops / seconds / 1e9;
    const bool used = library == cpu.gemm_library();
    fmt::print("{:<34}{:>12.1f}   step/sgemm {:.1f}%{}\n",
               fmt::format("plain sgemm, same shapes, {}", cpu_gemm_library_name(library)), gflops,
               100.0 * step_gflops / gflops, used ? "  <- library in use" : "");
    json["sgemm"][cpu_gemm_library_name(library)] = {
        {"gflops", gflops}, {"step_over_sgemm", step_gflops / gflops}, {"in_use", used}};
  }
  if (comm->size() > 1 && config.comm().balance() == proto::BALANCE_THROUGHPUT) {
    json["balance"] =
        compare_balance(*comm, config, batch, args.warmup, args.steps, phase_sum, one_step);
  }
  // Under mpirun every rank has its own numbers; rank 0's are written.
  if (!args.json.empty() && comm->rank() == 0) write_json_file(args.json, json);
  return 0;
}

}  // namespace dpt
