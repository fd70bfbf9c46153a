// The kernels at the edges of their sizes (GPU only; skips without one). Past one grid: grid_for
// caps a launch at 65536 blocks of 256 threads (2^24 threads, devices/cuda/cuda_launch.h), so over
// more elements each thread's grid-stride loop runs again; every element-wise, optimizer, 16-bit,
// dropout and loss kernel (and the norm's sum of squares) runs over just over 2^24 items and all of
// them, the tail included, are checked against the CPU reference (the bias column, the strided
// source row and the dropout counter are computed from the global index there). Empty: every entry
// point with 0 rows or 0 elements returns its neutral answer, writes nothing and leaves no CUDA
// error behind. About 1.5 GB of device memory and a few seconds of host work for the references.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "comm/reduce.h"
#include "core/activation.h"
#include "core/bf16.h"
#include "core/dropout.h"
#include "core/loss.h"
#include "devices/cuda/cuda_ops.h"
#include "optim/adam.h"
#include "optim/optimizer.h"
#include "optim/sgd.h"
#include "tensor_values.h"
#include "tests/gpu/ops_harness.h"

namespace dpt {
namespace {

using testing::values_of;

constexpr int64_t kOneGrid = int64_t{65536} * 256;
constexpr int64_t kPastOneGrid = kOneGrid + 1029;  // odd: no multiple of any block size

// n values uniform in [-scale, scale), cheap to make in the millions (a 64-bit LCG).
std::vector<float> many_values(int64_t n, uint64_t seed, float scale = 1.0f) {
  std::vector<float> values(static_cast<std::size_t>(n));
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& v : values) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v = scale * (static_cast<float>(state >> 40) * 0x1.0p-23f - 1.0f);
  }
  return values;
}

// Exact equality of every element, reporting the first mismatch (and whether it is past 2^24).
template <typename T>
void expect_same(const std::vector<T>& actual, const std::vector<T>& expected,
                 const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    if (std::memcmp(&actual[i], &expected[i], sizeof(T)) != 0) {
      FAIL() << what << ": element " << i << (int64_t(i) >= kOneGrid ? " (past one grid)" : "")
             << " is " << +actual[i] << ", expected " << +expected[i];
    }
  }
}

TEST_P(OpsOnDevice, ElementwiseKernelsCoverEveryElementPastOneGrid) {
  const int64_t n = kPastOneGrid;
  const std::vector<float> x = many_values(n, 1, 3.0f), other = many_values(n, 2);
  std::vector<float> product(x.size()), sum(x.size()), scaled(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    product[i] = x[i] * other[i];
    sum[i] = other[i] + x[i];
    scaled[i] = x[i] * 0.375f;
  }
  float* y = put(std::vector<float>(x.size(), 0.0f));
  cuda_multiply(cuda(), put(x), put(other), y, n);
  expect_same(get(y, x.size()), product, "multiply");
  float* acc = put(other);
  cuda_add(cuda(), put(x), acc, n);
  expect_same(get(acc, x.size()), sum, "add");
  float* s = put(x);
  cuda_scale(cuda(), s, n, 0.375f);
  expect_same(get(s, x.size()), scaled, "scale");

  // Bias + GELU over [rows, 1000] (the bias column is i % cols), and its backward.
  const int64_t cols = 1000, rows = n / cols + 1;
  const std::vector<float> z0 = many_values(rows * cols, 3, 3.0f), bias = many_values(cols, 4);
  const std::vector<float> dy = many_values(rows * cols, 5);
  ActivationSpec spec{proto::GELU, 0.01f};
  std::vector<float> z(z0), y_ref(z0.size()), dx_ref(z0.size());
  for (std::size_t i = 0; i < z.size(); ++i) z[i] += bias[i % cols];
  activation_forward(spec, z.data(), y_ref.data(), rows * cols);
  activation_backward(spec, z.data(), y_ref.data(), dy.data(), dx_ref.data(), rows * cols);
  const CudaActivationSpec gelu{CudaActivation::kGelu};
  float* act = put(std::vector<float>(z0.size(), 0.0f));
  float* dx = put(std::vector<float>(z0.size(), 0.0f));
  cuda_bias_activation_forward(cuda(), gelu, put(z0), put(bias), act, rows, cols);
  cuda_activation_backward(cuda(), gelu, put(z), act, put(dy), dx, rows * cols);
  expect_close(get(act, z0.size()), as_double(y_ref), 1e-5, "bias + gelu forward");
  expect_close(get(dx, z0.size()), as_double(dx_ref), 1e-5, "gelu backward");
}

