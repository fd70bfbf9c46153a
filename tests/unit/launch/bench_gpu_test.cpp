// The GPU bench's rendering (launch/bench_gpu.h) with fake numbers: the training step's samples/s,
// p50/p99, MFU and per-phase split, and TFLOP/s, ours/plain and ours/peak per layer, computed by
// hand; n/a with the reason for a GPU without a datasheet peak; the fp16 loss scale and its
// skipped steps when the step scaled its loss; and the precision mapping from device.precision.
#include "launch/bench_gpu.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "core/config.h"

namespace dpt {
namespace {

// What render_gpu_bench prints, and its JSON.
std::pair<std::string, nlohmann::json> render(const GpuBenchResult& result) {
  std::FILE* file = std::tmpfile();
  const nlohmann::json json = render_gpu_bench(result, file);
  std::rewind(file);
  std::string text;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file)) > 0;) text.append(buffer, n);
  std::fclose(file);
  return {text, json};
}

GpuBenchResult fake(const std::string& gpu_name) {
  GpuBenchResult r;
  r.gpu_name = gpu_name;
  r.device = "cuda:0 (" + gpu_name + ")";
  r.precision = GpuPrecision::kBf16;
  r.peak = gpu_peak(gpu_name);
  if (r.peak.known) r.peak_tflops = peak_for(r.peak.tflops, r.precision);
  GpuLayerTiming first;  // 2 GEMMs: 2 * 2 * 4096 * 8192 * 8192 = 1.0995e12 flop
  first.name = "fc1", first.rows = 4096, first.in = 8192, first.out = 8192;
  first.flops = 2.0 * 2 * 4096 * 8192 * 8192.0;
  first.ours_s = 2e-3;     // 549.76 TFLOP/s, 55.6% of 989.5
  first.plain_s = 1.6e-3;  // 687.19 TFLOP/s; ours/plain 80.0%
  GpuLayerTiming second;   // 3 GEMMs of 4096 x 8192 x 10
  second.name = "fc2", second.rows = 4096, second.in = 8192, second.out = 10;
  second.flops = 3 * 2.0 * 4096 * 8192 * 10;
  second.ours_s = 1e-4, second.plain_s = 5e-5;
  r.layers = {first, second};
  r.batch = 4096, r.micro = 4096, r.steps = 30, r.warmup = 5;
  r.model_summary = "8192-8192-10", r.optimizer = "adamw", r.num_params = 67190794;
  r.step_flops = first.flops + second.flops;  // 1.10153e12
  r.p50 = 2.5e-3, r.p99 = 4e-3;               // 440.6 TFLOP/s, MFU 44.5%, 1638400 samples/s
  // Summed over the 30 steps: per step 0.1, 0.8, 1.4, 0, 0.05, 0.15 ms.
  r.phase_sum.data_s = 30 * 0.1e-3, r.phase_sum.forward_s = 30 * 0.8e-3;
  r.phase_sum.backward_s = 30 * 1.4e-3, r.phase_sum.norm_s = 30 * 0.05e-3;
  r.phase_sum.optimizer_s = 30 * 0.15e-3;
  return r;
}

TEST(BenchGpuTest, TableAndJsonCarryHandComputedRatios) {
  const auto [text, json] = render(fake("NVIDIA H100 80GB HBM3"));
  EXPECT_NE(text.find("peak: H100 SXM datasheet, dense bf16: 989.5 TFLOP/s"), std::string::npos)
      << text;
  EXPECT_NE(text.find("fc1 4096 x 8192 -> 8192"), std::string::npos) << text;
  EXPECT_NE(text.find("549.8          687.2       80.0%       55.6%"), std::string::npos) << text;
  EXPECT_NE(text.find("50.0%"), std::string::npos) << text;  // fc2: ours/plain
  EXPECT_NE(text.find("2.500 / 4.000"), std::string::npos) << text;
  EXPECT_NE(text.find("1638400"), std::string::npos) << text;
  EXPECT_NE(text.find("44.5%"), std::string::npos) << text;
  EXPECT_NE(text.find("training step: model 8192-8192-10 (67190794 params), adamw optimizer, "
                      "batch 4096 (micro 4096), 30 steps after 5 warmup"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  backward + loss (ms/step, GPU time)                  1.400"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Dense layers alone"), std::string::npos) << text;
  // The step comes first, the layers alone after it.
  EXPECT_LT(text.find("samples/s"), text.find("fc1 4096 x 8192 -> 8192")) << text;
  EXPECT_NEAR(json["phase_ms"]["data"].get<double>(), 0.1, 1e-12);
  EXPECT_NEAR(json["phase_ms"]["forward"].get<double>(), 0.8, 1e-12);
  EXPECT_NEAR(json["phase_ms"]["backward"].get<double>(), 1.4, 1e-12);
  EXPECT_EQ(json["phase_ms"]["grad_sync"].get<double>(), 0.0);
  EXPECT_NEAR(json["phase_ms"]["grad_norm"].get<double>(), 0.05, 1e-12);
  EXPECT_NEAR(json["phase_ms"]["optimizer"].get<double>(), 0.15, 1e-12);
  EXPECT_EQ(json["model"], "8192-8192-10");
  EXPECT_EQ(json["num_params"], 67190794);
  EXPECT_EQ(json["ranks"], 1);
  EXPECT_EQ(json["precision"], "bf16");
  EXPECT_EQ(json["peak"]["product"], "H100 SXM");
  EXPECT_DOUBLE_EQ(json["peak"]["tflops"].get<double>(), 989.5);
  ASSERT_EQ(json["layers"].size(), 2u);
  EXPECT_NEAR(json["layers"][0]["ours_tflops"].get<double>(), 549.7558, 1e-3);
  EXPECT_NEAR(json["layers"][0]["plain_tflops"].get<double>(), 687.1948, 1e-3);
  EXPECT_NEAR(json["layers"][0]["ours_over_plain"].get<double>(), 0.8, 1e-12);
  EXPECT_NEAR(json["layers"][0]["ours_over_peak"].get<double>(), 549.7558 / 989.5, 1e-6);
  EXPECT_NEAR(json["layers"][1]["ours_over_plain"].get<double>(), 0.5, 1e-12);
  EXPECT_NEAR(json["samples_per_s"].get<double>(), 1638400, 1e-6);
  EXPECT_NEAR(json["step_time_p99_ms"].get<double>(), 4.0, 1e-12);
  const double step_tflops =
      (2.0 * 2 * 4096 * 8192 * 8192.0 + 6.0 * 4096 * 8192 * 10) / 2.5e-3 / 1e12;
  EXPECT_NEAR(json["step_tflops"].get<double>(), step_tflops, 1e-9);
  EXPECT_NEAR(json["mfu"].get<double>(), step_tflops / 989.5, 1e-12);
}

