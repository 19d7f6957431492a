#pragma once
// Winner determination: which bids win how many blocks, and at what price. Pure functions
// of the bids, so the same bids always give the same result (docs/market.md, "Formats").

#include <cstdint>
#include <vector>

#include "market/types.hpp"

namespace segx::market {

/// A bid as the auction sees it at close.
struct Candidate {
  uint64_t bid = 0;  ///< its id: lower is earlier, and wins a tie
  Money price = 0;   ///< per block (a group's: capped by its pledges)
  uint32_t quantity = 1;
};

/// Blocks won by one bid.
struct Award {
  uint64_t bid = 0;
  uint32_t units = 0;
  Money unit_price = 0;  ///< what it pays per block
};

/// The result of an auction.
struct Determination {
  Outcome outcome = Outcome::no_bids;
  Money clearing_price = 0;   ///< per block; 0 without awards
  std::vector<Award> awards;  ///< in rank order
};

/// Decides a lot of `quantity` blocks. Ranking: higher price first; at equal prices the
/// earlier bid (lower number). Bids below `reserve` cannot win.
///  - second_price, uniform: units go down the ranking (a bid may be filled in part); every
///    winner pays the price of the highest unit that did not win, or the reserve if that is
///    higher or no unit lost (so second_price on one block is Vickrey's second price);
///  - ascending: the top bid wins one block and pays its own price.
/// Outcomes: no_bids, reserve_not_met (bids, none at or above the reserve), awarded,
/// partially_awarded (fewer eligible units than blocks). Large bid sets are ranked with a
/// partial selection or TBB's parallel sort, so a million bids take milliseconds.
Determination determine(Format format, uint32_t quantity, Money reserve,
                        std::vector<Candidate> candidates);

}  // namespace segx::market
