// The GPU bench's table and JSON (launch/bench_gpu.h): the training step (samples/s, p50/p99,
// TFLOP/s and MFU against the datasheet peak, the GPU's phase split), then the Dense layers alone
// (ours / plain cuBLASLt and ours / peak per layer, measured in the same run).
#include <fmt/core.h>

#include "core/config.h"
#include "devices/error.h"
#include "launch/bench_gpu.h"
#include "launch/bench_step_timer.h"

namespace dpt {
namespace {

using nlohmann::json;

double tflops(double flops, double seconds) { return seconds > 0 ? flops / seconds / 1e12 : 0; }

std::string percent_of_peak(const GpuBenchResult& r, double flops, double seconds) {
  if (r.peak_tflops <= 0) return "n/a";
  return fmt::format("{:.1f}%", 100.0 * tflops(flops, seconds) / r.peak_tflops);
}

}  // namespace

std::vector<GpuDenseLayer> gpu_dense_layers(const proto::Config& config) {
  std::vector<GpuDenseLayer> layers;
  int64_t width = config.model().input_size();
  const auto& all = config.model().layer();
  for (int i = 0; i < all.size(); ++i) {
    if (!all[i].has_dense()) continue;
    GpuDenseLayer layer;
    layer.name = layer_name(config, i);
    layer.in = width;
    layer.out = all[i].dense().units();
    layer.bias = all[i].dense().bias();
    layer.has_activation = i + 1 < all.size() && all[i + 1].has_activation();
    if (layer.has_activation) layer.activation = all[i + 1].activation();
    layers.push_back(layer);
    width = layer.out;
  }
  DPT_CHECK_AS(ErrorKind::kConfig, !layers.empty())
      << "dpt bench step: the model has no dense layer to time on the GPU";
  return layers;
}

GpuPrecision gpu_precision(proto::Precision precision) {
  switch (precision) {
    case proto::FP32:
      return GpuPrecision::kFp32;
    case proto::TF32:
      return GpuPrecision::kTf32;
    case proto::FP16:
      return GpuPrecision::kFp16;
    case proto::BF16:
      return GpuPrecision::kBf16;
    case proto::PRECISION_AUTO:  // what training runs with AUTO (core/model.cpp gpu_matmul)
      break;
  }
  return GpuPrecision::kFp32;
}

const char* gpu_precision_name(GpuPrecision precision) {
  switch (precision) {
    case GpuPrecision::kFp32:
      return "fp32";
    case GpuPrecision::kTf32:
      return "tf32";
    case GpuPrecision::kFp16:
      return "fp16";
    case GpuPrecision::kBf16:
      break;
  }
  return "bf16";
}

double peak_for(const GpuPeakTflops& tflops, GpuPrecision precision) {
  switch (precision) {
    case GpuPrecision::kFp32:
      return tflops.fp32;
    case GpuPrecision::kTf32:
      return tflops.tf32;
    case GpuPrecision::kFp16:
      return tflops.fp16;
    case GpuPrecision::kBf16:
      break;
  }
  return tflops.bf16;
}

json render_gpu_bench(const GpuBenchResult& r, std::FILE* out) {
  fmt::print(out, "device: {}\n", r.device);
  const char* precision = gpu_precision_name(r.precision);
  const std::string peak_text = r.peak.known ? fmt::format("{} datasheet, dense {}: {:.1f} TFLOP/s",
                                                           r.peak.product, precision, r.peak_tflops)
                                             : "n/a: " + r.peak.reason;
  fmt::print(out, "GEMM inputs {}, float32 accumulate and output; peak: {}\n", precision,
             peak_text);

  // The training step: what `dpt train` runs, timed whole.
  const double samples = r.p50 > 0 ? static_cast<double>(r.batch) / r.p50 : 0;
  fmt::print(out,
             "training step: model {} ({} params), {} optimizer, batch {} (micro {}){}, {} "
             "steps after {} warmup\n",
             r.model_summary, r.num_params, r.optimizer, r.batch, r.micro,
             r.ranks > 1 ? fmt::format(", {} ranks", r.ranks) : "", r.steps, r.warmup);
  fmt::print(out, "{:<44}{:>16}\n", "step p50 / p99 (ms)",
             fmt::format("{:.3f} / {:.3f}", r.p50 * 1e3, r.p99 * 1e3));
  fmt::print(out, "{:<44}{:>16.0f}\n", "samples/s", samples);
  fmt::print(out, "{:<44}{:>16.1f}\n", "step TFLOP/s (GEMM flops / p50)",
             tflops(r.step_flops, r.p50));
  fmt::print(out, "{:<44}{:>16}\n", "MFU (GEMM flops / p50 / peak)",
             percent_of_peak(r, r.step_flops, r.p50));
  const double n = r.steps > 0 ? static_cast<double>(r.steps) : 1.0;
  const json phase_ms = phase_ms_json(r.phase_sum, n);
  const char* keys[] = {"data", "forward", "backward", "grad_sync", "grad_norm", "optimizer"};
  const char* labels[] = {"data",      "forward",   "backward + loss",
                          "grad sync", "grad norm", "optimizer"};
  for (int i = 0; i < 6; ++i) {
    fmt::print(out, "{:<44}{:>16.3f}\n", fmt::format("  {} (ms/step, GPU time)", labels[i]),
               phase_ms[keys[i]].get<double>());
  }
  if (r.loss_scale > 0) {
    fmt::print(out,
               "fp16 loss scaling: scale {:g} after the measured steps, {} of them skipped "
               "(inf/NaN gradients: no optimizer update)\n",
               r.loss_scale, r.loss_scale_skipped);
  }

  fmt::print(out,
             "Dense layers alone (their forward + backward kernels on buffers of their own, "
             "not inside the step):\n");
  fmt::print(out, "{:<34}{:>15}{:>15}{:>12}{:>12}\n", "Dense layer: rows x in -> out",
             "ours TFLOP/s", "plain TFLOP/s", "ours/plain", "ours/peak");
  json layers = json::array();
  for (const GpuLayerTiming& l : r.layers) {
    const double ours = tflops(l.flops, l.ours_s), plain = tflops(l.flops, l.plain_s);
    const double ratio = l.plain_s > 0 ? l.plain_s / l.ours_s : 0;
    fmt::print(out, "{:<34}{:>15.1f}{:>15.1f}{:>11.1f}%{:>12}\n",
               fmt::format("{} {} x {} -> {}", l.name, l.rows, l.in, l.out), ours, plain,
               100.0 * ratio, percent_of_peak(r, l.flops, l.ours_s));
    json layer = {{"name", l.name},
                  {"rows", l.rows},
                  {"in", l.in},
                  {"out", l.out},
                  {"gflop", l.flops / 1e9},
                  {"ours_ms", l.ours_s * 1e3},
                  {"plain_ms", l.plain_s * 1e3},
                  {"ours_tflops", ours},
                  {"plain_tflops", plain},
                  {"ours_over_plain", ratio}};
    if (r.peak_tflops > 0) layer["ours_over_peak"] = ours / r.peak_tflops;
    layers.push_back(layer);
  }

  json result = {{"device", r.device},
                 {"gpu_name", r.gpu_name},
                 {"precision", precision},
                 {"model", r.model_summary},
                 {"num_params", r.num_params},
                 {"optimizer", r.optimizer},
                 {"ranks", r.ranks},
                 {"batch_size", r.batch},
                 {"micro_batch_size", r.micro},
                 {"steps", r.steps},
                 {"warmup", r.warmup},
                 {"step_gemm_gflop", r.step_flops / 1e9},
                 {"step_time_p50_ms", r.p50 * 1e3},
                 {"step_time_p99_ms", r.p99 * 1e3},
                 {"samples_per_s", samples},
                 {"step_tflops", tflops(r.step_flops, r.p50)},
                 {"phase_ms", phase_ms},
                 {"layers", layers}};
  if (r.loss_scale > 0) {
    result["loss_scale"] = r.loss_scale;
    result["loss_scale_skipped"] = r.loss_scale_skipped;
  }
  if (r.peak.known) {
    result["peak"] = {{"product", r.peak.product}, {"tflops", r.peak_tflops}};
    result["mfu"] = tflops(r.step_flops, r.p50) / r.peak_tflops;
  } else {
    result["peak"] = {{"na", r.peak.reason}};
    result["mfu"] = {{"na", r.peak.reason}};
  }
  return result;
}

}  // namespace dpt
