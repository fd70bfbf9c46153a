// Central-difference gradient checking (after Caffe's GradientChecker), in double precision.
// check_gradient perturbs each of n values at x by +-eps, evaluates the scalar objective, and
// compares (f(x+eps) - f(x-eps)) / 2eps with the analytic gradient using the tolerance
// tol * max(|analytic|, |numeric|, 1). Callers keep inputs away from kinks (ReLU at 0).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

namespace dpt::testing {

inline void check_gradient(const std::function<double()>& objective, double* x, int64_t n,
                           const double* analytic, const std::string& what, double eps = 1e-5,
                           double tol = 1e-6) {
  int failures = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double saved = x[i];
    x[i] = saved + eps;
    const double plus = objective();
    x[i] = saved - eps;
    const double minus = objective();
    x[i] = saved;
    const double numeric = (plus - minus) / (2 * eps);
    const double scale = std::max({std::fabs(analytic[i]), std::fabs(numeric), 1.0});
    if (std::fabs(analytic[i] - numeric) > tol * scale && ++failures <= 5) {
      ADD_FAILURE() << what << "[" << i << "]: analytic " << analytic[i] << " vs numeric "
                    << numeric;
    }
  }
  EXPECT_EQ(failures, 0) << what << ": " << failures << " of " << n << " gradients differ";
}

}  // namespace dpt::testing
