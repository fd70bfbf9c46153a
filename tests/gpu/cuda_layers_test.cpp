// core/ and optim/ on a CUDA device against the same objects on the CPU (tests/gpu/
// layers_harness.h): core/gemm in every transpose and GEMM format, the Dense layer (eight
// activation/bias cases, float32, TF32 and fp16, parameter gradients added into, grad_input
// skipped), the Activation layer, Dropout (masks bit-identical, so outputs are equal), both losses
// with labels in host memory and on the device, SGD / Adam / AdamW over three steps, the global
// norm and clipping. Tolerances, relative to max(|a|, |b|, 1): float32 1e-5 (summation order
// differs between cuBLASLt and the CPU's sgemm; CUDA's erff, tanhf and expf are not glibc's), TF32
// 2e-2 (as the TF32 GEMM test; inputs pre-rounded to TF32 so that ReLU's kink cannot turn rounding
// into a different branch), fp16 the same (the same 10-bit mantissa; TF32 values in N(0, 1) are
// fp16 values too, bar fp16's subnormals below 6e-5), optimizer updates and loss gradients 1e-6,
// loss sums 1e-9, dropout exact; the loss scaler's unscale-and-check exact (a power-of-two factor).
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "core/activation.h"
#include "core/dense.h"
#include "core/dropout.h"
#include "core/gemm.h"
#include "core/loss.h"
#include "devices/error.h"
#include "optim/loss_scaler.h"
#include "optim/optimizer.h"
#include "tests/gpu/layers_harness.h"

