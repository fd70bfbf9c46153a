// A whole Model trained for three steps on a CUDA device against the same Model on the CPU
// (tests/gpu/layers_harness.h): every layer kind (Dense with fused ReLU and GELU, with and without
// bias, an unfused tanh, two dropouts keyed by step), softmax cross-entropy with device labels,
// gradient clipping and SGD with momentum; then an evaluation forward and the weights file of the
// GPU model loaded on the CPU. Tolerances, relative to max(|a|, |b|, 1): float32 1e-4 (summation
// order differs, compounded over three steps), TF32 3e-2 (10-bit mantissa GEMM inputs; the TF32
// network has a sigmoid where the float32 one has ReLU, whose kink would amplify the rounding).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/config.h"
#include "core/loss.h"
#include "core/model.h"
#include "optim/optimizer.h"
#include "tests/gpu/layers_harness.h"

namespace dpt {
namespace {

const char* kNet = R"(
model {
  input_size: 37
  layer { dense { units: 32 } }
  layer { activation { kind: RELU } }
  layer { dropout { rate: 0.2 } }
  layer { dense { units: 24 init: XAVIER } }
  layer { dropout { rate: 0.1 } }
  layer { activation { kind: TANH } }
  layer { dense { units: 16 bias: false } }
  layer { activation { kind: GELU } }
  layer { dense { units: 10 } }
  seed: 4
}
data { train_path: "unused.h5" }
train { seed: 8 }
optimizer { lr: 0.05 sgd { momentum: 0.9 } clip_grad_norm: 1.0 }
)";

TEST_P(LayersOnDevice, ModelTrainsLikeTheCpuInFloat32AndTf32) {
  const int64_t batch = 19;
  for (proto::Precision precision : {proto::FP32, proto::TF32}) {
    const bool tf32 = precision == proto::TF32 && on_gpu();
    const double tolerance = tf32 ? 3e-2 : 1e-4;
    const std::string name = proto::Precision_Name(precision);
    proto::Config config = parse_config(kNet, "net.prototxt");
    config.mutable_device()->set_precision(precision);
    // TF32's rounding (~1e-3) would flip ReLU's branch (dy or 0) for pre-activations that close
    // to 0 on one device only, and weights change each step, so TF32 trains a smooth network:
    // sigmoid in place of ReLU (the TF32 ReLU epilogue is in cuda_layers_test).
    if (precision == proto::TF32) {
      config.mutable_model()->mutable_layer(1)->mutable_activation()->set_kind(proto::SIGMOID);
    }
    Model reference(cpu(), config);
    Model model(target(), config);
    EXPECT_EQ(model.summary(), reference.summary());
    // Initialised on the host from the same seed: identical.
    EXPECT_EQ(host_values(model.params()), host_values(reference.params())) << name;
    auto reference_optimizer = make_optimizer(cpu(), config.optimizer(), reference.num_params());
    auto optimizer = make_optimizer(target(), config.optimizer(), model.num_params());

    for (int64_t step = 0; step < 3; ++step) {
      const Tensor x = cpu_tensor(cpu(), {batch, 37}, normal_values(batch * 37, 100 + step, 1.5));
      std::vector<int32_t> labels(batch);
      for (int64_t r = 0; r < batch; ++r) labels[r] = static_cast<int32_t>((r * 3 + step) % 10);
      Tensor labels_t(target(), {batch}, DType::kI32);
      labels_t.copy_from_host(labels.data());
      const Tensor x_t = on_target(x);
      const Pass pass{true, step, 0, false};

      reference.zero_grads();
      model.zero_grads();
      const Tensor& logits = reference.forward(x, pass);
      const Tensor& logits_t = model.forward(x_t, pass);
      const std::string at = name + " step " + std::to_string(step);
      expect_tensors_close(logits_t, logits, tolerance, at + " logits");

      Tensor grad(cpu(), logits.shape(), DType::kF32);
      Tensor grad_t(target(), logits.shape(), DType::kF32);
      const LossResult loss =
          compute_loss(proto::SOFTMAX_CROSS_ENTROPY, logits, labels.data(), &grad, 1.0 / batch);
      const LossResult loss_t =
          compute_loss(proto::SOFTMAX_CROSS_ENTROPY, logits_t, labels_t, &grad_t, 1.0 / batch);
      EXPECT_NEAR(loss_t.loss_sum, loss.loss_sum, tolerance * std::max(1.0, loss.loss_sum)) << at;
      if (!tf32) {  // argmax of logits equal within 1e-4: a near-tie may flip one sample
        EXPECT_NEAR(loss_t.correct, loss.correct, 1) << at;
      }

      reference.backward(grad);
      model.backward(grad_t);
      expect_tensors_close(model.grads(), reference.grads(), tolerance, at + " grads");
      const double norm = clip_grad_norm(reference.grads(), config.optimizer().clip_grad_norm());
      const double norm_t = clip_grad_norm(model.grads(), config.optimizer().clip_grad_norm());
      EXPECT_NEAR(norm_t, norm, tolerance * std::max(1.0, norm)) << at;
      reference_optimizer->step(reference.params(), reference.grads(), 0.05f);
      optimizer->step(model.params(), model.grads(), 0.05f);
      expect_tensors_close(model.params(), reference.params(), tolerance, at + " params");
    }

    const Tensor x = cpu_tensor(cpu(), {batch, 37}, normal_values(batch * 37, 120));
    expect_tensors_close(model.forward(on_target(x), Pass{}), reference.forward(x, Pass{}),
                         tolerance, name + " evaluation logits");

    // The GPU model's weights file, loaded on the CPU, holds the GPU's parameters exactly.
    const std::string path =
        ::testing::TempDir() + "/cuda_model_test_weights_" + std::to_string(::getpid()) + ".dpt";
    model.save_weights(path, {});
    Model loaded(cpu(), config);
    loaded.load_weights(path);
    EXPECT_EQ(host_values(loaded.params()), host_values(model.params())) << name;
    model.params().fill_zero();
    model.load_weights(path);
    EXPECT_EQ(host_values(model.params()), host_values(loaded.params())) << name;
    std::filesystem::remove(path);
  }
}

TEST_P(LayersOnDevice, TensorCopiesBetweenCpuAndDevice) {
  const std::vector<float> values = normal_values(1000, 130);
  const Tensor source = cpu_tensor(cpu(), {10, 100}, values);
  Tensor on_device(target(), {10, 100}, DType::kF32);
  on_device.copy_from(source);
  Tensor again(target(), {1000}, DType::kF32);
  again.copy_from(on_device);  // within the device
  Tensor back(cpu(), {1000}, DType::kF32);
  back.copy_from(again);
  EXPECT_EQ(host_values(back), values);
  // A view: rows 2..4 of the device tensor.
  Tensor view = on_device.slice(200, {3, 100});
  EXPECT_EQ(host_values(view), std::vector<float>(values.begin() + 200, values.begin() + 500));
  view.fill_zero();
  std::vector<float> expected = values;
  std::fill(expected.begin() + 200, expected.begin() + 500, 0.0f);
  EXPECT_EQ(host_values(on_device), expected);
}

INSTANTIATE_TEST_SUITE_P(Devices, LayersOnDevice,
                         ::testing::Values(DeviceKind::kCpu, DeviceKind::kCuda), device_kind_name);

}  // namespace
}  // namespace dpt
