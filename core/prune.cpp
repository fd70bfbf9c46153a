// Magnitude pruning (see prune.h): the global threshold by partial selection over (|w|, index)
// keys, and the structured neuron choice and model shrinking over each Dense layer's weight
// [units, inputs] and bias [units] views of the flat buffer. Masks and counts work on a model on
// any device (through host memory off the CPU); the neuron choice needs a CPU model.
#include "core/prune.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "devices/error.h"

namespace dpt {
namespace {

// The neuron choice reads weights in place: a model on a GPU is copied to the CPU first.
void check_on_cpu(const Model& model, const char* what) {
  DPT_CHECK_AS(ErrorKind::kConfig, model.device().kind() == DeviceKind::kCpu)
      << what << ": runs on a model on the CPU, not on " << model.device().name();
}

// A Dense layer's parameters by config layer index.
struct DenseParams {
  int layer = 0;
  Tensor weight;  // [units, inputs]
  Tensor bias;    // [units], or empty without a bias
};

std::vector<DenseParams> dense_params(const Model& model) {
  DPT_CHECK(model.dtype() == DType::kF32) << "pruning works on float32 models";
  std::vector<DenseParams> list;
  for (const auto& layer : model.layers()) {
    DenseParams dense{layer->index(), {}, {}};
    for (const LayerParam& param : layer->params()) {
      if (param.name == "weight") dense.weight = param.value;
      if (param.name == "bias") dense.bias = param.value;
    }
    if (dense.weight.defined()) list.push_back(dense);
  }
  return list;
}

int64_t offset_in(const Model& model, const Tensor& view) {
  return static_cast<const float*>(view.raw()) - static_cast<const float*>(model.params().raw());
}

double row_sum_squares(const float* row, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(row[i]) * row[i];
  return sum;
}

}  // namespace

std::vector<ParamRange> prunable_ranges(const Model& model) {
  std::vector<ParamRange> ranges;
  for (const DenseParams& dense : dense_params(model)) {
    ranges.push_back({offset_in(model, dense.weight), dense.weight.numel()});
  }
  return ranges;
}

void ParamMask::apply(Tensor& params) const {
  DPT_CHECK(params.dtype() == DType::kF32 && params.numel() == static_cast<int64_t>(keep.size()))
      << "mask of " << keep.size() << " entries applied to " << dtype_name(params.dtype())
      << shape_string(params.shape());
  const int64_t n = params.numel();
  if (params.device().kind() != DeviceKind::kCpu) {  // through host memory
    std::vector<float> host(static_cast<std::size_t>(n));
    params.copy_to_host(host.data());
    for (int64_t i = 0; i < n; ++i) host[i] = keep[i] ? host[i] : 0.0f;
    params.copy_from_host(host.data());
    return;
  }
  float* values = params.data<float>();
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) values[i] = keep[i] ? values[i] : 0.0f;
}

ParamMask magnitude_mask(const float* params, int64_t n, const std::vector<ParamRange>& prunable,
                         double sparsity, const ParamMask* previous) {
  DPT_CHECK(sparsity >= 0.0 && sparsity <= 1.0) << "sparsity " << sparsity << " is not in [0, 1]";
  DPT_CHECK(previous == nullptr || static_cast<int64_t>(previous->keep.size()) == n)
      << "previous mask has " << previous->keep.size() << " entries, want " << n;
  ParamMask mask;
  mask.keep.assign(static_cast<std::size_t>(n), 1);
  std::vector<int64_t> candidates;
  for (const ParamRange& range : prunable) {
    DPT_CHECK(range.offset >= 0 && range.count >= 0 && range.offset + range.count <= n)
        << "prunable range [" << range.offset << ", " << range.offset + range.count
        << ") is outside the " << n << " parameters";
    for (int64_t i = range.offset; i < range.offset + range.count; ++i) candidates.push_back(i);
  }
  mask.prunable = static_cast<int64_t>(candidates.size());
  const auto target = static_cast<int64_t>(std::llround(sparsity * mask.prunable));
  // Already pruned entries sort below every magnitude (key -1).
  auto key = [&](int64_t i) {
    return previous != nullptr && !previous->keep[i] ? -1.0f : std::fabs(params[i]);
  };
  auto smaller = [&](int64_t a, int64_t b) {
    const float ka = key(a), kb = key(b);
    return ka < kb || (ka == kb && a < b);
  };
  if (target > 0 && target < mask.prunable) {
    std::nth_element(candidates.begin(), candidates.begin() + target, candidates.end(), smaller);
  }
  for (int64_t c = 0; c < target; ++c) mask.keep[candidates[c]] = 0;
  mask.pruned = target;
  return mask;
}

double scheduled_sparsity(double target, int64_t round, int64_t rounds) {
  DPT_CHECK(rounds >= 1 && round >= 1 && round <= rounds)
      << "pruning round " << round << " of " << rounds;
  const double left = 1.0 - static_cast<double>(round) / static_cast<double>(rounds);
  return target * (1.0 - left * left * left);
}

int64_t NeuronPlan::removed() const {
  int64_t total = 0;
  for (const auto& list : neurons) total += static_cast<int64_t>(list.size());
  return total;
}

