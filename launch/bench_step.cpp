// dpt bench step: times the real training step (launch/train_step) on synthetic data of the
// config's shapes, and, in the same run, a plain sgemm sequence of exactly the step's GEMM shapes
// with each CPU library, so the step's GFLOP/s is reported as a ratio to the GEMM it is built on.
// Prints a table; --json writes the same numbers. Asserts nothing about time.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "comm/communicator.h"
#include "core/config.h"
#include "core/gemm.h"
#include "core/random.h"
#include "devices/cpu_device.h"
#include "devices/energy.h"
#include "devices/error.h"
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

  std::vector<double> step_times;
  StepTimes phase_sum;
  const std::vector<std::unique_ptr<EnergyMeter>> meters = default_energy_meters();
  for (int64_t step = 0; step < args.warmup + args.steps; ++step) {
    if (step == args.warmup) start_meters(meters);
    const auto start = Clock::now();
    StepResult result = train_step.compute_gradients(step, batch, source);
    const double lr = lr_at(config.optimizer().schedule(), config.optimizer().lr(), step,
                            args.warmup + args.steps);
    train_step.apply(static_cast<float>(lr), result.times);
    if (step < args.warmup) continue;
    step_times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    phase_sum.add(result.times);
  }
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
  if (!args.json.empty()) write_json_file(args.json, json);
  return 0;
}

}  // namespace dpt
