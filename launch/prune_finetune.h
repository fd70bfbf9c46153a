// The pruning schedule of `dpt compress` (config compress.prune): rounds of magnitude pruning
// (core/prune.h) to a sparsity that follows the cubic schedule, each followed by fine-tuning with
// the real trainer (launch/trainer.h) starting from the pruned weights. UNSTRUCTURED keeps one mask
// that only grows and is re-applied after every optimizer step; STRUCTURED shrinks the model each
// round. Runs on every rank under mpirun (deterministic pruning, collective training); prints
// nothing (training progress goes to the listener).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "core/config.pb.h"
#include "core/model.h"
#include "core/prune.h"
#include "launch/trainer.h"

namespace dpt {

// A model being pruned: its architecture, parameters and what has been pruned so far.
struct PruneState {
  proto::Config config;         // the architecture (units shrink with STRUCTURED)
  std::vector<float> params;    // flat parameters of config's Model
  ParamMask mask;               // UNSTRUCTURED: entries held at zero; empty before any pruning
  int64_t hidden_original = 0;  // hidden neurons of the unpruned model
  int64_t hidden = 0;           // hidden neurons now
  // Fraction pruned: of the Dense weights (UNSTRUCTURED) or of the original hidden neurons.
  double sparsity() const;
};

// The state of `model` (float32, built from `config`), nothing pruned yet.
PruneState start_pruning(const proto::Config& config, const Model& model);

// Prunes `state` further, to `sparsity` (in [0, 1)) of its structure's unit, by magnitude.
void prune_to(PruneState& state, Device& device, double sparsity);

// Builds config's Model on `device` with `params` copied in.
std::unique_ptr<Model> build_model(Device& device, const proto::Config& config,
                                   const std::vector<float>& params);

// What one prune-and-retrain round did.
struct PruneRound {
  int64_t round = 0;               // 1-based
  double sparsity = 0.0;           // reached by this round's pruning
  int64_t steps = 0;               // fine-tuning steps
  double seconds = 0.0;            // fine-tuning time
  std::optional<EvalResult> eval;  // the trainer's test evaluation after fine-tuning, if any
};

// The config a round's fine-tuning trains: `config` with train.max_steps and
// optimizer.schedule.total_steps = steps, enough epochs for them, no checkpoints, the training
// seed offset by the round (each round sees other batches) and the name suffixed.
proto::Config finetune_config(const proto::Config& config, int64_t steps, int64_t round);

// Runs compress.prune's rounds on `state` (every rank, the same state): prune to the scheduled
// sparsity, then fine-tune compress.prune.finetune_steps steps in run_dir/round_<r> (rank 0
// writes it). Calls on_round after each round. Throws what train() throws.
void prune_and_finetune(PruneState& state, Device& device, Communicator& comm,
                        const std::string& run_dir, TrainListener& listener,
                        const std::function<void(const PruneRound&)>& on_round);

}  // namespace dpt
