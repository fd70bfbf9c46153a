// The Dense layer's 16-bit GPU path against the float32 CPU layer: operands rounded once and kept
// (W per step, x from forward for the weight gradient, dz once for both backward GEMMs), over two
// micro-batches of one step (gradients accumulated, grad_bias starting non-zero), then a weight
// update and an evaluation pass, which must round W again; and cuda_gemm's fused bias gradient
// (cuBLASLt BGRADB, a_row_sums) against a double loop, or untouched where cuBLASLt has no
// algorithm for it. Inputs are "short" values (8 significant bits, no fp16 subnormals), exact in
// bf16 and fp16 alike, so rounding them changes nothing: results differ from the float32 CPU only
// in summation order (tolerance 1e-4 relative to max(|a|, |b|, 1)), except GELU, whose dz is not
// short and is rounded for the GEMMs (5e-2: bf16's 8 bits over sums of up to 21 products, as
// cuda_precision_test's bf16 Dense). The LayersOnDevice CPU instance runs
// the same steps on a second CPU device (no GPU needed). The fallback to cuda_bias_grad cannot be
// forced (cuBLASLt decides); the GEMM test checks both outcomes' contracts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "core/dense.h"
#include "core/gemm.h"
#include "devices/cuda/cuda_ops.h"
#include "devices/error.h"
#include "tests/gpu/layers_harness.h"

