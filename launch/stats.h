// Order statistics of timing samples, shared by the benchmarks.
#pragma once

#include <vector>

namespace dpt {

// The q-quantile (q in [0, 1]) of `values` by nearest rank: the ceil(q n)-th smallest (the
// smallest for q = 0). Throws kInternal when `values` is empty or q is outside [0, 1].
double percentile(std::vector<double> values, double q);

}  // namespace dpt