TEST_P(OpsOnDevice, OptimizerKernelsCoverEveryElementPastOneGrid) {
  const int64_t n = kPastOneGrid;
  const std::vector<float> p0 = many_values(n, 6), g = many_values(n, 7);
  proto::SgdConfig sgd_config;
  sgd_config.set_momentum(0.9f);
  sgd_config.set_weight_decay(0.01f);
  sgd_config.set_nesterov(true);
  Sgd sgd(cpu(), sgd_config, n);
  Tensor params = cpu_tensor(cpu(), {n}, p0);
  const Tensor grads = cpu_tensor(cpu(), {n}, g);
  float* p = put(p0);
  const float* gd = put(g);
  float* buf = put(std::vector<float>(p0.size(), 0.0f));
  for (int step = 0; step < 2; ++step) {  // the second step reads the momentum the first wrote
    sgd.step(params, grads, 0.1f);
    cuda_sgd_step(cuda(), p, gd, buf, n, 0.1f, 0.01f, 0.9f, true);
  }
  expect_close(get(p, p0.size()), as_double(values_of(params)), 1e-6, "sgd");
  // The gradient norm's sum of squares: one block per 4096-element chunk, 4097 of them.
  const double norm = global_norm(grads);
  EXPECT_NEAR(std::sqrt(cuda_sum_squares(cuda(), gd, n)), norm, 1e-12 * norm);

  proto::AdamConfig adam_config;
  adam_config.set_weight_decay(0.01f);
  Adam adam(cpu(), adam_config, true, n);
  const AdamCoefficients a = adam.coefficients(1e-3f);
  Tensor adam_params = cpu_tensor(cpu(), {n}, p0);
  adam.step(adam_params, grads, 1e-3f);
  float* ap = put(p0);
  float* m = put(std::vector<float>(p0.size(), 0.0f));
  float* v = put(std::vector<float>(p0.size(), 0.0f));
  cuda_adam_step(cuda(), ap, gd, m, v, n,
                 {a.l2, a.decay, a.beta1, a.one_minus_beta1, a.beta2, a.one_minus_beta2,
                  a.step_size, a.bias2_sqrt, a.eps});
  expect_close(get(ap, p0.size()), as_double(values_of(adam_params)), 1e-6, "adamw params");
  expect_close(get(v, p0.size()), as_double(values_of(adam.state()[1].tensor)), 1e-6, "adamw v");
}