NeuronPlan choose_neurons(const proto::Config& config, const Model& model, int64_t count) {
  check_on_cpu(model, "choose_neurons");
  const std::vector<DenseParams> dense = dense_params(model);
  DPT_CHECK(dense.size() == static_cast<std::size_t>(std::count_if(
                                config.model().layer().begin(), config.model().layer().end(),
                                [](const proto::LayerConfig& l) { return l.has_dense(); })))
      << "choose_neurons: the model was not built from this config";
  struct Candidate {
    double score;
    std::size_t hidden;  // index into plan.layers
    int64_t neuron;
  };
  NeuronPlan plan;
  std::vector<Candidate> candidates;
  for (std::size_t h = 0; h + 1 < dense.size(); ++h) {
    const Tensor& w = dense[h].weight;
    const Tensor& next = dense[h + 1].weight;
    const int64_t units = w.dim(0), inputs = w.dim(1), next_units = next.dim(0);
    plan.layers.push_back(dense[h].layer);
    plan.neurons.emplace_back();
    plan.hidden += units;
    const std::size_t first = candidates.size();
    double sum = 0.0;
    for (int64_t k = 0; k < units; ++k) {
      double in = row_sum_squares(w.data<float>() + k * inputs, inputs);
      if (dense[h].bias.defined()) {
        const double b = dense[h].bias.data<float>()[k];
        in += b * b;
      }
      double out = 0.0;
      for (int64_t o = 0; o < next_units; ++o) {
        const double v = next.data<float>()[o * units + k];
        out += v * v;
      }
      candidates.push_back({std::sqrt(in) * std::sqrt(out), h, k});
      sum += candidates.back().score;
    }
    // Relative to the layer's mean, so that layers of different scale compete evenly.
    const double mean = sum / static_cast<double>(units);
    for (std::size_t c = first; c < candidates.size() && mean > 0; ++c) {
      candidates[c].score /= mean;
    }
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score < b.score; });
  std::vector<int64_t> left;
  for (std::size_t h = 0; h + 1 < dense.size(); ++h) left.push_back(dense[h].weight.dim(0));
  int64_t chosen = 0;
  for (const Candidate& c : candidates) {
    if (chosen >= count) break;
    if (left[c.hidden] <= 1) continue;
    --left[c.hidden];
    plan.neurons[c.hidden].push_back(c.neuron);
    ++chosen;
  }
  for (auto& list : plan.neurons) std::sort(list.begin(), list.end());
  return plan;
}

ShrunkModel remove_neurons(const proto::Config& config, const Model& model,
                           const NeuronPlan& plan) {
  check_on_cpu(model, "remove_neurons");
  const std::vector<DenseParams> dense = dense_params(model);
  DPT_CHECK(plan.layers.size() + 1 == dense.size())
      << "remove_neurons: the plan has " << plan.layers.size() << " hidden layers, the model "
      << dense.size() - 1;
  // keep[d][k]: output k of dense layer d stays (the output layer keeps all).
  std::vector<std::vector<uint8_t>> keep;
  ShrunkModel shrunk{config, {}};
  for (std::size_t d = 0; d < dense.size(); ++d) {
    keep.emplace_back(static_cast<std::size_t>(dense[d].weight.dim(0)), 1);
    if (d + 1 == dense.size()) break;
    DPT_CHECK(plan.layers[d] == dense[d].layer) << "remove_neurons: plan does not match the model";
    for (int64_t k : plan.neurons[d]) {
      DPT_CHECK(k >= 0 && k < dense[d].weight.dim(0)) << "remove_neurons: neuron " << k;
      keep[d][k] = 0;
    }
    const auto units = std::count(keep[d].begin(), keep[d].end(), 1);
    DPT_CHECK(units > 0) << "remove_neurons: model.layer[" << dense[d].layer << "] would be empty";
    shrunk.config.mutable_model()->mutable_layer(dense[d].layer)->mutable_dense()->set_units(units);
  }
  // Flat order of the shrunk model: layer order, weight then bias (as Model lays them out).
  for (std::size_t d = 0; d < dense.size(); ++d) {
    const Tensor& w = dense[d].weight;
    const int64_t units = w.dim(0), inputs = w.dim(1);
    for (int64_t k = 0; k < units; ++k) {
      if (!keep[d][k]) continue;
      for (int64_t i = 0; i < inputs; ++i) {
        if (d == 0 || keep[d - 1][i]) shrunk.params.push_back(w.data<float>()[k * inputs + i]);
      }
    }
    for (int64_t k = 0; dense[d].bias.defined() && k < units; ++k) {
      if (keep[d][k]) shrunk.params.push_back(dense[d].bias.data<float>()[k]);
    }
  }
  return shrunk;
}

int64_t count_nonzero(const Model& model) {
  DPT_CHECK(model.dtype() == DType::kF32) << "count_nonzero works on float32 models";
  if (model.device().kind() != DeviceKind::kCpu) {
    std::vector<float> host(static_cast<std::size_t>(model.num_params()));
    model.params().copy_to_host(host.data());
    return std::count_if(host.begin(), host.end(), [](float v) { return v != 0.0f; });
  }
  const float* values = static_cast<const float*>(model.params().raw());
  return std::count_if(values, values + model.num_params(), [](float v) { return v != 0.0f; });
}

}  // namespace dpt
