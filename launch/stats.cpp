// launch/stats.h.
#include "launch/stats.h"

#include <algorithm>
#include <cmath>

#include "devices/error.h"

namespace dpt {

double percentile(std::vector<double> values, double q) {
  DPT_CHECK(!values.empty() && q >= 0.0 && q <= 1.0)
      << "percentile " << q << " of " << values.size() << " values";
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size())));
  return values[std::max<std::size_t>(rank, 1) - 1];
}

}  // namespace dpt
