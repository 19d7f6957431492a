#include "market/auction.hpp"

#include <tbb/parallel_sort.h>

#include <algorithm>

namespace segx::market {

namespace {
// The ranking: price down, then earlier bid first. Bid numbers are unique, so it is total.
bool ranks_before(const Candidate& a, const Candidate& b) {
  return a.price != b.price ? a.price > b.price : a.bid < b.bid;
}
}  // namespace

Determination determine(Format format, uint32_t quantity, Money reserve,
                        std::vector<Candidate> candidates) {
  Determination d;
  if (candidates.empty()) {
    d.outcome = Outcome::no_bids;
    return d;
  }
  std::erase_if(candidates,
                [&](const Candidate& c) { return c.price < reserve || c.quantity == 0; });
  if (candidates.empty()) {
    d.outcome = Outcome::reserve_not_met;
    return d;
  }
  if (format == Format::ascending) quantity = 1;
  // Only the first quantity+1 candidates in rank order can matter (each wants at least one
  // block): select them in linear time when that is a small part of the set.
  const size_t needed = std::min<size_t>(candidates.size(), size_t{quantity} + 1);
  if (needed * 8 < candidates.size()) {
    std::nth_element(candidates.begin(), candidates.begin() + static_cast<ptrdiff_t>(needed),
                     candidates.end(), ranks_before);
    candidates.resize(needed);
    std::sort(candidates.begin(), candidates.end(), ranks_before);
  } else {
    tbb::parallel_sort(candidates.begin(), candidates.end(), ranks_before);
  }

  if (format == Format::ascending) {
    const Candidate& top = candidates.front();
    d.outcome = Outcome::awarded;
    d.clearing_price = top.price;
    d.awards.push_back({top.bid, 1, top.price});
    return d;
  }

  uint32_t left = quantity;
  std::optional<Money> highest_losing;
  for (const Candidate& c : candidates) {
    if (left == 0) {
      highest_losing = c.price;
      break;
    }
    const uint32_t units = std::min(left, c.quantity);
    d.awards.push_back({c.bid, units, 0});
    left -= units;
    // A bid filled in part loses its remaining units: the first of those is the highest
    // losing unit.
    if (units < c.quantity) {
      highest_losing = c.price;
      break;
    }
  }
  d.clearing_price = std::max(reserve, highest_losing.value_or(reserve));
  for (Award& a : d.awards)
    a.unit_price = d.clearing_price;
  d.outcome = left == 0 ? Outcome::awarded : Outcome::partially_awarded;
  return d;
}

}  // namespace segx::market
