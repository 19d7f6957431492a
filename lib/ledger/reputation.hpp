#pragma once
// Reputation from two-way ratings: how many, how many positive, and the Wilson score lower
// bound, which ranks "9 of 10 positive" below "900 of 1000 positive" as a buyer would.

#include <cstdint>

namespace segx::ledger {

/// A principal's standing in one role (as provider, or as recipient) over a window.
struct Reputation {
  uint64_t count = 0;           ///< ratings in the window
  uint64_t positive = 0;        ///< of which positive
  double percent_positive = 0;  ///< 100 * positive / count; 0 with no ratings
  double wilson_lower = 0;      ///< Wilson score interval lower bound, z = 1.96; 0 with none
};

/// Lower bound of the Wilson score interval for `positive` successes in `count` trials at
/// confidence z (1.96: 95%). 0 when count is 0.
double wilson_lower_bound(uint64_t positive, uint64_t count, double z = 1.96);

/// The reputation for these counts.
Reputation make_reputation(uint64_t positive, uint64_t count);

}  // namespace segx::ledger
