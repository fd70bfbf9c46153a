// Device dispatch that can be checked without a GPU: Tensor copies between devices (which copy
// each direction uses, values intact), core/ on a device that claims to be CUDA (a test double:
// initialisation and weight files go through host copies, compute reaches devices/gpu_ops.h,
// which refuses the double with a dpt::Error instead of crashing; pruning masks and counts go
// through host memory), the Model's config errors for what the GPU layers lack, the loss's
// tensor-labels overload, and TF32 on the CPU being float32.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/loss.h"
#include "core/model.h"
#include "core/prune.h"
#include "devices/cpu_device.h"
#include "devices/error.h"
#include "fake_gpu.h"

namespace dpt {
namespace {

const char* kModel = R"(
model {
  input_size: 5
  layer { dense { units: 4 } }
  layer { activation { kind: RELU } }
  layer { dropout { rate: 0.25 } }
  layer { dense { units: 3 } }
  seed: 3
}
data { train_path: "unused.h5" }
)";

CpuDevice make_cpu() { return CpuDevice(CpuDeviceOptions{1, CpuGemmLibrary::kOpenBlas}); }

std::vector<float> host_values(const Tensor& tensor) {
  std::vector<float> values(static_cast<std::size_t>(tensor.numel()));
  tensor.copy_to_host(values.data());
  return values;
}

Tensor filled(Device& device, Shape shape, float start) {
  Tensor tensor(device, std::move(shape), DType::kF32);
  std::vector<float> values(static_cast<std::size_t>(tensor.numel()));
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = start + 0.5f * static_cast<float>(i);
  tensor.copy_from_host(values.data());
  return tensor;
}

template <typename F>
std::string error_of(F&& body) {
  try {
    body();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(TensorCopy, BetweenTwoCpuDevicesAndThroughHostMemory) {
  CpuDevice a = make_cpu(), b = make_cpu();
  Tensor src = filled(a, {2, 3}, 1.0f);
  Tensor dst(b, {3, 2}, DType::kF32);
  dst.copy_from(src);
  EXPECT_EQ(host_values(dst), host_values(src));
  EXPECT_EQ(host_values(src), (std::vector<float>{1, 1.5, 2, 2.5, 3, 3.5}));
  Tensor empty(a, {0, 3}, DType::kF32);
  Tensor other_empty(b, {0, 3}, DType::kF32);
  other_empty.copy_from(empty);  // nothing to copy, no error
  Tensor wrong(b, {5}, DType::kF32);
  EXPECT_THROW(wrong.copy_from(src), Error);
}

// A tensor over outside memory (the shared gradient buffer): zero-filled in place, keeps the
// memory alive while any view does, never handed to the device's deallocate; CPU devices only.
TEST(TensorOutsideMemory, ZeroFillsKeepsAliveAndIsCpuOnly) {
  CpuDevice cpu;
  const int64_t live_before = cpu.memory_counters().current_bytes;
  bool freed = false;
  auto* block = new std::vector<float>(6, 3.0f);
  Tensor view;
  {
    Tensor tensor(cpu, {2, 3}, DType::kF32,
                  std::shared_ptr<void>(block->data(), [block, &freed](void*) {
                    freed = true;
                    delete block;
                  }));
    EXPECT_EQ(tensor.raw(), static_cast<void*>(block->data()));
    EXPECT_EQ(*block, std::vector<float>(6, 0.0f));
    EXPECT_EQ(cpu.memory_counters().current_bytes, live_before);
    view = tensor.slice(3, {3});
  }
  EXPECT_FALSE(freed);
  view = Tensor();
  EXPECT_TRUE(freed);
  FakeGpu gpu;
  std::vector<float> host(4);
  EXPECT_THROW(Tensor(gpu, {4}, DType::kF32, std::shared_ptr<void>(host.data(), [](void*) {})),
               Error);
}

TEST(TensorCopy, CpuAndGpuUseTheGpusHostCopies) {
  CpuDevice cpu = make_cpu();
  FakeGpu gpu, other_gpu;
  Tensor host = filled(cpu, {4}, -1.0f);
  Tensor on_gpu(gpu, {4}, DType::kF32);
  on_gpu.copy_from(host);
  EXPECT_EQ(gpu.counts.to_device, 1);
  Tensor back(cpu, {4}, DType::kF32);
  back.copy_from(on_gpu);
  EXPECT_EQ(gpu.counts.to_host, 1);
  EXPECT_EQ(host_values(back), host_values(host));
  Tensor same_gpu(gpu, {4}, DType::kF32);
  same_gpu.copy_from(on_gpu);  // one device: Device::copy
  EXPECT_EQ(gpu.counts.within, 1);
  Tensor elsewhere(other_gpu, {4}, DType::kF32);
  elsewhere.copy_from(same_gpu);  // two GPUs: through the host
  EXPECT_EQ(gpu.counts.to_host, 2);
  EXPECT_EQ(other_gpu.counts.to_device, 1);
  EXPECT_EQ(host_values(elsewhere), host_values(host));
}

TEST(GpuDispatch, ModelOnAClaimedGpuInitialisesThroughHostCopiesAndReachesGpuOps) {
  const proto::Config config = parse_config(kModel, "model.prototxt");
  CpuDevice cpu = make_cpu();
  FakeGpu gpu;
  Model on_cpu(cpu, config);
  Model on_gpu(gpu, config);
  EXPECT_GT(gpu.counts.to_device, 0);  // the Dense weights, drawn on the host
  EXPECT_EQ(host_values(on_gpu.params()), host_values(on_cpu.params()));

  const std::string path =
      ::testing::TempDir() + "/cross_device_weights_" + std::to_string(::getpid()) + ".dpt";
  on_gpu.save_weights(path, {});
  Model loaded(cpu, config);
  loaded.params().fill_zero();
  loaded.load_weights(path);
  EXPECT_EQ(host_values(loaded.params()), host_values(on_cpu.params()));
  on_gpu.params().fill_zero();
  on_gpu.load_weights(path);
  EXPECT_EQ(host_values(on_gpu.params()), host_values(on_cpu.params()));
  std::filesystem::remove(path);

  // Compute goes to devices/gpu_ops.h, which refuses a Device that is not a CudaDevice (or, in a
  // build without CUDA, says so): an error, never a kernel on host memory.
  Tensor input(gpu, {2, 5}, DType::kF32);
  const std::string forward = error_of([&] { on_gpu.forward(input, Pass{true, 1, 0, false}); });
  EXPECT_TRUE(forward.find("is not a CUDA device") != std::string::npos ||
              forward.find("no CUDA support") != std::string::npos)
      << forward;
  Tensor logits(gpu, {2, 3}, DType::kF32);
  const int32_t labels[] = {0, 2};
  EXPECT_THROW(compute_loss(proto::SOFTMAX_CROSS_ENTROPY, logits, labels, nullptr, 1.0), Error);
  // An input on the CPU for a model on the GPU is refused before any kernel.
  Tensor cpu_input(cpu, {2, 5}, DType::kF32);
  EXPECT_NE(error_of([&] { on_gpu.forward(cpu_input, Pass{}); }).find("model input on cpu"),
            std::string::npos);
}

TEST(GpuDispatch, ModelOnAGpuRejectsWhatTheGpuLayersLack) {
  FakeGpu gpu;
  proto::Config config = parse_config(kModel, "model.prototxt");
  ModelOptions f64;
  f64.dtype = DType::kF64;
  try {
    Model model(gpu, config, f64);
    FAIL() << "a float64 model on a GPU was built";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(error.what()).find("float64 models run on the CPU only"),
              std::string::npos)
        << error.what();
  }
  config.mutable_device()->set_precision(proto::FP16);
  Model fp16(gpu, config);  // fp16 GEMMs; the training step scales the loss
  config.mutable_device()->set_precision(proto::BF16);
  Model bf16(gpu, config);  // bf16 GEMMs with float32 accumulation
  config.mutable_device()->set_precision(proto::TF32);
  Model tf32(gpu, config);  // TF32 is a GPU format
  EXPECT_EQ(tf32.num_params(), 4 * 5 + 4 + 3 * 4 + 3);
}

TEST(GpuDispatch, PruningMasksAndCountsAModelOnAGpuThroughHostMemory) {
  const proto::Config config = parse_config(kModel, "model.prototxt");
  FakeGpu gpu;
  Model model(gpu, config);
  const int64_t n = model.num_params();
  ParamMask mask;
  mask.keep.assign(static_cast<std::size_t>(n), 1);
  for (int64_t i = 0; i < n; i += 3) mask.keep[i] = 0;
  std::vector<float> expected = host_values(model.params());
  for (int64_t i = 0; i < n; i += 3) expected[i] = 0.0f;
  const int to_host = gpu.counts.to_host, from_host = gpu.counts.to_device;
  mask.apply(model.params());
  EXPECT_EQ(gpu.counts.to_host, to_host + 1);
  EXPECT_EQ(gpu.counts.to_device, from_host + 1);
  EXPECT_EQ(host_values(model.params()), expected);
  int64_t nonzero = 0;
  for (float v : expected) nonzero += v != 0.0f ? 1 : 0;
  EXPECT_EQ(count_nonzero(model), nonzero);
  try {
    choose_neurons(config, model, 1);
    FAIL() << "neurons chosen on a GPU model";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(error.what()).find("choose_neurons: runs on a model on the CPU"),
              std::string::npos)
        << error.what();
  }
}

TEST(Precision, Tf32OnTheCpuIsFloat32) {
  CpuDevice cpu = make_cpu();
  proto::Config config = parse_config(kModel, "model.prototxt");
  Model fp32(cpu, config);
  config = parse_config(std::string(kModel) + "device { precision: TF32 }", "tf32.prototxt");
  EXPECT_EQ(config.device().precision(), proto::TF32);
  Model tf32(cpu, config);
  Tensor input = filled(cpu, {3, 5}, -0.7f);
  const Pass pass{true, 2, 0, false};
  const std::vector<float> expected = host_values(fp32.forward(input, pass));
  EXPECT_EQ(host_values(tf32.forward(input, pass)), expected);
}

TEST(Loss, LabelsAsATensorMatchLabelsInHostMemory) {
  CpuDevice cpu = make_cpu(), other = make_cpu();
  Tensor logits = filled(cpu, {3, 4}, -1.2f);
  const std::vector<int32_t> label_values = {3, 0, 2};
  Tensor labels(other, {3}, DType::kI32);
  labels.copy_from_host(label_values.data());
  for (proto::LossKind kind : {proto::SOFTMAX_CROSS_ENTROPY, proto::MEAN_SQUARED_ERROR}) {
    Tensor grad_a(cpu, {3, 4}, DType::kF32), grad_b(cpu, {3, 4}, DType::kF32);
    const LossResult a = compute_loss(kind, logits, label_values.data(), &grad_a, 0.5);
    const LossResult b = compute_loss(kind, logits, labels, &grad_b, 0.5);
    EXPECT_EQ(a.loss_sum, b.loss_sum);
    EXPECT_EQ(a.correct, b.correct);
    EXPECT_EQ(host_values(grad_a), host_values(grad_b));
  }
  Tensor float_labels(cpu, {3}, DType::kF32);
  EXPECT_NE(error_of([&] {
              compute_loss(proto::SOFTMAX_CROSS_ENTROPY, logits, float_labels, nullptr, 1.0);
            }).find("expected int32[3]"),
            std::string::npos);
  const std::vector<int32_t> bad = {3, 4, 0};
  labels.copy_from_host(bad.data());
  EXPECT_NE(error_of([&] {
              compute_loss(proto::SOFTMAX_CROSS_ENTROPY, logits, labels, nullptr, 1.0);
            }).find("label 4 of sample 1"),
            std::string::npos);
}

}  // namespace
}  // namespace dpt
