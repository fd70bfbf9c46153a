// Layer ops on every device (tests/gpu/ops_harness.h): GEMM (every transpose, padded strides,
// fused bias and ReLU epilogues, TF32), bias + activation forward and backward, the bias
// gradient, dropout masks (bit-identical to the CPU's) and softmax cross-entropy, each against a
// double-precision loop or the CPU reference on the same inputs.
#include <gtest/gtest.h>

#include <utility>

#include "core/activation.h"
#include "core/dropout.h"
#include "core/gemm.h"
#include "core/loss.h"
#include "devices/cuda/cuda_ops.h"
#include "devices/error.h"
#include "tests/gpu/ops_harness.h"

namespace dpt {
namespace {

// Row-major element (i, j) of op(X) for X stored with row stride ld.
double at(const std::vector<float>& x, bool trans, int64_t ld, int64_t i, int64_t j) {
  return trans ? x[static_cast<std::size_t>(j * ld + i)] : x[static_cast<std::size_t>(i * ld + j)];
}

struct GemmCase {
  bool trans_a, trans_b;
  int64_t pad;  // extra elements per stored row
};

TEST_P(OpsOnDevice, GemmMatchesDoubleLoopForEveryTransposeAndStride) {
  const int64_t m = 37, n = 29, k = 53;
  for (const GemmCase& g : {GemmCase{false, false, 0}, GemmCase{false, true, 0},
                            GemmCase{true, false, 0}, GemmCase{true, true, 3}}) {
    GemmShape s;
    s.trans_a = g.trans_a, s.trans_b = g.trans_b, s.m = m, s.n = n, s.k = k;
    s.lda = (g.trans_a ? m : k) + g.pad;
    s.ldb = (g.trans_b ? k : n) + g.pad;
    s.ldc = n + g.pad;
    const std::vector<float> a = normal_values((g.trans_a ? k : m) * s.lda, 1);
    const std::vector<float> b = normal_values((g.trans_b ? n : k) * s.ldb, 2);
    const std::vector<float> c0 = normal_values(m * s.ldc, 3);
    const float alpha = 0.75f, beta = -0.5f;
    std::vector<double> expected = as_double(c0);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double sum = 0;
        for (int64_t p = 0; p < k; ++p)
          sum += at(a, g.trans_a, s.lda, i, p) * at(b, g.trans_b, s.ldb, p, j);
        expected[i * s.ldc + j] = alpha * sum + beta * c0[i * s.ldc + j];
      }
    }
    float* c = put(c0);
    if (on_gpu()) {
      cuda_gemm(cuda(), s, alpha, put(a), put(b), beta, c);
    } else {
      gemm(cpu(), s, alpha, put(a), put(b), beta, c);
    }
    expect_close(
        get(c, c0.size()), expected, 1e-4,
        "gemm trans_a=" + std::to_string(g.trans_a) + " trans_b=" + std::to_string(g.trans_b));
  }
}

// Views into the flat buffers start at any float: operands one float past an aligned block.
TEST_P(OpsOnDevice, GemmOnViewsThatAreOnlyFloatAligned) {
  const int64_t m = 8, n = 12, k = 16;
  std::vector<float> a = normal_values(m * k + 1, 16), b = normal_values(k * n + 1, 17);
  std::vector<double> expected(static_cast<std::size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p) sum += double(a[1 + i * k + p]) * b[1 + p * n + j];
      expected[i * n + j] = sum;
    }
  }
  float* c = put(std::vector<float>(m * n + 1, 0.0f));
  const GemmShape s = dense_gemm_shape(false, false, m, n, k);
  if (on_gpu()) {
    cuda_gemm(cuda(), s, 1.0f, put(a) + 1, put(b) + 1, 0.0f, c + 1);
  } else {
    gemm(cpu(), s, 1.0f, put(a) + 1, put(b) + 1, 0.0f, c + 1);
  }
  std::vector<float> result = get(c, m * n + 1);
  result.erase(result.begin());
  expect_close(result, expected, 1e-4, "unaligned gemm");
}

// Dense forward: y = relu(x W^T + b), the GPU through cuBLASLt's RELU_BIAS epilogue (and BIAS
// alone), the CPU through gemm plus its bias/activation loop.
TEST_P(OpsOnDevice, DenseForwardWithFusedBiasAndRelu) {
  const int64_t rows = 33, in = 40, out = 24;
  const std::vector<float> x = normal_values(rows * in, 4), w = normal_values(out * in, 5, 0.3);
  const std::vector<float> bias = normal_values(out, 6);
  for (bool relu : {false, true}) {
    std::vector<double> expected(static_cast<std::size_t>(rows * out));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < out; ++j) {
        double sum = bias[j];
        for (int64_t p = 0; p < in; ++p) sum += double(x[r * in + p]) * w[j * in + p];
        expected[r * out + j] = relu && sum < 0 ? 0.0 : sum;
      }
    }
    const GemmShape s = dense_gemm_shape(false, true, rows, out, in);
    float* y = put(std::vector<float>(rows * out, 0.0f));
    if (on_gpu()) {
      CudaGemmOptions options;
      options.bias = put(bias);
      options.relu = relu;
      cuda_gemm(cuda(), s, 1.0f, put(x), put(w), 0.0f, y, options);
    } else {
      gemm(cpu(), s, 1.0f, put(x), put(w), 0.0f, y);
      ActivationSpec spec;
      for (int64_t i = 0; i < rows * out; ++i) y[i] += bias[i % out];
      if (relu) activation_forward(spec, y, y, rows * out);
    }
    expect_close(get(y, expected.size()), expected, 1e-4, relu ? "relu epilogue" : "bias epilogue");
  }
}