TEST(BenchGpuTest, UnknownGpuSaysNotAvailableAndWhy) {
  const auto [text, json] = render(fake("NVIDIA GeForce RTX 4090"));
  EXPECT_NE(text.find("peak: n/a: \"NVIDIA GeForce RTX 4090\" is not in dpt's datasheet table"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("MFU (GEMM flops / p50 / peak)                            n/a"),
            std::string::npos)
      << text;
  EXPECT_NE(json["peak"]["na"].get<std::string>().find("RTX 4090"), std::string::npos);
  EXPECT_TRUE(json["mfu"].contains("na"));
  EXPECT_FALSE(json["layers"][0].contains("ours_over_peak"));
  EXPECT_NEAR(json["layers"][0]["ours_over_plain"].get<double>(), 0.8, 1e-12);
}

TEST(BenchGpuTest, Fp16LossScaleAndSkippedStepsOnlyWhenScaling) {
  const auto [plain_text, plain_json] = render(fake("NVIDIA H100 80GB HBM3"));
  EXPECT_EQ(plain_text.find("loss scaling"), std::string::npos) << plain_text;
  EXPECT_FALSE(plain_json.contains("loss_scale"));
  GpuBenchResult r = fake("NVIDIA H100 80GB HBM3");
  r.precision = GpuPrecision::kFp16;
  r.loss_scale = 32768;
  r.loss_scale_skipped = 2;
  const auto [text, json] = render(r);
  EXPECT_NE(text.find("fp16 loss scaling: scale 32768 after the measured steps, 2 of them skipped"),
            std::string::npos)
      << text;
  EXPECT_EQ(json["loss_scale"].get<double>(), 32768.0);
  EXPECT_EQ(json["loss_scale_skipped"].get<int64_t>(), 2);
}

TEST(BenchGpuTest, DenseLayersWithWidthsAndTheActivationAfterThem) {
  const proto::Config config = parse_config(
      "model { input_size: 12\n"
      "  layer { name: \"a\" dense { units: 8 } }\n"
      "  layer { activation { kind: LEAKY_RELU negative_slope: 0.2 } }\n"
      "  layer { dropout { rate: 0.1 } }\n"
      "  layer { dense { units: 6 bias: false } }\n"
      "  layer { dropout { rate: 0.1 } }\n"
      "  layer { activation { kind: GELU } }\n"
      "  layer { dense { units: 3 } } }\n"
      "data { train_path: \"t.h5\" }\n",
      "cfg.prototxt");
  const std::vector<GpuDenseLayer> layers = gpu_dense_layers(config);
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_EQ(layers[0].name, "a");
  EXPECT_EQ(layers[0].in, 12);
  EXPECT_EQ(layers[0].out, 8);
  EXPECT_TRUE(layers[0].bias);
  ASSERT_TRUE(layers[0].has_activation);
  EXPECT_EQ(layers[0].activation.kind(), proto::LEAKY_RELU);
  EXPECT_FLOAT_EQ(layers[0].activation.negative_slope(), 0.2f);
  EXPECT_EQ(layers[1].in, 8);
  EXPECT_EQ(layers[1].out, 6);
  EXPECT_FALSE(layers[1].bias);
  EXPECT_FALSE(layers[1].has_activation);  // dropout comes first
  EXPECT_EQ(layers[2].in, 6);
  EXPECT_EQ(layers[2].out, 3);
  EXPECT_FALSE(layers[2].has_activation);
}

TEST(BenchGpuTest, PrecisionFromTheConfig) {
  EXPECT_EQ(gpu_precision(proto::PRECISION_AUTO), GpuPrecision::kFp32);  // as training
  EXPECT_EQ(gpu_precision(proto::BF16), GpuPrecision::kBf16);
  EXPECT_EQ(gpu_precision(proto::FP16), GpuPrecision::kFp16);
  EXPECT_EQ(gpu_precision(proto::TF32), GpuPrecision::kTf32);
  EXPECT_EQ(gpu_precision(proto::FP32), GpuPrecision::kFp32);
  const GpuPeakTflops a100 = gpu_peak("NVIDIA A100-SXM4-40GB").tflops;
  EXPECT_EQ(peak_for(a100, GpuPrecision::kFp32), 19.5);
  EXPECT_EQ(peak_for(a100, GpuPrecision::kTf32), 156);
  EXPECT_EQ(peak_for(a100, GpuPrecision::kFp16), 312);
  EXPECT_STREQ(gpu_precision_name(GpuPrecision::kTf32), "tf32");
}

}  // namespace
}  // namespace dpt