namespace dpt {
namespace {

TEST_P(LayersOnDevice, CoreGemmMatchesTheCpuInEveryTranspose) {
  const int64_t m = 13, n = 9, k = 17;
  for (GpuMatmul precision :
       {GpuMatmul::kFp32, GpuMatmul::kTf32, GpuMatmul::kBf16, GpuMatmul::kFp16}) {
    for (int t = 0; t < 4; ++t) {
      const bool trans_a = t & 1, trans_b = t & 2;
      // Operands exact in every format: exact products either way, so float32's tolerance holds.
      const Tensor a = cpu_tensor(cpu(), {m * k}, short_values(normal_values(m * k, 40 + t)));
      const Tensor b = cpu_tensor(cpu(), {k * n}, short_values(normal_values(k * n, 44 + t)));
      Tensor c = cpu_tensor(cpu(), {m * n}, normal_values(m * n, 48));
      Tensor c_t = on_target(c);
      const Tensor a_t = on_target(a), b_t = on_target(b);
      const GemmShape shape = dense_gemm_shape(trans_a, trans_b, m, n, k);
      gemm(cpu(), shape, 0.5f, a.data<float>(), b.data<float>(), 2.0f, c.data<float>());
      gemm(target(), shape, 0.5f, a_t.data<float>(), b_t.data<float>(), 2.0f, c_t.data<float>(),
           precision);
      expect_tensors_close(c_t, c, 1e-5,
                           "gemm transposes " + std::to_string(t) + " format " +
                               std::to_string(static_cast<int>(precision)));
    }
  }
}

TEST_P(LayersOnDevice, DenseLayerMatchesTheCpuInFloat32Tf32AndFp16) {
  const int64_t rows = 21, in = 37, out = 24;
  struct Case {
    std::optional<proto::ActivationKind> activation;
    bool bias;
  };
  const Case cases[] = {{std::nullopt, true}, {std::nullopt, false}, {proto::RELU, true},
                        {proto::RELU, false}, {proto::GELU, true},   {proto::LEAKY_RELU, true},
                        {proto::TANH, false}, {proto::SIGMOID, true}};
  for (GpuMatmul precision : {GpuMatmul::kFp32, GpuMatmul::kTf32, GpuMatmul::kFp16}) {
    // TF32 and fp16 run on inputs, weights and dy that are TF32 values already (tf32_values): the
    // forward GEMM and, for identity and ReLU, the backward ones are then float32-exact products;
    // the other activations' dz is rounded by the backward GEMMs.
    const bool tf32 = precision != GpuMatmul::kFp32;
    const auto inputs = [tf32](std::vector<float> v) { return tf32 ? tf32_values(v) : v; };
    const double tolerance = tf32 && on_gpu() ? 2e-2 : 1e-5;
    for (const Case& c : cases) {
      Dense reference = dense_layer(cpu(), in, out, c.bias, c.activation);
      Dense layer = dense_layer(target(), in, out, c.bias, c.activation, precision);
      const int64_t n = reference.num_params();
      Tensor params(cpu(), {n}, DType::kF32);
      // Gradients start non-zero: backward must add into them.
      Tensor grads = cpu_tensor(cpu(), {n}, std::vector<float>(n, 0.5f));
      reference.bind_params(params, grads);
      reference.init_params(3);
      params.copy_from_host(inputs(host_values(params)).data());
      Tensor params_t = on_target(params), grads_t = on_target(grads);
      layer.bind_params(params_t, grads_t);

      const Tensor x = cpu_tensor(cpu(), {rows, in}, inputs(normal_values(rows * in, 50)));
      const Tensor dy = cpu_tensor(cpu(), {rows, out}, inputs(normal_values(rows * out, 51)));
      Tensor y(cpu(), {rows, out}, DType::kF32), dx(cpu(), {rows, in}, DType::kF32);
      const Tensor x_t = on_target(x), dy_t = on_target(dy);
      Tensor y_t(target(), {rows, out}, DType::kF32), dx_t(target(), {rows, in}, DType::kF32);
      const Pass pass{true, 0, 0, false};
      reference.forward(x, y, pass);
      layer.forward(x_t, y_t, pass);
      // The first layer of a model gets no grad_input; the others do.
      const bool first = !c.bias;
      reference.backward(dy, first ? nullptr : &dx);
      layer.backward(dy_t, first ? nullptr : &dx_t);

      const std::string name = layer.kind() + (c.bias ? " with bias" : " without bias") +
                               (precision == GpuMatmul::kTf32   ? " (tf32)"
                                : precision == GpuMatmul::kFp16 ? " (fp16)"
                                                                : " (fp32)");
      expect_tensors_close(y_t, y, tolerance, name + " output");
      expect_tensors_close(grads_t, grads, tolerance, name + " grad params");
      if (!first) expect_tensors_close(dx_t, dx, tolerance, name + " grad input");
      expect_tensors_close(dy_t, dy, 0, name + " grad output left untouched");
    }
  }
}

TEST_P(LayersOnDevice, ActivationLayerMatchesTheCpu) {
  const int64_t rows = 9, cols = 130;
  const Tensor x = cpu_tensor(cpu(), {rows, cols}, normal_values(rows * cols, 60, 2.0));
  const Tensor dy = cpu_tensor(cpu(), {rows, cols}, normal_values(rows * cols, 61));
  for (proto::ActivationKind kind :
       {proto::RELU, proto::LEAKY_RELU, proto::GELU, proto::TANH, proto::SIGMOID}) {
    const ActivationSpec spec{kind, 0.2f};
    Activation reference("act", 1, cols, spec), layer("act", 1, cols, spec);
    Tensor y(cpu(), {rows, cols}, DType::kF32), dx(cpu(), {rows, cols}, DType::kF32);
    Tensor y_t(target(), {rows, cols}, DType::kF32), dx_t(target(), {rows, cols}, DType::kF32);
    const Tensor x_t = on_target(x), dy_t = on_target(dy);
    reference.forward(x, y, Pass{});
    layer.forward(x_t, y_t, Pass{});
    reference.backward(dy, &dx);
    layer.backward(dy_t, &dx_t);
    const std::string name = activation_name(kind);
    expect_tensors_close(y_t, y, 1e-5, name + " forward");
    expect_tensors_close(dx_t, dx, 1e-5, name + " backward");
  }
}

TEST_P(LayersOnDevice, DropoutLayerGivesTheCpuMasksExactly) {
  const int64_t rows = 13, cols = 23;  // cols not a multiple of 4 (one Philox block per 4)
  const Tensor x = cpu_tensor(cpu(), {rows, cols}, normal_values(rows * cols, 70));
  const Tensor dy = cpu_tensor(cpu(), {rows, cols}, normal_values(rows * cols, 71));
  for (const Pass& pass : {Pass{true, 7, 0, false}, Pass{true, 3, (int64_t{1} << 32) + 5, false},
                           Pass{false, 7, 0, false}}) {
    Dropout reference(cpu(), "dropout", 2, cols, 0.3f, 11);
    Dropout layer(target(), "dropout", 2, cols, 0.3f, 11);
    Tensor y(cpu(), {rows, cols}, DType::kF32), dx(cpu(), {rows, cols}, DType::kF32);
    Tensor y_t(target(), {rows, cols}, DType::kF32), dx_t(target(), {rows, cols}, DType::kF32);
    const Tensor x_t = on_target(x), dy_t = on_target(dy);
    reference.forward(x, y, pass);
    layer.forward(x_t, y_t, pass);
    reference.backward(dy, &dx);
    layer.backward(dy_t, &dx_t);
    const std::string name = pass.training ? "training" : "evaluation";
    // Same mask bits and one float multiply each: equal, not close.
    EXPECT_EQ(host_values(y_t), host_values(y)) << name;
    EXPECT_EQ(host_values(dx_t), host_values(dx)) << name;
    if (pass.training) {
      int64_t dropped = 0;
      for (float v : host_values(y)) dropped += v == 0.0f ? 1 : 0;
      EXPECT_GT(dropped, 0);
      EXPECT_LT(dropped, rows * cols / 2);
    }
  }
}

TEST_P(LayersOnDevice, LossesMatchTheCpuWithLabelsOnHostAndDevice) {
  const int64_t rows = 17, cols = 10;
  const Tensor logits = cpu_tensor(cpu(), {rows, cols}, normal_values(rows * cols, 80, 3.0));
  std::vector<int32_t> labels(rows);
  for (int64_t r = 0; r < rows; ++r) labels[r] = static_cast<int32_t>((r * 7) % cols);
  Tensor labels_t(target(), {rows}, DType::kI32);
  labels_t.copy_from_host(labels.data());
  const Tensor logits_t = on_target(logits);
  for (proto::LossKind kind : {proto::SOFTMAX_CROSS_ENTROPY, proto::MEAN_SQUARED_ERROR}) {
    Tensor grad(cpu(), {rows, cols}, DType::kF32);
    const LossResult expected = compute_loss(kind, logits, labels.data(), &grad, 1.0 / rows);
    Tensor grad_host_labels(target(), {rows, cols}, DType::kF32);
    Tensor grad_device_labels(target(), {rows, cols}, DType::kF32);
    const LossResult a = compute_loss(kind, logits_t, labels.data(), &grad_host_labels, 1.0 / rows);
    const LossResult b = compute_loss(kind, logits_t, labels_t, &grad_device_labels, 1.0 / rows);
    const std::string name = proto::LossKind_Name(kind);
    for (const LossResult& result : {a, b}) {
      EXPECT_NEAR(result.loss_sum, expected.loss_sum, 1e-9 * std::max(1.0, expected.loss_sum))
          << name;
      EXPECT_EQ(result.correct, expected.correct) << name;
    }
    expect_tensors_close(grad_host_labels, grad, 1e-6, name + " gradient (host labels)");
    expect_tensors_close(grad_device_labels, grad, 1e-6, name + " gradient (device labels)");
    const LossResult no_grad = compute_loss(kind, logits_t, labels_t, nullptr, 1.0);
    EXPECT_NEAR(no_grad.loss_sum, expected.loss_sum, 1e-9 * std::max(1.0, expected.loss_sum))
        << name;
  }
  std::vector<int32_t> bad = labels;
  bad[4] = static_cast<int32_t>(cols);
  labels_t.copy_from_host(bad.data());
  try {
    compute_loss(proto::SOFTMAX_CROSS_ENTROPY, logits_t, labels_t, nullptr, 1.0);
    ADD_FAILURE() << "a label outside [0, C) was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kInternal);
    EXPECT_NE(std::string(error.what()).find("sample 4"), std::string::npos) << error.what();
  }
}

TEST_P(LayersOnDevice, OptimizersMatchTheCpuOverThreeSteps) {
  const int64_t n = 10007;
  const char* configs[] = {"sgd { }", "sgd { momentum: 0.9 weight_decay: 0.001 }",
                           "sgd { momentum: 0.9 nesterov: true }", "adam { weight_decay: 0.01 }",
                           "adamw { weight_decay: 0.01 }"};
  for (const char* text : configs) {
    proto::OptimizerConfig config;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config)) << text;
    config.set_lr(0.01f);
    auto reference = make_optimizer(cpu(), config, n);
    auto optimizer = make_optimizer(target(), config, n);
    Tensor params = cpu_tensor(cpu(), {n}, normal_values(n, 90));
    Tensor params_t = on_target(params);
    for (int step = 0; step < 3; ++step) {
      const Tensor grads = cpu_tensor(cpu(), {n}, normal_values(n, 91 + step));
      const float lr = 0.01f * (step + 1);
      reference->step(params, grads, lr);
      optimizer->step(params_t, on_target(grads), lr);
    }
    EXPECT_EQ(optimizer->steps(), 3);
    expect_tensors_close(params_t, params, 1e-6, std::string(text) + " params");
    const std::vector<NamedTensor> expected = reference->state(), state = optimizer->state();
    ASSERT_EQ(state.size(), expected.size()) << text;
    for (std::size_t i = 0; i < state.size(); ++i) {
      EXPECT_EQ(state[i].name, expected[i].name);
      expect_tensors_close(state[i].tensor, expected[i].tensor, 1e-6, state[i].name);
    }
  }
}

