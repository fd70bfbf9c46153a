// The Dense layer on every device (tests/gpu/ops_harness.h): core/dense.h's forward and backward
// on the CPU against cuda_dense_forward / cuda_dense_backward (cuBLASLt GEMMs with fused bias or
// bias + ReLU epilogues, the bias gradient fused into the weight-gradient GEMM where cuBLASLt has
// an algorithm for it in float32, element-wise activation kernels) on the same weights and inputs,
// with the parameters and gradients as views into one flat buffer as the Model lays them out;
// and the NaN contract of the fused ReLU (cuda_ops.h cuda_dense_forward) on both devices.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/dense.h"
#include "devices/cuda/cuda_ops.h"
#include "tensor_values.h"
#include "tests/gpu/ops_harness.h"

namespace dpt {
namespace {

struct DenseCase {
  std::optional<proto::ActivationKind> proto_kind;
  CudaActivation cuda_kind;
  bool bias;
};

using testing::values_of;

TEST_P(OpsOnDevice, DenseForwardAndBackwardMatchTheCpuLayer) {
  const int64_t rows = 21, in = 37;
  // out 24: the bias view is 32-byte aligned (not 256), so the epilogues take it; out 25: it is
  // only 4-byte aligned (925 floats in), so the bias goes to the element-wise pass.
  for (const int64_t out : {int64_t{24}, int64_t{25}}) {
    const DenseCase cases[] = {{std::nullopt, CudaActivation::kIdentity, true},
                               {proto::RELU, CudaActivation::kRelu, true},
                               {proto::RELU, CudaActivation::kRelu, false},
                               {proto::GELU, CudaActivation::kGelu, true},
                               {proto::LEAKY_RELU, CudaActivation::kLeakyRelu, true},
                               {proto::SIGMOID, CudaActivation::kSigmoid, true}};
    for (const DenseCase& c : cases) {
      Dense layer = dense_layer(cpu(), in, out, c.bias, c.proto_kind);
      Tensor params(cpu(), {layer.num_params()}, DType::kF32);
      Tensor grads(cpu(), {layer.num_params()}, DType::kF32);
      layer.bind_params(params, grads);
      layer.init_params(3);
      Tensor x = cpu_tensor(cpu(), {rows, in}, normal_values(rows * in, 50));
      Tensor dy = cpu_tensor(cpu(), {rows, out}, normal_values(rows * out, 51));
      Tensor y(cpu(), {rows, out}, DType::kF32), dx(cpu(), {rows, in}, DType::kF32);
      layer.forward(x, y, Pass{true, 0, 0, false});
      layer.backward(dy, &dx);

      float* p = put(values_of(params));
      float* g = put(std::vector<float>(layer.num_params(), 0.0f));
      float* yd = put(std::vector<float>(rows * out, 0.0f));
      float* dxd = put(std::vector<float>(rows * in, 0.0f));
      const float* bias = c.bias ? p + out * in : nullptr;
      float* grad_bias = c.bias ? g + out * in : nullptr;
      if (on_gpu()) {
        const CudaActivationSpec cuda_spec{c.cuda_kind, 0.1f};
        float* z = put(std::vector<float>(rows * out, 0.0f));
        float* dz = put(std::vector<float>(rows * out, 0.0f));
        const float* xd = put(values_of(x));
        cuda_dense_forward(cuda(), cuda_spec, xd, p, bias, z, yd, rows, in, out);
        cuda_dense_backward(cuda(), cuda_spec, xd, p, z, yd, put(values_of(dy)), dz, g, grad_bias,
                            dxd, rows, in, out);
      } else {
        Dense again = dense_layer(cpu(), in, out, c.bias, c.proto_kind);
        Tensor p_view = cpu_tensor(cpu(), {layer.num_params()}, get(p, layer.num_params()));
        Tensor g_view(cpu(), {layer.num_params()}, DType::kF32);
        again.bind_params(p_view, g_view);
        Tensor y2(cpu(), {rows, out}, DType::kF32), dx2(cpu(), {rows, in}, DType::kF32);
        again.forward(x, y2, Pass{true, 0, 0, false});
        again.backward(dy, &dx2);
        std::copy(y2.data<float>(), y2.data<float>() + rows * out, yd);
        std::copy(dx2.data<float>(), dx2.data<float>() + rows * in, dxd);
        std::copy(g_view.data<float>(), g_view.data<float>() + layer.num_params(), g);
      }
      const std::string name = layer.kind() + (c.bias ? " with bias" : " without bias");
      expect_close(get(yd, rows * out), as_double(values_of(y)), 1e-5, name + " output");
      expect_close(get(dxd, rows * in), as_double(values_of(dx)), 1e-5, name + " grad input");
      expect_close(get(g, layer.num_params()), as_double(values_of(grads)), 1e-5,
                   name + " grad params, out " + std::to_string(out));
    }
  }
}

bool any_nan(const std::vector<float>& values) {
  return std::any_of(values.begin(), values.end(), [](float v) { return std::isnan(v); });
}

// A NaN in x, or in W, of a Dense + ReLU layer whose forward fuses bias and ReLU on the GPU. The
// output reads NaN there on the CPU, NaN or 0 on the GPU (cuBLASLt's RELU_BIAS epilogue may zero
// a NaN); either way the gradients carry the NaN (the weight gradient dz^T x through 0 * NaN,
// dx = dz W likewise), which is what keeps the training step's gradient-norm guard stopping.
TEST_P(OpsOnDevice, DenseReluCarriesANanIntoItsGradients) {
  const int64_t rows = 6, in = 8, out = 12;  // the bias at 96 floats in: 16-byte aligned, fused
  const int64_t nan_row = 2, nan_unit = 5;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const bool in_weights : {false, true}) {
    Dense layer = dense_layer(cpu(), in, out, true, proto::RELU);
    Tensor params(cpu(), {layer.num_params()}, DType::kF32);
    Tensor grads(cpu(), {layer.num_params()}, DType::kF32);
    layer.bind_params(params, grads);
    layer.init_params(5);
    grads.fill_zero();
    std::vector<float> p = values_of(params), x = normal_values(rows * in, 90);
    const std::vector<float> dy = normal_values(rows * out, 91);
    if (in_weights) {
      p[nan_unit * in + 1] = nan;  // W[5][1]: unit 5 of every row
    } else {
      x[nan_row * in + 3] = nan;  // every unit of row 2
    }
    std::vector<float> y, weight_grad, dx;
    if (on_gpu()) {
      float* pd = put(p);
      float* g = put(std::vector<float>(layer.num_params(), 0.0f));
      float* yd = put(std::vector<float>(rows * out, 0.0f));
      float* dz = put(std::vector<float>(rows * out, 0.0f));
      float* dxd = put(std::vector<float>(rows * in, 0.0f));
      const float* xd = put(x);
      const CudaActivationSpec relu{CudaActivation::kRelu};
      cuda_dense_forward(cuda(), relu, xd, pd, pd + out * in, yd, yd, rows, in, out);
      cuda_dense_backward(cuda(), relu, xd, pd, yd, yd, put(dy), dz, g, g + out * in, dxd, rows, in,
                          out);
      y = get(yd, rows * out), weight_grad = get(g, out * in), dx = get(dxd, rows * in);
    } else {
      std::copy(p.begin(), p.end(), params.data<float>());
      Tensor xt = cpu_tensor(cpu(), {rows, in}, x), dyt = cpu_tensor(cpu(), {rows, out}, dy);
      Tensor yt(cpu(), {rows, out}, DType::kF32), dxt(cpu(), {rows, in}, DType::kF32);
      layer.forward(xt, yt, Pass{true, 0, 0, false});
      layer.backward(dyt, &dxt);
      y = values_of(yt), dx = values_of(dxt);
      weight_grad.assign(grads.data<float>(), grads.data<float>() + out * in);
    }
    const std::string what = in_weights ? "NaN in W" : "NaN in x";
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < out; ++j) {
        if (in_weights ? j != nan_unit : r != nan_row) continue;
        const float v = y[r * out + j];
        EXPECT_TRUE(std::isnan(v) || (on_gpu() && v == 0.0f))
            << what << ": output (" << r << ", " << j << ") is " << v;
      }
    }
    if (in_weights) {
      EXPECT_TRUE(any_nan(dx)) << what << ": dx = dz W lost the NaN";
    } else {
      EXPECT_TRUE(any_nan(weight_grad)) << what << ": the weight gradient lost the NaN";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, OpsOnDevice,
                         ::testing::Values(DeviceKind::kCpu, DeviceKind::kCuda), device_kind_name);

}  // namespace
}  // namespace dpt
