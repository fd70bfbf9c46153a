// The config rules of the optimizer section: the learning rate, SGD, Adam and AdamW, gradient
// clipping, and the lr schedule (warmup and the one decay rule set). Part of the Validator
// (core/config_validator.h), called from config_validate.cpp.
#include <string>

#include "core/config.h"
#include "core/config_internal.h"
#include "core/config_validator.h"

namespace dpt::config_internal {

void Validator::check_optimizer(const Node& node, const proto::OptimizerConfig& optimizer) const {
  check_float(node, "lr", optimizer.lr(), kPositive);
  if (optimizer.has_sgd()) {
    const Node sgd = child(node, "sgd");
    check_float(sgd, "momentum", optimizer.sgd().momentum(), kDecay);
    if (optimizer.sgd().nesterov() && !(optimizer.sgd().momentum() > 0)) {
      fail(sgd, "nesterov",
           "requires momentum > 0 (got momentum " + float_text(optimizer.sgd().momentum()) + ")");
    }
    check_float(sgd, "weight_decay", optimizer.sgd().weight_decay(), kNonNegative);
  }
  if (optimizer.has_adam()) check_adam(child(node, "adam"), optimizer.adam());
  if (optimizer.has_adamw()) check_adam(child(node, "adamw"), optimizer.adamw());
  check_schedule(child(node, "schedule"), optimizer.schedule());
  check_float(node, "clip_grad_norm", optimizer.clip_grad_norm(), kNonNegative);
}

void Validator::check_adam(const Node& node, const proto::AdamConfig& adam) const {
  check_float(node, "beta1", adam.beta1(), kDecay);
  check_float(node, "beta2", adam.beta2(), kDecay);
  check_float(node, "eps", adam.eps(), kPositive);
  check_float(node, "weight_decay", adam.weight_decay(), kNonNegative);
}

void Validator::check_schedule(const Node& node, const proto::LrScheduleConfig& schedule) const {
  check_int(node, "warmup_steps", schedule.warmup_steps(), kNonNegative);
  check_float(node, "warmup_start_factor", schedule.warmup_start_factor(), kFraction);
  check_int(node, "total_steps", schedule.total_steps(), kNonNegative);
  if (schedule.has_step()) {
    const Node step = child(node, "step");
    require(step, "step_size");
    check_int(step, "step_size", schedule.step().step_size(), kPositive);
    check_float(step, "gamma", schedule.step().gamma(), kFactor);
  } else if (schedule.has_multistep()) {
    const Node multistep = child(node, "multistep");
    const auto& milestones = schedule.multistep().milestones();
    for (int i = 0; i < milestones.size(); ++i) {
      if (i == 0 && milestones[0] <= 0) {
        fail(multistep, "milestones", "must be > 0 (got " + std::to_string(milestones[0]) + ")", 0);
      }
      if (i > 0 && milestones[i] <= milestones[i - 1]) {
        fail(multistep, "milestones",
             "must be strictly increasing (got " + std::to_string(milestones[i]) + " after " +
                 std::to_string(milestones[i - 1]) + ")",
             i);
      }
    }
    check_float(multistep, "gamma", schedule.multistep().gamma(), kFactor);
  } else if (schedule.has_exponential()) {
    const Node exponential = child(node, "exponential");
    require(exponential, "gamma");
    check_float(exponential, "gamma", schedule.exponential().gamma(), kFactor);
  } else if (schedule.has_cosine()) {
    check_float(child(node, "cosine"), "final_lr_fraction", schedule.cosine().final_lr_fraction(),
                kFraction);
  } else if (schedule.has_polynomial()) {
    const Node polynomial = child(node, "polynomial");
    check_float(polynomial, "power", schedule.polynomial().power(), kPositive);
    check_float(polynomial, "final_lr_fraction", schedule.polynomial().final_lr_fraction(),
                kFraction);
  } else if (schedule.has_wsd()) {
    const Node wsd = child(node, "wsd");
    check_float(wsd, "decay_fraction", schedule.wsd().decay_fraction(), kFactor);
    check_float(wsd, "final_lr_fraction", schedule.wsd().final_lr_fraction(), kFraction);
  }
}

}  // namespace dpt::config_internal