TEST_P(LayersOnDevice, GlobalNormAndClippingMatchTheCpu) {
  for (int64_t n : {int64_t{1}, int64_t{4097}, int64_t{100003}}) {
    Tensor grads = cpu_tensor(cpu(), {n}, normal_values(n, 95));
    Tensor grads_t = on_target(grads);
    const double norm = global_norm(grads);
    EXPECT_NEAR(global_norm(grads_t), norm, 1e-12 * norm) << n;
    const double max_norm = norm / 3;
    EXPECT_NEAR(clip_grad_norm(grads_t, max_norm), norm, 1e-12 * norm) << n;
    clip_grad_norm(grads, max_norm);
    expect_tensors_close(grads_t, grads, 1e-6, "clipped grads");
    EXPECT_NEAR(global_norm(grads_t), max_norm, 1e-6 * max_norm) << n;
  }
}

TEST_P(LayersOnDevice, LossScalerUnscaleAndCheckMatchesTheCpu) {
  const int64_t n = 100003;
  std::vector<float> values = normal_values(n, 96, 1e4);
  Tensor grads = cpu_tensor(cpu(), {n}, values);
  Tensor grads_t = on_target(grads);
  EXPECT_FALSE(unscale_and_check(grads, 0.125f));
  EXPECT_FALSE(unscale_and_check(grads_t, 0.125f));
  expect_tensors_close(grads_t, grads, 0, "unscaled grads");
  for (const float bad : {INFINITY, NAN}) {
    values[n / 2] = bad;
    Tensor with_bad = on_target(cpu_tensor(cpu(), {n}, values));
    EXPECT_TRUE(unscale_and_check(with_bad, 0.5f)) << bad;
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, LayersOnDevice,
                         ::testing::Values(DeviceKind::kCpu, DeviceKind::kCuda), device_kind_name);

}  // namespace
}  // namespace dpt
