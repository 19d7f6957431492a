// Reputation math on known counts.
#include "ledger/reputation.hpp"

#include <gtest/gtest.h>

namespace segx::ledger {
namespace {

TEST(Reputation, WilsonLowerBoundOnKnownCounts) {
  // Values from the closed form with z = 1.96, computed independently.
  EXPECT_NEAR(wilson_lower_bound(9, 10), 0.59584, 1e-5);
  EXPECT_NEAR(wilson_lower_bound(900, 1000), 0.87985, 1e-5);
  EXPECT_NEAR(wilson_lower_bound(5, 5), 0.56551, 1e-5);
  EXPECT_NEAR(wilson_lower_bound(1, 1), 0.20654, 1e-5);
  EXPECT_DOUBLE_EQ(wilson_lower_bound(0, 5), 0.0);
  EXPECT_DOUBLE_EQ(wilson_lower_bound(0, 0), 0.0);
}

TEST(Reputation, MoreEvidenceRanksHigherAtTheSameShare) {
  EXPECT_LT(wilson_lower_bound(9, 10), wilson_lower_bound(90, 100));
  EXPECT_LT(wilson_lower_bound(90, 100), wilson_lower_bound(900, 1000));
}

TEST(Reputation, CountsAndPercent) {
  const Reputation r = make_reputation(3, 4);
  EXPECT_EQ(r.count, 4u);
  EXPECT_EQ(r.positive, 3u);
  EXPECT_DOUBLE_EQ(r.percent_positive, 75.0);
  EXPECT_NEAR(r.wilson_lower, wilson_lower_bound(3, 4), 1e-12);
  const Reputation none = make_reputation(0, 0);
  EXPECT_EQ(none.count, 0u);
  EXPECT_DOUBLE_EQ(none.percent_positive, 0.0);
  EXPECT_DOUBLE_EQ(none.wilson_lower, 0.0);
}

}  // namespace
}  // namespace segx::ledger
