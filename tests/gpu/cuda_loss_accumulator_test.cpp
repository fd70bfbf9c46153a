// LossAccumulator on a GPU: softmax cross-entropy batches stay on the device until total(),
// which equals bit for bit the in-order sum of compute_loss's results on the same GPU (the same
// kernel, summed as the trainer summed them before), with the same gradients; a bad label is
// reported at total(), naming its batch and sample. Skips without a GPU.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/loss_accumulator.h"
#include "devices/error.h"
#include "tests/gpu/ops_harness.h"

namespace dpt {
namespace {

TEST_P(OpsOnDevice, LossAccumulatorDefersAndSumsAsComputeLoss) {
  const int64_t cols = 10;
  const std::vector<int64_t> rows = {64, 64, 17};
  LossAccumulator accumulator(proto::SOFTMAX_CROSS_ENTROPY);
  double expected_loss = 0.0;
  int64_t expected_correct = 0;
  std::vector<Tensor> grads, expected_grads;
  for (std::size_t b = 0; b < rows.size(); ++b) {
    const std::vector<float> logits_host = normal_values(rows[b] * cols, 70 + b, 3.0);
    std::vector<int32_t> labels_host(static_cast<std::size_t>(rows[b]));
    for (int64_t r = 0; r < rows[b]; ++r) labels_host[r] = static_cast<int32_t>((r * 3 + b) % cols);
    Tensor logits(cuda(), {rows[b], cols}, DType::kF32), labels(cuda(), {rows[b]}, DType::kI32);
    logits.copy_from_host(logits_host.data());
    labels.copy_from_host(labels_host.data());
    grads.emplace_back(cuda(), Shape{rows[b], cols}, DType::kF32);
    expected_grads.emplace_back(cuda(), Shape{rows[b], cols}, DType::kF32);
    const LossResult one = compute_loss(proto::SOFTMAX_CROSS_ENTROPY, logits, labels,
                                        &expected_grads.back(), 1.0 / 145);
    expected_loss += one.loss_sum;
    expected_correct += one.correct;
    accumulator.add(logits, labels, &grads.back(), 1.0 / 145);
  }
  const LossResult total = accumulator.total();
  EXPECT_EQ(total.loss_sum, expected_loss);
  EXPECT_EQ(total.correct, expected_correct);
  EXPECT_GT(total.loss_sum, 0.0);
  for (std::size_t b = 0; b < rows.size(); ++b) {
    std::vector<float> got(static_cast<std::size_t>(grads[b].numel()));
    std::vector<float> want(got.size());
    grads[b].copy_to_host(got.data());
    expected_grads[b].copy_to_host(want.data());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << b;
  }
}

TEST_P(OpsOnDevice, LossAccumulatorReportsABadLabelAtTotal) {
  const int64_t rows = 8, cols = 5;
  const std::vector<float> logits_host = normal_values(rows * cols, 80);
  std::vector<int32_t> good(rows, 1), bad(rows, 2);
  bad[6] = static_cast<int32_t>(cols);
  Tensor logits(cuda(), {rows, cols}, DType::kF32);
  Tensor good_labels(cuda(), {rows}, DType::kI32), bad_labels(cuda(), {rows}, DType::kI32);
  logits.copy_from_host(logits_host.data());
  good_labels.copy_from_host(good.data());
  bad_labels.copy_from_host(bad.data());
  LossAccumulator accumulator(proto::SOFTMAX_CROSS_ENTROPY);
  accumulator.add(logits, good_labels, nullptr, 1.0);
  accumulator.add(logits, bad_labels, nullptr, 1.0);  // queued: not checked yet
  try {
    accumulator.total();
    ADD_FAILURE() << "a label outside [0, C) was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kInternal);
    const std::string what = error.what();
    EXPECT_NE(what.find("sample 6 of batch 1"), std::string::npos) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(Cuda, OpsOnDevice, ::testing::Values(DeviceKind::kCuda), device_kind_name);

}  // namespace
}  // namespace dpt