TEST_P(OpsOnDevice, GemmTf32IsCloseToFloat32) {
  if (!on_gpu()) GTEST_SKIP() << "TF32 is a GPU option";
  const int64_t m = 64, n = 48, k = 96;
  const std::vector<float> a = normal_values(m * k, 7), b = normal_values(k * n, 8);
  std::vector<double> expected(static_cast<std::size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p) sum += double(a[i * k + p]) * b[p * n + j];
      expected[i * n + j] = sum;
    }
  }
  float* c = put(std::vector<float>(m * n, 0.0f));
  CudaGemmOptions options;
  options.tf32 = true;
  cuda_gemm(cuda(), dense_gemm_shape(false, false, m, n, k), 1.0f, put(a), put(b), 0.0f, c,
            options);
  // TF32 keeps 10 mantissa bits: relative error ~1e-3 per product, ~sqrt(k) of them.
  expect_close(get(c, expected.size()), expected, 2e-2, "tf32 gemm");
}

TEST_P(OpsOnDevice, GemmRejectsBadShapes) {
  if (!on_gpu()) GTEST_SKIP() << "shape checks of cuda_gemm";
  GemmShape s = dense_gemm_shape(false, false, 4, 4, 4);
  s.lda = 2;
  float* buffer = put(std::vector<float>(64, 0.0f));
  EXPECT_THROW(cuda_gemm(cuda(), s, 1.0f, buffer, buffer, 0.0f, buffer), Error);
  s = dense_gemm_shape(false, false, 4, 4, 0);
  EXPECT_THROW(cuda_gemm(cuda(), s, 1.0f, buffer, buffer, 0.0f, buffer), Error);
}

struct ActivationCase {
  proto::ActivationKind proto_kind;
  CudaActivation cuda_kind;
};

const ActivationCase kActivations[] = {{proto::RELU, CudaActivation::kRelu},
                                       {proto::LEAKY_RELU, CudaActivation::kLeakyRelu},
                                       {proto::GELU, CudaActivation::kGelu},
                                       {proto::TANH, CudaActivation::kTanh},
                                       {proto::SIGMOID, CudaActivation::kSigmoid}};

TEST_P(OpsOnDevice, BiasActivationForwardAndBackwardMatchTheCpuKernels) {
  const int64_t rows = 19, cols = 45;
  const std::vector<float> x = normal_values(rows * cols, 9, 2.0);
  const std::vector<float> bias = normal_values(cols, 10);
  const std::vector<float> dy = normal_values(rows * cols, 11);
  for (const ActivationCase& act : kActivations) {
    ActivationSpec spec;
    spec.kind = act.proto_kind;
    spec.negative_slope = 0.2f;
    std::vector<float> z(x), y_ref(x.size()), dx_ref(x.size());
    for (int64_t i = 0; i < rows * cols; ++i) z[i] += bias[i % cols];
    activation_forward(spec, z.data(), y_ref.data(), rows * cols);
    activation_backward(spec, z.data(), y_ref.data(), dy.data(), dx_ref.data(), rows * cols);

    float* zd = put(z);
    float* y = put(std::vector<float>(x.size(), 0.0f));
    float* dx = put(std::vector<float>(x.size(), 0.0f));
    if (on_gpu()) {
      const CudaActivationSpec cuda_spec{act.cuda_kind, spec.negative_slope};
      cuda_bias_activation_forward(cuda(), cuda_spec, put(x), put(bias), y, rows, cols);
      cuda_activation_backward(cuda(), cuda_spec, zd, y, put(dy), dx, rows * cols);
    } else {
      activation_forward(spec, zd, y, rows * cols);
      activation_backward(spec, zd, y, put(dy), dx, rows * cols);
    }
    const std::string name = activation_name(act.proto_kind);
    expect_close(get(y, x.size()), as_double(y_ref), 1e-5, name + " forward");
    expect_close(get(dx, x.size()), as_double(dx_ref), 1e-5, name + " backward");
  }
}

