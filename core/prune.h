// Magnitude pruning of a model's Dense layers (config: compress.prune; README "Compression").
// Unstructured: one global threshold over every Dense weight (biases are never pruned) gives a
// keep-mask over the flat parameter buffer, which fine-tuning re-applies after each update.
// Structured: whole hidden neurons are scored and the lowest removed, giving a smaller model (a
// config with fewer units and its copied weights). Library code: computes, never prints or trains.
#pragma once

#include <cstdint>
#include <vector>

#include "core/config.pb.h"
#include "core/model.h"

namespace dpt {

// A contiguous range of the flat parameter buffer: [offset, offset + count).
struct ParamRange {
  int64_t offset = 0;
  int64_t count = 0;
};

// The ranges pruning may zero: each Dense layer's weight matrix, in layer order (not biases).
std::vector<ParamRange> prunable_ranges(const Model& model);

// Which entries of a flat parameter buffer are kept (1) and which are held at zero (0).
struct ParamMask {
  std::vector<uint8_t> keep;  // one per parameter
  int64_t prunable = 0;       // entries inside the prunable ranges
  int64_t pruned = 0;         // of those, masked out
  // Sets every masked-out entry of `params` (float32, keep.size() values) to exactly 0.
  void apply(Tensor& params) const;
};

// Masks out exactly round(sparsity * prunable) entries of the `prunable` ranges of params[0, n):
// those of smallest |value|, ties going to the lower index. Entries `previous` masks out come
// first of all, so masks only grow from round to round. sparsity in [0, 1].
ParamMask magnitude_mask(const float* params, int64_t n, const std::vector<ParamRange>& prunable,
                         double sparsity, const ParamMask* previous = nullptr);

// Zhu & Gupta's cubic schedule from 0: target * (1 - (1 - round / rounds)^3) for round in
// [1, rounds]; the last round gives `target`.
double scheduled_sparsity(double target, int64_t round, int64_t rounds);

// Neurons chosen for removal: for each model.layer index of a hidden Dense layer (every Dense
// layer but the last), the sorted indices of its outputs to remove.
struct NeuronPlan {
  std::vector<int> layers;                    // config layer index of each hidden Dense layer
  std::vector<std::vector<int64_t>> neurons;  // per entry of `layers`, ascending
  int64_t hidden = 0;                         // hidden neurons before removal
  int64_t removed() const;
};

// Score of hidden neuron k of Dense layer i, whose outputs feed Dense layer j:
// sqrt(||W_i[k, :]||^2 + b_i[k]^2) * ||W_j[:, k]||, what the neuron receives times what it sends
// (the product does not change when a ReLU neuron's input is scaled up and its output down),
// divided by the mean score of layer i (so a layer feeding 10 outputs does not lose nearly all
// its neurons to one feeding 1024). Picks the `count` lowest-scoring hidden neurons over all
// hidden layers (ties: earlier layer, then lower index), skipping any that would leave its layer
// empty, so fewer may be chosen.
// `model` is float32 and built from `config` (validated, defaults resolved).
NeuronPlan choose_neurons(const proto::Config& config, const Model& model, int64_t count);

// A model with neurons removed: `config` with the hidden layers' units reduced and `params`, the
// flat parameters of that config's Model, in its order.
struct ShrunkModel {
  proto::Config config;
  std::vector<float> params;
};

// Removes the planned neurons: row k of W_i and entry k of b_i, and column k of the next Dense
// layer's W_j. The result computes what `model` computes with those rows, entries and columns
// set to zero (the neurons' whole contribution removed), up to float summation order.
ShrunkModel remove_neurons(const proto::Config& config, const Model& model, const NeuronPlan& plan);

// Parameters of `model` that are not zero, and how many could be pruned (Dense weights).
int64_t count_nonzero(const Model& model);

}  // namespace dpt