namespace dpt {
namespace {

const char* precision_name(GpuMatmul precision) {
  return precision == GpuMatmul::kBf16 ? "bf16" : "fp16";
}

TEST_P(LayersOnDevice, SixteenBitDenseKeepsOperandsAcrossMicroBatchesAndRoundsNewWeights) {
  const int64_t rows = 21, rows2 = 16, in = 37, out = 24;
  struct Case {
    std::optional<proto::ActivationKind> activation;
    bool bias;
  };
  const Case cases[] = {
      {std::nullopt, true}, {proto::RELU, true}, {proto::RELU, false}, {proto::GELU, true}};
  for (GpuMatmul precision : {GpuMatmul::kBf16, GpuMatmul::kFp16}) {
    for (const Case& c : cases) {
      const std::string name = std::string(precision_name(precision)) + " " +
                               (c.activation ? "activated" : "identity") +
                               (c.activation == proto::GELU ? " (gelu)" : "") +
                               (c.bias ? " with bias" : " without bias");
      const double tolerance = c.activation == proto::GELU && on_gpu() ? 5e-2 : 1e-4;
      Dense reference = dense_layer(cpu(), in, out, c.bias, c.activation);
      Dense layer = dense_layer(target(), in, out, c.bias, c.activation, precision);
      const int64_t n = reference.num_params();
      Tensor params(cpu(), {n}, DType::kF32);
      // Gradients start non-zero: backward adds into them, the fused bias gradient included.
      Tensor grads = cpu_tensor(cpu(), {n}, std::vector<float>(n, 0.5f));
      reference.bind_params(params, grads);
      reference.init_params(3);
      // Short weights, and a non-zero bias (init_params zeroes it) so the epilogue adds something.
      std::vector<float> values = short_values(host_values(params));
      if (c.bias) {
        const std::vector<float> bias = short_values(normal_values(out, 49, 0.5));
        std::copy(bias.begin(), bias.end(), values.begin() + out * in);
      }
      params.copy_from_host(values.data());
      Tensor params_t = on_target(params), grads_t = on_target(grads);
      layer.bind_params(params_t, grads_t);

      // Two micro-batches of one step (the second smaller, and told the weights are unchanged),
      // each forward followed by its backward, as launch/train_step.cpp runs them.
      const Pass passes[] = {Pass{true, 0, 0, false}, Pass{true, 0, rows, true}};
      const int64_t sizes[] = {rows, rows2};
      for (int micro = 0; micro < 2; ++micro) {
        const int64_t r = sizes[micro];
        const std::string what = name + " micro-batch " + std::to_string(micro);
        const Tensor x =
            cpu_tensor(cpu(), {r, in}, short_values(normal_values(r * in, 50 + micro)));
        const Tensor dy =
            cpu_tensor(cpu(), {r, out}, short_values(normal_values(r * out, 60 + micro)));
        Tensor y(cpu(), {r, out}, DType::kF32), dx(cpu(), {r, in}, DType::kF32);
        const Tensor x_t = on_target(x), dy_t = on_target(dy);
        Tensor y_t(target(), {r, out}, DType::kF32), dx_t(target(), {r, in}, DType::kF32);
        reference.forward(x, y, passes[micro]);
        layer.forward(x_t, y_t, passes[micro]);
        reference.backward(dy, &dx);
        layer.backward(dy_t, &dx_t);
        expect_tensors_close(y_t, y, tolerance, what + " output");
        expect_tensors_close(dx_t, dx, tolerance, what + " grad input");
      }
      // Both micro-batches' gradients, each from its own x (the kept x16 of its forward).
      expect_tensors_close(grads_t, grads, tolerance, name + " accumulated grad params");

      // The optimizer's update between steps: the next step's forward must round W again.
      const Tensor x = cpu_tensor(cpu(), {rows, in}, short_values(normal_values(rows * in, 70)));
      const Tensor x_t = on_target(x);
      Tensor y(cpu(), {rows, out}, DType::kF32), y_t(target(), {rows, out}, DType::kF32);
      // New weights, the bias kept (it is read as float32, never copied).
      auto set_weights = [&](uint64_t stream) {
        std::vector<float> values = host_values(params);
        const std::vector<float> w = short_values(normal_values(out * in, stream, 0.2));
        std::copy(w.begin(), w.end(), values.begin());
        params.copy_from_host(values.data());
        params_t.copy_from_host(values.data());
      };
      set_weights(80);
      reference.forward(x, y, Pass{true, 1, 0, false});
      layer.forward(x_t, y_t, Pass{true, 1, 0, false});
      expect_tensors_close(y_t, y, tolerance, name + " next step's output");
      const std::vector<float> next_step = host_values(y_t);
      set_weights(81);
      if (on_gpu()) {
        // A pass that says the weights are unchanged does reuse the copy (wrongly here, which
        // shows the copy is what multiplies): the previous output, bit for bit.
        layer.forward(x_t, y_t, Pass{true, 1, rows, true});
        EXPECT_EQ(host_values(y_t), next_step) << name << ": the kept weight copy was not used";
      }
      // Evaluation (Pass{}) rounds the current weights.
      reference.forward(x, y, Pass{});
      layer.forward(x_t, y_t, Pass{});
      expect_tensors_close(y_t, y, tolerance, name + " evaluation output");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, LayersOnDevice,
                         ::testing::Values(DeviceKind::kCpu, DeviceKind::kCuda), device_kind_name);

// grad_weight[out, in] += dz^T x with the bias gradient fused: a_row_sums = column sums of dz.
TEST_P(OpsOnDevice, FusedBiasGradientIsTheColumnSumsOfDzOrLeftUntouched) {
  struct Shape {
    int64_t rows, out, in;
    bool aligned;  // 16-byte multiples everywhere: cuBLASLt is expected to fuse in 16 bits
  };
  for (CudaGemmInput input :
       {CudaGemmInput::kFp32, CudaGemmInput::kTf32, CudaGemmInput::kBf16, CudaGemmInput::kFp16}) {
    for (const Shape& shape :
         {Shape{512, 256, 128, true}, Shape{33, 24, 40, false}, Shape{3, 7, 5, false}}) {
      const int64_t rows = shape.rows, out = shape.out, in = shape.in;
      const std::vector<float> dz = short_values(normal_values(rows * out, 1));
      const std::vector<float> x = short_values(normal_values(rows * in, 2));
      const std::vector<float> c0 = normal_values(out * in, 3);
      std::vector<double> expected = as_double(c0), sums(out, 0.0);
      for (int64_t i = 0; i < out; ++i) {
        for (int64_t r = 0; r < rows; ++r) sums[i] += dz[r * out + i];
        for (int64_t j = 0; j < in; ++j) {
          for (int64_t r = 0; r < rows; ++r) {
            expected[i * in + j] += static_cast<double>(dz[r * out + i]) * x[r * in + j];
          }
        }
      }
      const float sentinel = -12345.0f;
      float* row_sums = put(std::vector<float>(out, sentinel));
      float* c = put(c0);
      CudaGemmOptions options;
      options.input = input;
      options.a_row_sums = row_sums;
      const bool fused = cuda_gemm(cuda(), dense_gemm_shape(true, false, out, in, rows), 1.0f,
                                   put(dz), put(x), 1.0f, c, options);
      const std::string what = "input_" + std::to_string(static_cast<int>(input)) + "_" +
                               std::to_string(rows) + "x" + std::to_string(out) + "x" +
                               std::to_string(in);
      RecordProperty("bgradb_" + what, fused ? "fused" : "fallback");
      expect_close(get(c, out * in), expected, 1e-4, what + ": grad_weight");
      if (fused) {
        expect_close(get(row_sums, out), sums, 1e-5, what + ": bias gradient");
      } else {
        EXPECT_EQ(get(row_sums, out), std::vector<float>(out, sentinel)) << what;
      }
      // The combination the layer relies on: if cuBLASLt never fuses it, the epilogue is dead.
      const bool half = input == CudaGemmInput::kBf16 || input == CudaGemmInput::kFp16;
      if (half && shape.aligned) {
        EXPECT_TRUE(fused) << what << ": no BGRADB algorithm";
      }
    }
  }
  CudaGemmOptions options;
  float* buffer = put(std::vector<float>(64, 1.0f));
  options.a_row_sums = buffer;
  const GemmShape s = dense_gemm_shape(true, false, 4, 4, 4);
  EXPECT_THROW(cuda_gemm(cuda(), s, 0.5f, buffer, buffer, 0.0f, buffer + 16, options), Error);
  options.bias = buffer;
  EXPECT_THROW(cuda_gemm(cuda(), s, 1.0f, buffer, buffer, 0.0f, buffer + 16, options), Error);
}

INSTANTIATE_TEST_SUITE_P(Cuda, OpsOnDevice, ::testing::Values(DeviceKind::kCuda), device_kind_name);

}  // namespace
}  // namespace dpt
