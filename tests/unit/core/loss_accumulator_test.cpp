// LossAccumulator on the CPU: its total is bit for bit the sum, in add() order, of what
// compute_loss gives per batch (the training step and evaluate() sum that way), its gradients
// are compute_loss's, and a bad label throws at add() as compute_loss does. (The deferred GPU
// path is tests/gpu/cuda_loss_accumulator_test.cpp.)
#include "core/loss_accumulator.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/random.h"
#include "devices/cpu_device.h"
#include "devices/error.h"

namespace dpt {
namespace {

// Batch `b` of `rows` samples over `cols` classes: normal logits and labels in [0, cols).
void fill_batch(int b, Tensor& logits, Tensor& labels) {
  RandomStream random(11, static_cast<uint64_t>(b));
  for (int64_t i = 0; i < logits.numel(); ++i) {
    logits.data<float>()[i] = static_cast<float>(3.0 * random.normal());
  }
  for (int64_t r = 0; r < labels.numel(); ++r) {
    labels.data<int32_t>()[r] = static_cast<int32_t>((r * 7 + b) % logits.dim(1));
  }
}

TEST(LossAccumulatorTest, TotalIsTheInOrderSumOfComputeLossBitForBit) {
  CpuDevice cpu(CpuDeviceOptions{1});
  const int64_t cols = 10;
  const std::vector<int64_t> rows = {16, 7, 16, 1};  // micro-batches, the last ones short
  for (proto::LossKind kind : {proto::SOFTMAX_CROSS_ENTROPY, proto::MEAN_SQUARED_ERROR}) {
    LossAccumulator accumulator(kind);
    double expected_loss = 0.0;
    int64_t expected_correct = 0;
    for (std::size_t b = 0; b < rows.size(); ++b) {
      Tensor logits(cpu, {rows[b], cols}, DType::kF32);
      Tensor labels(cpu, {rows[b]}, DType::kI32);
      fill_batch(static_cast<int>(b), logits, labels);
      Tensor grad(cpu, {rows[b], cols}, DType::kF32),
          expected_grad(cpu, {rows[b], cols}, DType::kF32);
      const LossResult one = compute_loss(kind, logits, labels, &expected_grad, 0.25);
      expected_loss += one.loss_sum;
      expected_correct += one.correct;
      accumulator.add(logits, labels, &grad, 0.25);
      EXPECT_EQ(std::memcmp(grad.raw(), expected_grad.raw(), grad.bytes()), 0)
          << proto::LossKind_Name(kind) << " batch " << b;
    }
    const LossResult total = accumulator.total();
    EXPECT_EQ(total.loss_sum, expected_loss) << proto::LossKind_Name(kind);
    EXPECT_EQ(total.correct, expected_correct) << proto::LossKind_Name(kind);
    EXPECT_GT(total.loss_sum, 0.0);
    // total() reads; asking again gives the same.
    EXPECT_EQ(accumulator.total().loss_sum, expected_loss);
  }
}

TEST(LossAccumulatorTest, NothingAddedIsZero) {
  LossAccumulator accumulator(proto::SOFTMAX_CROSS_ENTROPY);
  const LossResult total = accumulator.total();
  EXPECT_EQ(total.loss_sum, 0.0);
  EXPECT_EQ(total.correct, 0);
}

TEST(LossAccumulatorTest, ABadLabelThrowsAtAddOnTheCpu) {
  CpuDevice cpu(CpuDeviceOptions{1});
  Tensor logits(cpu, {4, 3}, DType::kF32);
  Tensor labels(cpu, {4}, DType::kI32);
  fill_batch(0, logits, labels);
  labels.data<int32_t>()[2] = 3;
  LossAccumulator accumulator(proto::SOFTMAX_CROSS_ENTROPY);
  EXPECT_THROW(accumulator.add(logits, labels, nullptr, 1.0), Error);
}

}  // namespace
}  // namespace dpt
