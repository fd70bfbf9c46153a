// Learning-rate schedules as one pure function: lr_at(schedule, base_lr, step, total_steps).
// No state, so resuming at step s gives exactly the lr the uninterrupted run had at s.
#pragma once

#include <cstdint>

#include "core/config.pb.h"

namespace dpt {

// The learning rate for optimizer step `step` (0-based) of a run of `total_steps` steps, for the
// schedule and peak `base_lr` in the config. Linear warmup, when configured, multiplies the first
// warmup_steps; decaying schedules (cosine, polynomial, wsd) run from the end of warmup to
// total_steps and hold their final value after it. Never negative.
double lr_at(const proto::LrScheduleConfig& schedule, double base_lr, int64_t step,
             int64_t total_steps);

}  // namespace dpt
