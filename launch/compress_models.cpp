// The models `dpt compress` measures, as rows of its table (see compress_models.h).
#include "launch/compress_models.h"

#include <fmt/core.h>

#include <vector>

#include "launch/int8_eval.h"
#include "launch/trainer.h"

namespace dpt {

Dataset first_samples(const Dataset& dataset, int64_t n) {
  if (n <= 0 || n >= dataset.size) return dataset;
  Dataset head = dataset;
  head.size = n;
  head.labels.resize(static_cast<std::size_t>(n));
  const auto values = static_cast<std::size_t>(n * dataset.feature_size);
  if (!head.inputs_u8.empty()) head.inputs_u8.resize(values);
  if (!head.inputs_f32.empty()) head.inputs_f32.resize(values);
  return head;
}

std::string pruned_text(const PruneState& state) {
  if (state.config.compress().prune().structure() == proto::STRUCTURED) {
    return fmt::format("{:.1f}% of neurons", 100.0 * state.sparsity());
  }
  return fmt::format("{:.1f}% of weights", 100.0 * state.sparsity());
}

ModelUnderTest float_model(const std::string& method, Model& model, const std::string& file,
                           const std::string& pruned, const Dataset& test,
                           const proto::Config& config, const Tensor& inputs) {
  ModelUnderTest m;
  m.method = method;
  m.file = file;
  m.pruned = pruned;
  m.params = model.num_params();
  m.nonzero = count_nonzero(model);
  m.accuracy = [&model, &test, config] {
    return evaluate(model, test, normalization_from(config.data()), config.model().loss(),
                    config.train().eval_batch_size())
        .accuracy;
  };
  m.forward = [&model, inputs](int64_t batch) { model.forward(inputs.rows(batch), Pass{}); };
  return m;
}

ModelUnderTest int8_model(const std::string& method, Int8Model& model, Device& device,
                          const Model& source, const std::string& file, const std::string& pruned,
                          const Dataset& test, const proto::Config& config, const Tensor& inputs) {
  ModelUnderTest m;
  m.method = method;
  m.file = file;
  m.pruned = pruned;
  m.params = source.num_params();
  m.nonzero = count_nonzero(source);
  m.accuracy = [&model, &device, &test, config] {
    return evaluate_int8(model, device, test, normalization_from(config.data()),
                         config.model().loss(), config.train().eval_batch_size())
        .accuracy;
  };
  m.forward = [&model, inputs](int64_t batch) { model.forward(inputs.rows(batch)); };
  return m;
}

Tensor bench_inputs(Device& device, const proto::Config& config, const Dataset& test) {
  const int64_t batch = config.compress().throughput_batch();
  Tensor inputs(device, {batch, config.model().input_size()}, DType::kF32);
  std::vector<int64_t> indices(static_cast<std::size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) indices[static_cast<std::size_t>(i)] = i % test.size;
  std::vector<int32_t> labels(indices.size());
  gather_batch(test, indices.data(), batch, normalization_from(config.data()), inputs,
               labels.data());
  return inputs;
}

InferenceBenchOptions bench_options(const proto::CompressConfig& compress) {
  InferenceBenchOptions options;
  options.warmup = compress.latency_warmup();
  options.latency_repeats = compress.latency_repeats();
  options.throughput_batch = compress.throughput_batch();
  options.throughput_repeats = compress.throughput_repeats();
  return options;
}

}  // namespace dpt
