// The Dense layer and the Model on a device with bf16 matmuls: one layer's forward, grad-weight
// (accumulating into existing gradients) and grad-input against float64 references within the
// bf16 rounding bound of core/gemm_bf16_test; a whole model against the same model in float32;
// the bf16 weight copy reused only when the pass says the parameters are unchanged; float64 models
// untouched. Skipped on CPUs without avx512_bf16 / amx_bf16.
#include "core/dense.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "core/config.h"
#include "core/model.h"
#include "core/random.h"
#include "devices/cpu_device.h"
#include "devices/cpu_info.h"

namespace dpt {
namespace {

constexpr double kBf16Unit = 1.0 / 256;      // 2^-8
constexpr double kF32Unit = 1.0 / 16777216;  // 2^-24

#define SKIP_WITHOUT_BF16()                                                                    \
  if (bf16_features(detect_cpu()).empty()) {                                                   \
    GTEST_SKIP() << "the CPU lists neither avx512_bf16 nor amx_bf16: no bf16 matmul hardware"; \
  }

CpuDeviceOptions bf16_options() { return {1, CpuGemmLibrary::kOneDnn, MatmulPrecision::kBf16}; }

void fill_random(const Tensor& tensor, uint64_t seed) {
  RandomStream random(seed, 0);
  float* data = tensor.data<float>();
  for (int64_t i = 0; i < tensor.numel(); ++i)
    data[i] = static_cast<float>(2 * random.uniform() - 1);
}

// Checks got[i, j] against sum_l a(i, l) b(l, j) + c0(i, j) in float64, within the bf16 bound:
// two roundings of 2^-8 per product adding up like a random walk (5 times its Hoeffding scale),
// plus float32 accumulation.
void expect_bf16_product(const float* got, int64_t m, int64_t n, int64_t k,
                         const std::function<double(int64_t, int64_t)>& a,
                         const std::function<double(int64_t, int64_t)>& b,
                         const std::function<double(int64_t, int64_t)>& c0, const char* what) {
  double worst = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double exact = c0(i, j), squares = 0, magnitudes = std::fabs(c0(i, j));
      for (int64_t l = 0; l < k; ++l) {
        const double p = a(i, l) * b(l, j);
        exact += p;
        squares += p * p;
        magnitudes += std::fabs(p);
      }
      const double bound =
          10 * kBf16Unit * std::sqrt(squares) + (k + 2) * kF32Unit * magnitudes + 1e-6;
      worst = std::max(worst, std::fabs(got[i * n + j] - exact) / bound);
    }
  }
  EXPECT_LE(worst, 1.0) << what << ": worst error / bound";
  EXPECT_GT(worst, 0.0) << what << ": exactly equal, so not rounded to bf16";
}

TEST(DenseBf16, ForwardGradWeightAndGradInputMatchFloat64WithinTheBf16Bound) {
  SKIP_WITHOUT_BF16();
  CpuDevice device(bf16_options());
  const int64_t batch = 17, in = 200, out = 30;
  proto::DenseConfig config;
  config.set_units(out);
  Dense dense(device, "dense0", 0, in, config, std::nullopt);
  Tensor params(device, {out * in + out}, DType::kF32),
      grads(device, {out * in + out}, DType::kF32);
  fill_random(params, 1);
  fill_random(grads, 2);  // backward must add to what is there
  const std::vector<float> grads_before(grads.data<float>(), grads.data<float>() + grads.numel());
  dense.bind_params(params, grads);
  Tensor input(device, {batch, in}, DType::kF32), output(device, {batch, out}, DType::kF32);
  Tensor grad_output(device, {batch, out}, DType::kF32),
      grad_input(device, {batch, in}, DType::kF32);
  fill_random(input, 3);
  fill_random(grad_output, 4);
  dense.forward(input, output, Pass{});
  dense.backward(grad_output, &grad_input);

  const float* w = params.data<float>();
  const float* bias = w + out * in;
  const float* x = input.data<float>();
  const float* dy = grad_output.data<float>();
  auto zero = [](int64_t, int64_t) { return 0.0; };
  // z[r, o] = sum_i x[r, i] W[o, i] + b[o]
  expect_bf16_product(
      output.data<float>(), batch, out, in, [&](int64_t r, int64_t i) { return x[r * in + i]; },
      [&](int64_t i, int64_t o) { return w[o * in + i]; },
      [&](int64_t, int64_t o) { return bias[o]; }, "forward");
  // dW[o, i] = before + sum_r dy[r, o] x[r, i]
  expect_bf16_product(
      grads.data<float>(), out, in, batch, [&](int64_t o, int64_t r) { return dy[r * out + o]; },
      [&](int64_t r, int64_t i) { return x[r * in + i]; },
      [&](int64_t o, int64_t i) { return grads_before[o * in + i]; }, "grad-weight");
  // dx[r, i] = sum_o dy[r, o] W[o, i]
  expect_bf16_product(
      grad_input.data<float>(), batch, in, out,
      [&](int64_t r, int64_t o) { return dy[r * out + o]; },
      [&](int64_t o, int64_t i) { return w[o * in + i]; }, zero, "grad-input");
  // The bias gradient stays float32: exact sums up to float32 rounding.
  for (int64_t o = 0; o < out; ++o) {
    double sum = grads_before[out * in + o];
    for (int64_t r = 0; r < batch; ++r) sum += dy[r * out + o];
    EXPECT_NEAR(grads.data<float>()[out * in + o], sum, 1e-5) << o;
  }
}

