// evaluate_int8: batches of the dataset through Int8Model::forward and compute_loss.
#include "launch/int8_eval.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "core/loss.h"

namespace dpt {

EvalResult evaluate_int8(Int8Model& model, Device& device, const Dataset& dataset,
                         const Normalization& normalization, proto::LossKind loss,
                         int64_t batch_size) {
  batch_size = std::min(batch_size, std::max<int64_t>(dataset.size, 1));
  Tensor inputs(device, {batch_size, model.input_size()}, DType::kF32);
  std::vector<int32_t> labels(static_cast<std::size_t>(batch_size));
  std::vector<int64_t> indices(static_cast<std::size_t>(batch_size));
  double loss_sum = 0.0, correct = 0.0;
  for (int64_t start = 0; start < dataset.size; start += batch_size) {
    const int64_t n = std::min(batch_size, dataset.size - start);
    std::iota(indices.begin(), indices.begin() + n, start);
    gather_batch(dataset, indices.data(), n, normalization, inputs, labels.data());
    const LossResult batch =
        compute_loss(loss, model.forward(inputs.rows(n)), labels.data(), nullptr, 0.0);
    loss_sum += batch.loss_sum;
    correct += static_cast<double>(batch.correct);
  }
  EvalResult result;
  result.samples = dataset.size;
  if (dataset.size > 0) {
    result.loss = loss_sum / static_cast<double>(dataset.size);
    result.accuracy = correct / static_cast<double>(dataset.size);
  }
  return result;
}

}  // namespace dpt
