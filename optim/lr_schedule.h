// Learning-rate schedules as one pure function: lr_at(schedule, base_lr, step, total_steps).
// No state, so resuming at step s gives exactly the lr the uninterrupted run had at s.
//
// With W = warmup_steps, f0 = warmup_start_factor, T = the run length (below), all in double:
//   lr_at = max(0, base_lr * warmup(step) * factor(step))
//   warmup(step) = f0 + (1 - f0) * step / W   for step < W, else 1
//   factor, by schedule kind (steps count from 0 of the run, like PyTorch's schedulers, so the
//   step-based kinds multiply warmup rather than start after it):
//     none, constant: 1
//     step:           gamma^floor(step / step_size)
//     multistep:      gamma^(number of milestones m with m <= step)
//     exponential:    gamma^step
//   The decaying kinds use t, the fraction of the post-warmup span [W, T] done:
//   t = 0 for step < W; t = 1 for step >= W when T <= W (decay already over, no division by
//   zero); else t = min(1, (step - W) / (T - W)), so the final value holds after T. With
//   final = final_lr_fraction:
//     cosine:         final + (1 - final) * 0.5 * (1 + cos(pi * t))
//     polynomial:     final + (1 - final) * (1 - t)^power
//     wsd:            D = llround(decay_fraction * (T - W)) (0 when T <= W), S = T - D;
//                     t' = 0 for step < max(S, W); else 1 when D == 0, else min(1, (step - S) / D);
//                     final + (1 - final) * (1 - t')
#pragma once

#include <cstdint>

#include "core/config.pb.h"

namespace dpt {

// The learning rate for optimizer step `step` (0-based) of a run of `total_steps` steps, for the
// schedule and peak `base_lr` in the config. Linear warmup, when configured, multiplies the first
// warmup_steps; decaying schedules (cosine, polynomial, wsd) run from the end of warmup to
// total_steps and hold their final value after it. Never negative.
// The run length T is schedule.total_steps() when > 0, else the `total_steps` argument (the
// trainer passes train.epochs x steps per epoch). Throws kConfig naming the field
// (optimizer.lr, optimizer.schedule....) for a value outside its documented range, kInternal for
// step < 0.
double lr_at(const proto::LrScheduleConfig& schedule, double base_lr, int64_t step,
             int64_t total_steps);

}  // namespace dpt
