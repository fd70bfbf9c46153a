// dpt bench inference: fp32 (Model::forward) vs int8 (Int8Model::forward) inference of the
// config's model, at batch 1 (latency p50 / p99) and at a large batch (throughput), plus the plain
// fp32 sgemm and int8 GEMM (core/int8_matmul) of exactly the model's Dense shapes, so each
// forward pass is also seen as a fraction of the GEMM it is built on. The four candidates run
// call by call in turn (launch/inference_timing.h), so load on a shared machine hits each alike.
// Prints a table; --json writes the same numbers. Asserts nothing about time.
#include <fmt/core.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/gemm.h"
#include "core/int8_model.h"
#include "core/quantize.h"
#include "core/random.h"
#include "devices/error.h"
#include "launch/bench.h"
#include "launch/commands.h"
#include "launch/device_select.h"
#include "launch/inference_timing.h"
#include "launch/metrics_writer.h"
#include "launch/trainer.h"

namespace dpt {
namespace {

// Uniformly random pixels: calibration and timing data of the config's input size.
Dataset synthetic_pixels(int64_t samples, int64_t features) {
  Dataset data;
  data.path = "synthetic data";
  data.size = samples;
  data.sample_shape = {features};
  data.feature_size = features;
  data.num_classes = 1;
  data.inputs_u8.resize(static_cast<std::size_t>(samples * features));
  RandomStream random(17, 0);
  for (uint8_t& x : data.inputs_u8) x = static_cast<uint8_t>(random.below(256));
  data.labels.assign(static_cast<std::size_t>(samples), 0);
  return data;
}

struct DenseShape {
  int64_t k, n;
};

// The plain GEMMs of one forward pass, fp32 and int8, on random operands.
class PlainGemms {
 public:
  PlainGemms(Device& device, const std::vector<DenseShape>& shapes, int64_t max_batch)
      : device_(device), shapes_(shapes) {
    int64_t widest = 0;
    RandomStream random(5, 0);
    for (const DenseShape& s : shapes) {
      widest = std::max({widest, s.k, s.n});
      std::vector<float> w(static_cast<std::size_t>(s.k * s.n));
      for (float& v : w) v = static_cast<float>(random.uniform() - 0.5);
      weights_.push_back(std::move(w));
      Int8MatmulSpec spec;
      spec.input_size = s.k;
      spec.output_size = s.n;
      spec.weight.resize(static_cast<std::size_t>(s.k * s.n));
      for (int8_t& v : spec.weight)
        v = static_cast<int8_t>(static_cast<int>(random.below(255)) - 127);
      spec.scales.assign(static_cast<std::size_t>(s.n), 1.0f);
      int8_.push_back(std::make_unique<Int8Matmul>(std::move(spec)));
    }
    a_.resize(static_cast<std::size_t>(max_batch * widest));
    for (float& v : a_) v = static_cast<float>(random.uniform());
    codes_.resize(a_.size());
    for (uint8_t& v : codes_) v = static_cast<uint8_t>(random.below(256));
    c_.resize(a_.size());
  }
  void fp32(int64_t batch) {
    for (std::size_t i = 0; i < shapes_.size(); ++i) {
      gemm(device_, dense_gemm_shape(false, true, batch, shapes_[i].n, shapes_[i].k), 1.0f,
           a_.data(), weights_[i].data(), 0.0f, c_.data());
    }
  }
  void int8(int64_t batch) {
    for (auto& matmul : int8_) matmul->run(codes_.data(), batch, c_.data());
  }
  double ops(int64_t batch) const {
    double total = 0;
    for (const DenseShape& s : shapes_) total += 2.0 * static_cast<double>(batch * s.k * s.n);
    return total;
  }

