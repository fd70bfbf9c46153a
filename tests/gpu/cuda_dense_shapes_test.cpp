// The Dense layer on the GPU in the shapes and number formats the other Dense tests leave out,
// against its CPU reference (tests/gpu/layers_harness.h; the CPU instances run here):
// - one output unit, one input and one row, in all four GEMM formats: cuBLASLt's problem then has
//   a dimension of 1, where its BIAS / RELU_BIAS / BGRADB epilogues may be refused (PyTorch met
//   INVALID_VALUE there) and cuda_gemm falls back; inputs are "short" values (exact in every
//   format), so 1e-5 (float32) and 1e-4 (the others: summation order only) hold;
// - bf16 on ordinary values against the CPU's own bf16 layer (core/dense.cpp through oneDNN),
//   which rounds the same operands (x, W, dz) to nearest even and accumulates in float32: the
//   products are exact on both, so outputs and, where dz is dy or 0 (identity, ReLU), the input
//   and weight gradients agree to 1e-5 (leaky ReLU too: dz is dy or slope * dy, one multiply).
//   Smooth activations compute dz with each device's erff / expf / tanhf, and one ulp there may
//   round a dz to the neighbouring bf16 value (up to 2^-6 for |dz| < 4; 5e-2). The bias
//   gradient sums dz in float32 on the CPU and, where cuBLASLt fuses it, the bf16 dz the GEMM
//   reads on the GPU (cuda_ops.h): 5e-2, as for bf16 sums of 21 values elsewhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "core/dense.h"
#include "tests/gpu/layers_harness.h"

