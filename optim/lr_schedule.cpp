// lr_at(): the learning-rate schedules as one pure function of the step (formulas in
// optim/lr_schedule.h). Checks the fields it divides by or takes powers of, so that a schedule
// built without the config loader still fails with a message naming the field.
#include "optim/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "devices/error.h"

namespace dpt {
namespace {

constexpr double kPi = 3.14159265358979323846;

void check_fraction(double value, const char* field) {
  DPT_CHECK_AS(ErrorKind::kConfig, value >= 0 && value <= 1)
      << "optimizer.schedule." << field << ": must be in [0, 1] (got " << value << ")";
}

void check_gamma(double gamma, const char* field) {
  DPT_CHECK_AS(ErrorKind::kConfig, gamma > 0 && gamma <= 1)
      << "optimizer.schedule." << field << ".gamma: must be in (0, 1] (got " << gamma << ")";
}

// Fraction of the post-warmup span [warmup, total] done at `step`, in [0, 1]; 0 during warmup
// and 1 from the end of warmup on when the span is empty.
double decay_progress(int64_t step, int64_t warmup, int64_t total) {
  if (step < warmup) return 0;
  if (total <= warmup) return 1;
  return std::min(1.0, static_cast<double>(step - warmup) / static_cast<double>(total - warmup));
}

// WSD's decay progress: 0 before the last round(decay_fraction * span) steps before total, then
// linear to 1 at total.
double wsd_progress(int64_t step, int64_t warmup, int64_t total, double decay_fraction) {
  if (step < warmup) return 0;
  if (total <= warmup) return 1;
  const int64_t decay_steps =
      static_cast<int64_t>(std::llround(decay_fraction * static_cast<double>(total - warmup)));
  const int64_t decay_start = total - decay_steps;
  if (step < decay_start) return 0;
  if (decay_steps == 0) return 1;
  return std::min(1.0, static_cast<double>(step - decay_start) / static_cast<double>(decay_steps));
}

// The schedule's multiplier of base_lr at `step`, before warmup.
double schedule_factor(const proto::LrScheduleConfig& s, int64_t step, int64_t total) {
  const int64_t warmup = s.warmup_steps();
  switch (s.kind_case()) {
    case proto::LrScheduleConfig::KIND_NOT_SET:
    case proto::LrScheduleConfig::kConstant:
      return 1;
    case proto::LrScheduleConfig::kStep: {
      DPT_CHECK_AS(ErrorKind::kConfig, s.step().step_size() > 0)
          << "optimizer.schedule.step.step_size: must be > 0 (got " << s.step().step_size() << ")";
      check_gamma(s.step().gamma(), "step");
      return std::pow(static_cast<double>(s.step().gamma()),
                      static_cast<double>(step / s.step().step_size()));
    }
    case proto::LrScheduleConfig::kMultistep: {
      check_gamma(s.multistep().gamma(), "multistep");
      const auto& milestones = s.multistep().milestones();
      int64_t passed = 0;
      for (int i = 0; i < milestones.size(); ++i) {
        const int64_t previous = i == 0 ? 0 : milestones[i - 1];
        DPT_CHECK_AS(ErrorKind::kConfig, milestones[i] > previous)
            << "optimizer.schedule.multistep.milestones[" << i << "]: must be > " << previous
            << (i == 0 ? "" : " (the previous milestone)") << " (got " << milestones[i] << ")";
        passed += milestones[i] <= step ? 1 : 0;
      }
      return std::pow(static_cast<double>(s.multistep().gamma()), static_cast<double>(passed));
    }
    case proto::LrScheduleConfig::kExponential:
      check_gamma(s.exponential().gamma(), "exponential");
      return std::pow(static_cast<double>(s.exponential().gamma()), static_cast<double>(step));
    case proto::LrScheduleConfig::kCosine: {
      const double final_fraction = s.cosine().final_lr_fraction();
      check_fraction(final_fraction, "cosine.final_lr_fraction");
      const double t = decay_progress(step, warmup, total);
      return final_fraction + (1 - final_fraction) * 0.5 * (1 + std::cos(kPi * t));
    }
    case proto::LrScheduleConfig::kPolynomial: {
      const double power = s.polynomial().power();
      const double final_fraction = s.polynomial().final_lr_fraction();
      DPT_CHECK_AS(ErrorKind::kConfig, power > 0 && std::isfinite(power))
          << "optimizer.schedule.polynomial.power: must be > 0 (got " << power << ")";
      check_fraction(final_fraction, "polynomial.final_lr_fraction");
      const double t = decay_progress(step, warmup, total);
      return final_fraction + (1 - final_fraction) * std::pow(1 - t, power);
    }
    case proto::LrScheduleConfig::kWsd: {
      const double decay_fraction = s.wsd().decay_fraction();
      const double final_fraction = s.wsd().final_lr_fraction();
      DPT_CHECK_AS(ErrorKind::kConfig, decay_fraction > 0 && decay_fraction <= 1)
          << "optimizer.schedule.wsd.decay_fraction: must be in (0, 1] (got " << decay_fraction
          << ")";
      check_fraction(final_fraction, "wsd.final_lr_fraction");
      const double t = wsd_progress(step, warmup, total, decay_fraction);
      return final_fraction + (1 - final_fraction) * (1 - t);
    }
  }
  DPT_THROW(ErrorKind::kInternal) << "lr_at: unknown schedule kind case " << s.kind_case();
}

}  // namespace

double lr_at(const proto::LrScheduleConfig& schedule, double base_lr, int64_t step,
             int64_t total_steps) {
  DPT_CHECK(step >= 0) << "lr_at: step = " << step << " is negative";
  DPT_CHECK_AS(ErrorKind::kConfig, base_lr > 0 && std::isfinite(base_lr))
      << "optimizer.lr: must be > 0 (got " << base_lr << ")";
  DPT_CHECK_AS(ErrorKind::kConfig, schedule.warmup_steps() >= 0)
      << "optimizer.schedule.warmup_steps: must be >= 0 (got " << schedule.warmup_steps() << ")";
  check_fraction(schedule.warmup_start_factor(), "warmup_start_factor");
  DPT_CHECK_AS(ErrorKind::kConfig, schedule.total_steps() >= 0)
      << "optimizer.schedule.total_steps: must be >= 0 (got " << schedule.total_steps() << ")";
  const int64_t total = schedule.total_steps() > 0 ? schedule.total_steps() : total_steps;
  const int64_t warmup = schedule.warmup_steps();
  double warmup_factor = 1;
  if (step < warmup) {
    const double start = schedule.warmup_start_factor();
    warmup_factor = start + (1 - start) * static_cast<double>(step) / static_cast<double>(warmup);
  }
  return std::max(0.0, base_lr * schedule_factor(schedule, step, total) * warmup_factor);
}

}  // namespace dpt