// Smooth activations only: bf16 rounding moves some pre-activations across ReLU's kink, which
// flips whole gradient entries (measured: 3.7 % relative difference in the first layer's
// gradient with ReLU, 0.47 % with tanh), a real but different effect from rounding.
const char* kNetwork = R"(
model {
  input_size: 96
  layer { dense { units: 64 } }
  layer { activation { kind: TANH } }
  layer { dense { units: 64 } }
  layer { activation { kind: GELU } }
  layer { dense { units: 10 init: XAVIER } }
  seed: 3
}
data { train_path: "unused.h5" }
)";

// ||a - b|| / ||b|| over the first n values.
double relative_difference(const float* a, const float* b, int64_t n) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < n; ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    norm += double(b[i]) * b[i];
  }
  return std::sqrt(diff / norm);
}

TEST(DenseBf16, ModelForwardAndBackwardStayCloseToFloat32) {
  SKIP_WITHOUT_BF16();
  const proto::Config config = parse_config(kNetwork, "net.prototxt");
  CpuDevice fp32_device(CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn});
  CpuDevice bf16_device(bf16_options());
  Model fp32(fp32_device, config), bf16(bf16_device, config);
  ASSERT_EQ(fp32.num_params(), bf16.num_params());
  const int64_t batch = 32;
  Tensor input(fp32_device, {batch, 96}, DType::kF32), grad(fp32_device, {batch, 10}, DType::kF32);
  fill_random(input, 7);
  fill_random(grad, 8);
  const Tensor& logits32 = fp32.forward(input, Pass{});
  const Tensor& logits16 = bf16.forward(input, Pass{});
  // Chained matmuls, each with a relative error of order 2^-8 in norm (measured: 0.45 % on the
  // logits and every layer's gradients): 2^-5 leaves a margin of 7, yet is far below what a
  // wrong operand, transpose or stale weight gives (order 1).
  const double logits_error =
      relative_difference(logits16.data<float>(), logits32.data<float>(), batch * 10);
  EXPECT_LT(logits_error, 1.0 / 32);
  EXPECT_GT(logits_error, 1e-4);  // really computed in bf16
  fp32.backward(grad);
  bf16.backward(grad);
  for (const auto& [offset, count] : fp32.param_ranges()) {
    const double error = relative_difference(bf16.grads().data<float>() + offset,
                                             fp32.grads().data<float>() + offset, count);
    EXPECT_LT(error, 1.0 / 32) << "gradients at offset " << offset;
    EXPECT_GT(error, 1e-4) << "gradients at offset " << offset;
  }
}

TEST(DenseBf16, WeightCopyIsReusedOnlyWhenThePassSaysParametersAreUnchanged) {
  SKIP_WITHOUT_BF16();
  const proto::Config config = parse_config(kNetwork, "net.prototxt");
  CpuDevice device(bf16_options());
  Model model(device, config);
  Tensor input(device, {4, 96}, DType::kF32);
  fill_random(input, 9);
  auto logits = [&](const Pass& pass) {
    const Tensor& out = model.forward(input, pass);
    return std::vector<float>(out.data<float>(), out.data<float>() + out.numel());
  };
  const std::vector<float> before = logits(Pass{true, 0, 0});
  float* params = model.params().data<float>();
  for (int64_t i = 0; i < model.num_params(); ++i) params[i] *= 1.5f;
  // A later micro-batch of the same step: the bf16 weights of the first are reused.
  EXPECT_EQ(logits(Pass{true, 0, 4, true}), before);
  // Any other pass converts the weights again.
  EXPECT_NE(logits(Pass{true, 1, 0}), before);
  EXPECT_NE(logits(Pass{}), before);
}

TEST(DenseBf16, Float64ModelsIgnoreTheBf16Setting) {
  const proto::Config config = parse_config(kNetwork, "net.prototxt");
  CpuDevice fp32_device(CpuDeviceOptions{1, CpuGemmLibrary::kOneDnn});
  CpuDevice bf16_device(bf16_options());
  ModelOptions options;
  options.dtype = DType::kF64;
  Model a(fp32_device, config, options), b(bf16_device, config, options);
  Tensor input(fp32_device, {5, 96}, DType::kF64);
  RandomStream random(4, 0);
  for (int64_t i = 0; i < input.numel(); ++i) input.data<double>()[i] = random.uniform();
  const Tensor& la = a.forward(input, Pass{});
  const Tensor& lb = b.forward(input, Pass{});
  for (int64_t i = 0; i < la.numel(); ++i) EXPECT_EQ(la.data<double>()[i], lb.data<double>()[i]);
}

}  // namespace
}  // namespace dpt