namespace dpt {
namespace {

const char* format_name(GpuMatmul precision) {
  switch (precision) {
    case GpuMatmul::kFp32:
      return "fp32";
    case GpuMatmul::kTf32:
      return "tf32";
    case GpuMatmul::kBf16:
      return "bf16";
    case GpuMatmul::kFp16:
      return "fp16";
  }
  return "?";
}

struct Case {
  std::optional<proto::ActivationKind> activation;
  bool bias;
};

struct LayerRun {
  std::vector<float> y, dx, grads;
};

// One forward and backward of `layer` (on `device`) with `params` copied in and gradients
// starting at 0.5 (backward adds into them); dx only where the layer has a bias (the first layer
// of a model, here the one without, gets none).
LayerRun forward_backward(Device& device, Dense& layer, const std::vector<float>& params,
                          const std::vector<float>& x, const std::vector<float>& dy, int64_t rows) {
  const int64_t n = layer.num_params(), in = layer.input_size(), out = layer.output_size();
  Tensor p(device, {n}, DType::kF32), g(device, {n}, DType::kF32);
  p.copy_from_host(params.data());
  const std::vector<float> half(static_cast<std::size_t>(n), 0.5f);
  g.copy_from_host(half.data());
  layer.bind_params(p, g);
  Tensor x_t(device, {rows, in}, DType::kF32), dy_t(device, {rows, out}, DType::kF32);
  x_t.copy_from_host(x.data());
  dy_t.copy_from_host(dy.data());
  Tensor y(device, {rows, out}, DType::kF32), dx(device, {rows, in}, DType::kF32);
  dx.fill_zero();
  layer.forward(x_t, y, Pass{true, 0, 0, false});
  layer.backward(dy_t, layer.params().size() > 1 ? &dx : nullptr);
  return {host_values(y), host_values(dx), host_values(g)};
}

TEST_P(LayersOnDevice, DenseWithOneUnitOneInputOrOneRowMatchesTheCpu) {
  struct Shape {
    int64_t rows, in, out;
  };
  // out 1 with the bias 32 bytes in (aligned: the epilogue is asked for), in 1 (k = 1 in
  // forward), one row (k = 1 in the weight gradient: the bias gradient is dz itself).
  const Shape shapes[] = {{5, 8, 1}, {5, 1, 8}, {1, 8, 8}};
  const Case cases[] = {{std::nullopt, true}, {proto::RELU, true}, {proto::RELU, false}};
  for (const GpuMatmul precision :
       {GpuMatmul::kFp32, GpuMatmul::kTf32, GpuMatmul::kBf16, GpuMatmul::kFp16}) {
    const double tolerance = precision == GpuMatmul::kFp32 ? 1e-5 : 1e-4;
    for (const Shape& s : shapes) {
      for (const Case& c : cases) {
        Dense reference = dense_layer(cpu(), s.in, s.out, c.bias, c.activation);
        Dense layer = dense_layer(target(), s.in, s.out, c.bias, c.activation, precision);
        std::vector<float> params = short_values(normal_values(reference.num_params(), 20));
        const std::vector<float> x = short_values(normal_values(s.rows * s.in, 21));
        const std::vector<float> dy = short_values(normal_values(s.rows * s.out, 22));
        const LayerRun expected = forward_backward(cpu(), reference, params, x, dy, s.rows);
        const LayerRun actual = forward_backward(target(), layer, params, x, dy, s.rows);
        const std::string name = std::string(format_name(precision)) + " rows " +
                                 std::to_string(s.rows) + " in " + std::to_string(s.in) + " out " +
                                 std::to_string(s.out) + (c.activation ? " relu" : " identity") +
                                 (c.bias ? " with bias" : " without bias");
        expect_close(actual.y, as_double(expected.y), tolerance, name + " output");
        expect_close(actual.dx, as_double(expected.dx), tolerance, name + " grad input");
        expect_close(actual.grads, as_double(expected.grads), tolerance, name + " grad params");
      }
    }
  }
}

TEST_P(LayersOnDevice, Bf16DenseMatchesTheCpusBf16Layer) {
  const int64_t rows = 21, in = 37, out = 24;
  const CpuDeviceOptions bf16{2, CpuGemmLibrary::kOneDnn, MatmulPrecision::kBf16};
  CpuDevice reference_cpu(bf16), other_cpu(bf16);
  // The CPU instance checks the comparison with a second bf16 CPU layer.
  Device& device = on_gpu() ? static_cast<Device&>(cuda()) : other_cpu;
  const Case cases[] = {{std::nullopt, true},      {proto::RELU, true}, {proto::RELU, false},
                        {proto::LEAKY_RELU, true}, {proto::GELU, true}, {proto::TANH, false},
                        {proto::SIGMOID, true}};
  for (const Case& c : cases) {
    Dense reference = dense_layer(reference_cpu, in, out, c.bias, c.activation);
    Dense layer = dense_layer(device, in, out, c.bias, c.activation, GpuMatmul::kBf16);
    const std::vector<float> params = normal_values(reference.num_params(), 30, 0.3);
    const std::vector<float> x = normal_values(rows * in, 31), dy = normal_values(rows * out, 32);
    const LayerRun expected = forward_backward(reference_cpu, reference, params, x, dy, rows);
    const LayerRun actual = forward_backward(device, layer, params, x, dy, rows);
    const bool exact_dz =
        !c.activation || c.activation == proto::RELU || c.activation == proto::LEAKY_RELU;
    const std::string name = layer.kind() + (c.bias ? " with bias" : " without bias");
    expect_close(actual.y, as_double(expected.y), 1e-5, name + " output");
    expect_close(actual.dx, as_double(expected.dx), exact_dz ? 1e-5 : 5e-2, name + " grad input");
    const auto weights = static_cast<std::ptrdiff_t>(out * in);
    expect_close(
        std::vector<float>(actual.grads.begin(), actual.grads.begin() + weights),
        as_double(std::vector<float>(expected.grads.begin(), expected.grads.begin() + weights)),
        exact_dz ? 1e-5 : 5e-2, name + " grad weight");
    expect_close(
        std::vector<float>(actual.grads.begin() + weights, actual.grads.end()),
        as_double(std::vector<float>(expected.grads.begin() + weights, expected.grads.end())), 5e-2,
        name + " grad bias");
    // The bf16 rounding happened on both: the float32 layer's output differs.
    Dense float32 = dense_layer(cpu(), in, out, c.bias, c.activation);
    const LayerRun unrounded = forward_backward(cpu(), float32, params, x, dy, rows);
    double largest = 0;
    for (std::size_t i = 0; i < actual.y.size(); ++i) {
      largest = std::max(largest, std::fabs(double(actual.y[i]) - unrounded.y[i]));
    }
    EXPECT_GT(largest, 1e-3) << name << ": indistinguishable from float32";
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, LayersOnDevice,
                         ::testing::Values(DeviceKind::kCpu, DeviceKind::kCuda), device_kind_name);

}  // namespace
}  // namespace dpt