TEST_P(OpsOnDevice, BiasGradAddsColumnSums) {
  // One partial block of 32 columns; three blocks, the last partial, with fewer rows than lanes.
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{300, 17}, {7, 70}}) {
    const std::vector<float> dy = normal_values(rows * cols, 12);
    const std::vector<float> start = normal_values(cols, 13);
    std::vector<double> expected = as_double(start);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < cols; ++j) expected[j] += dy[r * cols + j];
    }
    float* grad = put(start);
    const float* dyd = put(dy);
    if (on_gpu()) {
      cuda_bias_grad(cuda(), dyd, rows, cols, grad);
    } else {
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < cols; ++j) grad[j] += dyd[r * cols + j];
      }
    }
    expect_close(get(grad, cols), expected, 1e-5, "bias grad " + std::to_string(cols));
  }
}

// The GPU's mask must equal the Dropout layer's bit for bit: the layer's output on a batch of
// ones is its mask. Sample offsets above 2^32 exercise the high word of the counter.
TEST_P(OpsOnDevice, DropoutMaskIsBitIdenticalToTheCpuLayer) {
  const int64_t rows = 23, cols = 37;  // cols not a multiple of 4
  const float rate = 0.3f;
  const uint64_t seed = 0x1234567890abcdefULL;
  const int layer = 3;
  for (const Pass& pass :
       {Pass{true, 5, 0, false}, Pass{true, 1 << 20, (int64_t{1} << 32) + 7, false}}) {
    Dropout dropout(cpu(), "dropout", layer, cols, rate, seed);
    Tensor ones = cpu_tensor(cpu(), {rows, cols}, std::vector<float>(rows * cols, 1.0f));
    Tensor expected(cpu(), {rows, cols}, DType::kF32);
    dropout.forward(ones, expected, pass);
    float* mask = put(std::vector<float>(rows * cols, -1.0f));
    if (on_gpu()) {
      cuda_dropout_mask(cuda(), mask, rows, cols, rate, seed, layer, pass.step, pass.sample_offset);
    } else {
      std::copy(expected.data<float>(), expected.data<float>() + rows * cols, mask);
    }
    const std::vector<float> actual = get(mask, rows * cols);
    int zeros = 0;
    for (int64_t i = 0; i < rows * cols; ++i) {
      ASSERT_EQ(actual[i], expected.data<float>()[i]) << "element " << i;
      zeros += actual[i] == 0.0f;
    }
    EXPECT_GT(zeros, rows * cols / 5);  // about 30% dropped
    EXPECT_LT(zeros, rows * cols * 2 / 5);
  }
}

TEST_P(OpsOnDevice, SoftmaxCrossEntropyMatchesTheCpuLoss) {
  const int64_t rows = 41, cols = 10;
  std::vector<float> logits = normal_values(rows * cols, 14, 3.0);
  logits[5] = 80.0f;  // large logits must not overflow
  std::vector<int32_t> labels(rows);
  for (int64_t r = 0; r < rows; ++r) labels[r] = static_cast<int32_t>((r * 7) % cols);
  const double scale = 1.0 / rows;
  Tensor logits_cpu = cpu_tensor(cpu(), {rows, cols}, logits);
  Tensor grad_ref(cpu(), {rows, cols}, DType::kF32);
  const LossResult ref =
      compute_loss(proto::SOFTMAX_CROSS_ENTROPY, logits_cpu, labels.data(), &grad_ref, scale);
  float* grad = put(std::vector<float>(rows * cols, 0.0f));
  CudaLossSums sums;
  if (on_gpu()) {
    sums = cuda_softmax_cross_entropy(cuda(), put(logits), put(labels), rows, cols, grad, scale);
  } else {
    Tensor grad_cpu(cpu(), {rows, cols}, DType::kF32);
    const LossResult result =
        compute_loss(proto::SOFTMAX_CROSS_ENTROPY, logits_cpu, labels.data(), &grad_cpu, scale);
    sums = {result.loss_sum, result.correct};
    std::copy(grad_cpu.data<float>(), grad_cpu.data<float>() + rows * cols, grad);
  }
  EXPECT_NEAR(sums.loss_sum, ref.loss_sum, 1e-9 * std::max(1.0, ref.loss_sum));
  EXPECT_EQ(sums.correct, ref.correct);
  std::vector<float> grad_ref_values(grad_ref.data<float>(), grad_ref.data<float>() + rows * cols);
  expect_close(get(grad, rows * cols), as_double(grad_ref_values), 1e-6, "loss gradient");
}

TEST_P(OpsOnDevice, SoftmaxCrossEntropyNamesABadLabel) {
  if (!on_gpu()) GTEST_SKIP() << "the CPU's label check is tested in core/loss_test";
  const std::vector<int32_t> labels = {0, 1, 12};
  try {
    cuda_softmax_cross_entropy(cuda(), put(normal_values(3 * 4, 15)), put(labels), 3, 4, nullptr,
                               1.0);
    FAIL() << "no error for label 12 of 4 classes";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("sample 2"), std::string::npos) << error.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, OpsOnDevice,
                         ::testing::Values(DeviceKind::kCpu, DeviceKind::kCuda), device_kind_name);

}  // namespace
}  // namespace dpt