TEST_P(OpsOnDevice, SixteenBitKernelsCoverEveryElementPastOneGrid) {
  // A [rows, 1000] view with row stride 1003: the source row is i / cols, past one grid too.
  const int64_t cols = 1000, ld = 1003, rows = kPastOneGrid / cols + 1, n = rows * cols;
  const std::vector<float> strided = many_values(rows * ld, 8, 100.0f);
  std::vector<float> packed(static_cast<std::size_t>(n));
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(strided.begin() + r * ld, cols, packed.begin() + r * cols);
  }
  const float* src = put(strided);
  for (const DType dtype : {DType::kBF16, DType::kF16}) {
    const CudaGemmInput type = dtype == DType::kBF16 ? CudaGemmInput::kBf16 : CudaGemmInput::kFp16;
    std::vector<uint16_t> bits(packed.size());
    std::vector<float> widened(packed.size());
    round_floats(packed.data(), bits.data(), bits.size(), dtype);
    widen_floats(bits.data(), widened.data(), bits.size(), dtype);
    uint16_t* bits_dev = put(std::vector<uint16_t>(bits.size(), 0));
    float* widened_dev = put(std::vector<float>(bits.size(), 0.0f));
    cuda_round_to_16bit(cuda(), type, src, rows, cols, ld, bits_dev);
    cuda_widen_16bit(cuda(), type, bits_dev, widened_dev, n);
    const std::string name = dtype_name(dtype);
    expect_same(get(bits_dev, bits.size()), bits, name + " rounding");
    expect_same(get(widened_dev, bits.size()), widened, name + " widening");
  }
  // The loss scaler's unscale-and-check: every element scaled; an inf only in the tail is found.
  std::vector<float> unscaled(packed.size());
  for (std::size_t i = 0; i < packed.size(); ++i) unscaled[i] = packed[i] * 0.125f;
  float* grads = put(packed);
  EXPECT_FALSE(cuda_unscale_and_check(cuda(), grads, n, 0.125f));
  expect_same(get(grads, packed.size()), unscaled, "unscale");
  std::vector<float> with_inf = packed;
  with_inf.back() = INFINITY;
  EXPECT_TRUE(cuda_unscale_and_check(cuda(), put(with_inf), n, 0.125f)) << "inf at the last one";
  EXPECT_TRUE(cuda_unscale_and_check(cuda(), put(with_inf), n)) << "inf, no scaling";
}

TEST_P(OpsOnDevice, DropoutMaskCoversEverySamplePastOneGrid) {
  // One thread per (row, group of 4 features): 2 groups per row of 5 (the second partial).
  const int64_t cols = 5, rows = kPastOneGrid / 2 + 1;
  const Pass pass{true, 9, (int64_t{1} << 32) - 1000, false};  // the counter's high word changes
  Dropout dropout(cpu(), "dropout", 4, cols, 0.25f, 0xfeedULL);
  Tensor ones(cpu(), {rows, cols}, DType::kF32);
  std::fill_n(ones.data<float>(), rows * cols, 1.0f);
  Tensor expected(cpu(), {rows, cols}, DType::kF32);
  dropout.forward(ones, expected, pass);
  float* mask = put(std::vector<float>(static_cast<std::size_t>(rows * cols), -1.0f));
  cuda_dropout_mask(cuda(), mask, rows, cols, 0.25f, 0xfeedULL, 4, pass.step, pass.sample_offset);
  expect_same(get(mask, rows * cols), values_of(expected), "dropout mask");
}

TEST_P(OpsOnDevice, SoftmaxCrossEntropyCoversEveryRowPastOneGrid) {
  const int64_t rows = kPastOneGrid, cols = 2;  // one thread per row
  const std::vector<float> logits = many_values(rows * cols, 9, 4.0f);
  std::vector<int32_t> labels(static_cast<std::size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) labels[r] = static_cast<int32_t>((r * 7 / 3) % cols);
  Tensor grad_ref(cpu(), {rows, cols}, DType::kF32);
  const LossResult ref =
      compute_loss(proto::SOFTMAX_CROSS_ENTROPY, cpu_tensor(cpu(), {rows, cols}, logits),
                   labels.data(), &grad_ref, 1.0 / rows);
  float* grad = put(std::vector<float>(logits.size(), 0.0f));
  const CudaLossSums sums =
      cuda_softmax_cross_entropy(cuda(), put(logits), put(labels), rows, cols, grad, 1.0 / rows);
  EXPECT_NEAR(sums.loss_sum, ref.loss_sum, 1e-9 * ref.loss_sum);
  EXPECT_EQ(sums.correct, ref.correct);
  expect_close(get(grad, logits.size()), as_double(values_of(grad_ref)), 1e-6, "loss gradient");
}

