#include "ledger/reputation.hpp"

#include <algorithm>
#include <cmath>

namespace segx::ledger {

double wilson_lower_bound(uint64_t positive, uint64_t count, double z) {
  if (count == 0) return 0;
  const double n = static_cast<double>(count);
  const double p = static_cast<double>(positive) / n;
  const double z2 = z * z;
  const double centre = p + z2 / (2 * n);
  const double margin = z * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n));
  // Clamped: at zero positives the closed form gives 0 give or take a rounding error.
  return std::max(0.0, (centre - margin) / (1 + z2 / n));
}

Reputation make_reputation(uint64_t positive, uint64_t count) {
  Reputation r;
  r.count = count;
  r.positive = positive;
  if (count > 0)
    r.percent_positive = 100.0 * static_cast<double>(positive) / static_cast<double>(count);
  r.wilson_lower = wilson_lower_bound(positive, count);
  return r;
}

}  // namespace segx::ledger
