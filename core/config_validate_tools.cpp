// The config rules of the sections read by the tools beside training: compress (`dpt compress`:
// pruning, int8 quantization, the measurements) and tune (`dpt tune`). Part of the Validator
// (core/config_validator.h), called from config_validate.cpp.
#include <string>

#include "core/config.h"
#include "core/config_internal.h"
#include "core/config_validator.h"

namespace dpt::config_internal {

void Validator::check_compress(const Node& node, const proto::CompressConfig& compress) const {
  const Node prune = child(node, "prune");
  check_float(prune, "sparsity", compress.prune().sparsity(), kDecay);
  check_int(prune, "iterations", compress.prune().iterations(), kPositive);
  check_int(prune, "finetune_steps", compress.prune().finetune_steps(), kNonNegative);
  check_int(node, "eval_samples", compress.eval_samples(), kNonNegative);
  check_quantize(child(node, "quantize"), compress.quantize());
  check_int(node, "latency_repeats", compress.latency_repeats(), kPositive);
  check_int(node, "latency_warmup", compress.latency_warmup(), kNonNegative);
  check_int(node, "throughput_batch", compress.throughput_batch(), kPositive);
  check_int(node, "throughput_repeats", compress.throughput_repeats(), kPositive);
}

void Validator::check_quantize(const Node& node, const proto::QuantizeConfig& quantize) const {
  check_int(node, "calibration_samples", quantize.calibration_samples(), kPositive);
  check_float(node, "calibration_percentile", static_cast<float>(quantize.calibration_percentile()),
              kPercentile);
}

void Validator::check_tune(const Node& node, const proto::TuneConfig& tune) const {
  check_float(node, "memory_budget_mb", static_cast<float>(tune.memory_budget_mb()), kNonNegative);
  check_float(node, "memory_fraction", static_cast<float>(tune.memory_fraction()),
              kPositiveFraction);
  check_int(node, "min_batch", tune.min_batch(), kPositive);
  if (tune.max_batch() < tune.min_batch()) {
    fail(node, "max_batch",
         "must be >= tune.min_batch = " + std::to_string(tune.min_batch()) + " (got " +
             std::to_string(tune.max_batch()) + ")");
  }
  check_int(node, "global_batch", tune.global_batch(), kNonNegative);
  check_float(node, "throughput_tolerance", static_cast<float>(tune.throughput_tolerance()),
              kDecay);
  check_int(node, "timing_steps", tune.timing_steps(), kPositive);
  check_int(node, "reference_batch", tune.reference_batch(), kNonNegative);
  check_float(node, "warmup_epochs", static_cast<float>(tune.warmup_epochs()), kNonNegative);
  check_float(node, "lr_min", tune.lr_min(), kPositive);
  check_float(node, "lr_max", tune.lr_max(), kPositive);
  if (!(tune.lr_max() > tune.lr_min())) {
    fail(node, "lr_max",
         "must be > tune.lr_min = " + float_text(tune.lr_min()) + " (got " +
             float_text(tune.lr_max()) + ")");
  }
  check_int(node, "lr_range_steps", tune.lr_range_steps(), kAtLeastTen);
}

}  // namespace dpt::config_internal