 private:
  Device& device_;
  std::vector<DenseShape> shapes_;
  std::vector<std::vector<float>> weights_;
  std::vector<std::unique_ptr<Int8Matmul>> int8_;
  std::vector<float> a_, c_;
  std::vector<uint8_t> codes_;
};

// Share of rows whose fp32 and int8 argmax agree.
double argmax_agreement(const Tensor& a, const Tensor& b) {
  const int64_t rows = a.dim(0), cols = a.dim(1);
  int64_t agree = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const float* x = a.data<float>() + i * cols;
    const float* y = b.data<float>() + i * cols;
    agree += std::max_element(x, x + cols) - x == std::max_element(y, y + cols) - y;
  }
  return static_cast<double>(agree) / static_cast<double>(rows);
}

}  // namespace

nlohmann::json bench_inference(const BenchInferenceArgs& args, std::FILE* out) {
  DPT_CHECK_AS(ErrorKind::kConfig, args.batch > 0 && args.seconds >= 0)
      << "--batch must be > 0 and --seconds >= 0";
  proto::Config config = load_config(args.config, args.overrides);
  // The fp32 baseline is float32 matmuls even where device.precision would pick bf16 for training.
  config.mutable_device()->set_precision(proto::FP32);
  DeviceChoice choice = select_device(cpu_only(config.device(), "dpt bench inference (int8)"));
  Device& device = *choice.device;
  fmt::print(out, "{}\n", choice.reason);

  Model model(device, config);
  const Normalization normalization = normalization_from(config.data());
  Dataset calibration;
  if (args.weights.empty()) {
    calibration = synthetic_pixels(1024, model.input_size());
  } else {
    model.load_weights(args.weights);
    calibration = load_dataset(config.data().train_path());
  }
  QuantizeOptions options = quantize_options_from(proto::QuantizeConfig());
  Int8Model int8(device, quantize_model(model, calibration, normalization, options));

  const int64_t big = args.batch;
  Tensor inputs(device, {big, model.input_size()}, DType::kF32);
  {
    std::vector<int64_t> indices(static_cast<std::size_t>(big));
    for (int64_t i = 0; i < big; ++i) indices[i] = i % calibration.size;
    std::vector<int32_t> labels(static_cast<std::size_t>(big));
    gather_batch(calibration, indices.data(), big, normalization, inputs, labels.data());
  }
  std::vector<DenseShape> shapes;
  int64_t int8_bytes = 0;
  for (const auto& layer : model.layers()) {
    if (layer->num_params() == 0) continue;
    shapes.push_back({layer->input_size(), layer->output_size()});
    // int8 weights, plus a float32 scale and (when there is one) bias per output.
    const int64_t weights = layer->input_size() * layer->output_size();
    int8_bytes += weights + 4 * (layer->num_params() - weights) + 4 * layer->output_size();
  }
  PlainGemms gemms(device, shapes, big);

  // {fp32, int8} x {forward, plain GEMM}, alternating, at batch 1 and at the large batch.
  enum { kFp32, kInt8 };
  const std::vector<Forward> candidates = {
      [&](int64_t b) { model.forward(inputs.rows(b), Pass{}); },
      [&](int64_t b) { int8.forward(inputs.rows(b)); }, [&](int64_t b) { gemms.fp32(b); },
      [&](int64_t b) { gemms.int8(b); }};
  TimingOptions timing;
  timing.min_seconds = args.seconds;
  Timing forward_times[2][2], gemm_times[2][2];  // [kind][0: batch 1, 1: large]
  for (int size = 0; size < 2; ++size) {
    const std::vector<Timing> t = time_alternating(candidates, size == 0 ? 1 : big, timing);
    forward_times[kFp32][size] = t[0];
    forward_times[kInt8][size] = t[1];
    gemm_times[kFp32][size] = t[2];
    gemm_times[kInt8][size] = t[3];
  }
  const double agreement = argmax_agreement(model.forward(inputs, Pass{}), int8.forward(inputs));

  const double fp32_bytes = 4.0 * static_cast<double>(model.num_params());
  fmt::print(out,
             "model {} ({} params), weights fp32 {:.2f} MB, int8 {:.2f} MB ({:.2f}x smaller)\n",
             model.summary(), model.num_params(), fp32_bytes / 1e6, int8_bytes / 1e6,
             fp32_bytes / static_cast<double>(int8_bytes));
  fmt::print(
      out,
      "calibrated on {} ({} samples); fp32 / int8 argmax agreement on the timed batch {:.2f}%\n",
      args.weights.empty() ? "synthetic data" : config.data().train_path(),
      std::min<int64_t>(calibration.size, options.calibration_samples), 100 * agreement);
  fmt::print(out, "{:<36}{:>12}{:>12}{:>10}\n", "", "fp32", "int8", "speedup");
  nlohmann::json json = {{"config", args.config},
                         {"device", device.name()},
                         {"model", model.summary()},
                         {"num_params", model.num_params()},
                         {"weights_bytes_fp32", fp32_bytes},
                         {"weights_bytes_int8", int8_bytes},
                         {"batch", big},
                         {"seconds", args.seconds},
                         {"argmax_agreement", agreement}};
  auto row = [&](const std::string& label, const char* key, double fp32, double int8_value,
                 double speedup, const char* format) {
    fmt::print(out, "{:<36}{:>12}{:>12}{:>9.2f}x\n", label, fmt::format(format, fp32),
               fmt::format(format, int8_value), speedup);
    json[key] = {{"fp32", fp32}, {"int8", int8_value}, {"speedup", speedup}};
  };
  const Timing(&f)[2][2] = forward_times;
  row("batch 1 latency p50 (us)", "batch1_p50_us", f[kFp32][0].p50() * 1e6, f[kInt8][0].p50() * 1e6,
      f[kFp32][0].p50() / f[kInt8][0].p50(), "{:.1f}");
  row("batch 1 latency p99 (us)", "batch1_p99_us", f[kFp32][0].p99() * 1e6, f[kInt8][0].p99() * 1e6,
      f[kFp32][0].p99() / f[kInt8][0].p99(), "{:.1f}");
  row(fmt::format("batch {} p50 (ms)", big), "large_batch_p50_ms", f[kFp32][1].p50() * 1e3,
      f[kInt8][1].p50() * 1e3, f[kFp32][1].p50() / f[kInt8][1].p50(), "{:.2f}");
  row(fmt::format("batch {} samples/s", big), "large_batch_samples_per_s", big / f[kFp32][1].p50(),
      big / f[kInt8][1].p50(), f[kFp32][1].p50() / f[kInt8][1].p50(), "{:.0f}");
  for (int size = 0; size < 2; ++size) {
    const int64_t b = size == 0 ? 1 : big;
    const double ops = gemms.ops(b);
    const double fp32_rate = ops / gemm_times[kFp32][size].p50() / 1e9;
    const double int8_rate = ops / gemm_times[kInt8][size].p50() / 1e9;
    row(fmt::format("plain GEMM batch {} GFLOP/s | GOP/s", b),
        size == 0 ? "gemm_batch1_gops" : "gemm_large_batch_gops", fp32_rate, int8_rate,
        int8_rate / fp32_rate, "{:.1f}");
    const double fp32_share = gemm_times[kFp32][size].p50() / f[kFp32][size].p50();
    const double int8_share = gemm_times[kInt8][size].p50() / f[kInt8][size].p50();
    fmt::print(out, "{:<36}{:>11.0f}%{:>11.0f}%\n",
               fmt::format("  forward / plain GEMM rate, batch {}", b), 100 * fp32_share,
               100 * int8_share);
    json[size == 0 ? "forward_over_gemm_batch1" : "forward_over_gemm_large_batch"] = {
        {"fp32", fp32_share}, {"int8", int8_share}};
  }
  if (!args.json.empty()) write_json_file(args.json, json);
  return json;
}

int run_bench_inference(const BenchInferenceArgs& args) {
  bench_inference(args, stdout);
  return 0;
}

}  // namespace dpt
