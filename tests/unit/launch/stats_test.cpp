// Nearest-rank percentiles on hand-made lists.
#include "launch/stats.h"

#include <gtest/gtest.h>

#include "devices/error.h"

namespace dpt {
namespace {

TEST(Percentile, NearestRank) {
  const std::vector<double> values = {5, 1, 4, 2, 3};
  EXPECT_EQ(percentile(values, 0.0), 1);
  EXPECT_EQ(percentile(values, 0.5), 3);   // ceil(2.5) = 3rd smallest
  EXPECT_EQ(percentile(values, 0.99), 5);  // ceil(4.95) = 5th
  EXPECT_EQ(percentile(values, 0.2), 1);   // ceil(1.0) = 1st
  EXPECT_EQ(percentile(values, 1.0), 5);
  std::vector<double> hundred;
  for (int i = 100; i >= 1; --i) hundred.push_back(i);
  EXPECT_EQ(percentile(hundred, 0.99), 99);
  EXPECT_EQ(percentile(hundred, 0.5), 50);
  EXPECT_THROW(percentile({}, 0.5), Error);
  EXPECT_THROW(percentile(values, 1.5), Error);
}

}  // namespace
}  // namespace dpt
