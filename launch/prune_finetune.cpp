// The prune-and-retrain rounds (see prune_finetune.h).
#include "launch/prune_finetune.h"

#include <algorithm>
#include <cmath>

#include "devices/error.h"
#include "launch/device_transfer.h"

namespace dpt {
namespace {

int64_t hidden_neurons(const proto::Config& config) {
  int64_t hidden = 0, last = 0;
  for (const proto::LayerConfig& layer : config.model().layer()) {
    if (!layer.has_dense()) continue;
    hidden += last;
    last = layer.dense().units();
  }
  return hidden;
}

// Host memory for the parameters of a model on a GPU (members destroyed values first).
struct HostStage {
  std::unique_ptr<Device> host;
  Tensor values;
};

std::vector<float> flat_copy(const Model& model) { return to_host(model.params()); }

}  // namespace

double PruneState::sparsity() const {
  if (config.compress().prune().structure() == proto::STRUCTURED) {
    return hidden_original > 0 ? 1.0 - static_cast<double>(hidden) / hidden_original : 0.0;
  }
  return mask.prunable > 0 ? static_cast<double>(mask.pruned) / mask.prunable : 0.0;
}

PruneState start_pruning(const proto::Config& config, const Model& model) {
  PruneState state;
  state.config = config;
  state.params = flat_copy(model);
  state.hidden_original = state.hidden = hidden_neurons(config);
  return state;
}

std::unique_ptr<Model> build_model(Device& device, const proto::Config& config,
                                   const std::vector<float>& params) {
  auto model = std::make_unique<Model>(device, config);
  DPT_CHECK(model->num_params() == static_cast<int64_t>(params.size()))
      << "build_model: " << params.size() << " values for a model of " << model->num_params();
  from_host(model->params(), params.data());
  return model;
}

void prune_to(PruneState& state, Device& device, double sparsity) {
  std::unique_ptr<Model> model = build_model(device, state.config, state.params);
  if (state.config.compress().prune().structure() == proto::STRUCTURED) {
    const auto target = static_cast<int64_t>(std::llround(sparsity * state.hidden_original));
    const int64_t count = std::max<int64_t>(target - (state.hidden_original - state.hidden), 0);
    const NeuronPlan plan = choose_neurons(state.config, *model, count);
    ShrunkModel shrunk = remove_neurons(state.config, *model, plan);
    state.config = std::move(shrunk.config);
    state.params = std::move(shrunk.params);
    state.hidden -= plan.removed();
    return;
  }
  const ParamMask* previous = state.mask.keep.empty() ? nullptr : &state.mask;
  ParamMask mask = magnitude_mask(state.params.data(), model->num_params(), prunable_ranges(*model),
                                  sparsity, previous);
  mask.apply(model->params());
  state.params = flat_copy(*model);
  state.mask = std::move(mask);
}

proto::Config finetune_config(const proto::Config& config, int64_t steps, int64_t round) {
  proto::Config tune = config;
  tune.set_name(config.name() + "-finetune-round-" + std::to_string(round));
  proto::TrainConfig& train = *tune.mutable_train();
  train.set_max_steps(steps);
  train.set_epochs(steps);  // every epoch has at least one step, so this is enough
  train.set_seed(config.train().seed() + static_cast<uint64_t>(round));
  train.set_eval_every_epochs(0);  // the last epoch is still evaluated
  tune.mutable_optimizer()->mutable_schedule()->set_total_steps(steps);
  proto::CheckpointConfig& checkpoint = *tune.mutable_checkpoint();
  checkpoint.set_every_steps(0);
  checkpoint.set_every_epochs(0);
  checkpoint.set_at_end(false);
  checkpoint.set_on_signal(false);
  return tune;
}

void prune_and_finetune(PruneState& state, Device& device, Communicator& comm,
                        const std::string& run_dir, TrainListener& listener,
                        const std::function<void(const PruneRound&)>& on_round) {
  const proto::PruneConfig prune = state.config.compress().prune();
  for (int64_t r = 1; r <= prune.iterations(); ++r) {
    PruneRound round;
    round.round = r;
    prune_to(state, device, scheduled_sparsity(prune.sparsity(), r, prune.iterations()));
    round.sparsity = state.sparsity();
    if (prune.finetune_steps() > 0) {
      TrainOptions options;
      options.initial_params = &state.params;
      std::vector<float> tuned;
      options.final_params = &tuned;
      const ParamMask& mask = state.mask;
      // The mask is applied on the host: through a page-locked copy when training on a GPU.
      auto stage = std::make_shared<HostStage>();
      if (device.kind() != DeviceKind::kCpu) stage->host = make_pinned_host(device);
      if (!mask.keep.empty()) {
        options.after_update = [&mask, stage](Tensor& p) {
          if (!stage->host) return mask.apply(p);
          if (!stage->values.defined()) stage->values = Tensor(*stage->host, p.shape(), p.dtype());
          p.device().copy_to_host(stage->values.raw(), p.raw(), p.bytes());
          mask.apply(stage->values);
          p.device().copy_from_host(p.raw(), stage->values.raw(), p.bytes());
        };
      }
      const TrainSummary summary =
          train(finetune_config(state.config, prune.finetune_steps(), r), device, comm,
                run_dir + "/round_" + std::to_string(r), listener, options);
      state.params = std::move(tuned);
      round.steps = summary.steps;
      round.seconds = summary.seconds;
      round.eval = summary.last_eval;
    }
    if (on_round) on_round(round);
  }
}

}  // namespace dpt