// 0 rows or 0 elements: nothing queued that could fail, nothing written, neutral answers.
TEST_P(OpsOnDevice, EmptyShapesWriteNothingAndLeaveNoError) {
  const float sentinel = -7.5f;
  const std::vector<float> sentinels(64, sentinel);
  float* a = put(sentinels);
  float* b = put(sentinels);
  float* c = put(sentinels);
  const CudaActivationSpec relu{CudaActivation::kRelu};
  EXPECT_FALSE(cuda_gemm(cuda(), dense_gemm_shape(false, false, 0, 4, 4), 1.0f, a, b, 0.0f, c));
  EXPECT_FALSE(cuda_gemm(cuda(), dense_gemm_shape(false, false, 4, 0, 4), 1.0f, a, b, 0.0f, c));
  cuda_dense_forward(cuda(), relu, a, b, b + 16, c, c, 0, 4, 4);
  cuda_dense_backward(cuda(), relu, a, b, c, c, a, c, c, c + 16, c + 32, 0, 4, 4);
  cuda_bias_activation_forward(cuda(), relu, a, b, c, 0, 4);
  cuda_activation_backward(cuda(), relu, a, b, a, c, 0);
  cuda_bias_grad(cuda(), a, 0, 4, c);  // adds a sum of nothing: 0
  cuda_dropout_mask(cuda(), c, 0, 4, 0.5f, 1, 0, 0, 0);
  cuda_multiply(cuda(), a, b, c, 0);
  cuda_add(cuda(), a, c, 0);
  cuda_scale(cuda(), c, 0, 2.0f);
  cuda_sgd_step(cuda(), c, a, c + 16, 0, 0.1f, 0.0f, 0.9f, false);
  cuda_adam_step(cuda(), c, a, c + 16, c + 32, 0, CudaAdamCoefficients{});
  uint16_t* half = put(std::vector<uint16_t>(16, 0x1234));
  cuda_round_to_16bit(cuda(), CudaGemmInput::kBf16, a, 0, 4, 4, half);
  cuda_widen_16bit(cuda(), CudaGemmInput::kFp16, half, c, 0);
  EXPECT_EQ(cuda_sum_squares(cuda(), a, 0), 0.0);
  EXPECT_FALSE(cuda_unscale_and_check(cuda(), a, 0, 0.5f));
  const CudaLossSums sums = cuda_softmax_cross_entropy(cuda(), a, nullptr, 0, 4, c, 1.0);
  EXPECT_EQ(sums.loss_sum, 0.0);
  EXPECT_EQ(sums.correct, 0);
  cuda().synchronize();  // a bad launch (0 blocks, say) would surface here or in the copies
  EXPECT_EQ(get(c, sentinels.size()), sentinels);
  EXPECT_EQ(get(half, 16), std::vector<uint16_t>(16, 0x1234));

  // In bf16 an empty batch still rounds W into the layer's copy (a later forward told
  // weight_current reads it), and touches nothing else.
  const std::vector<float> w = normal_values(16, 3);
  uint16_t* w16 = put(std::vector<uint16_t>(16, 0));
  CudaDense16 operands16;
  operands16.weight = w16;
  operands16.input = half;
  cuda_dense_forward(cuda(), relu, a, put(w), nullptr, c, c, 0, 4, 4, CudaGemmInput::kBf16,
                     operands16);
  std::vector<uint16_t> expected16(16);
  for (int i = 0; i < 16; ++i) expected16[i] = to_bf16(w[i]);
  EXPECT_EQ(get(w16, 16), expected16);
  EXPECT_EQ(get(half, 16), std::vector<uint16_t>(16, 0x1234));
  EXPECT_EQ(get(c, sentinels.size()), sentinels);
}

INSTANTIATE_TEST_SUITE_P(Cuda, OpsOnDevice, ::testing::Values(DeviceKind::kCuda), device_kind_name);

}  // namespace
}  // namespace dpt
