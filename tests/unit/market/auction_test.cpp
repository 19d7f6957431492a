// Winner determination against hand-computed outcomes.
#include "market/auction.hpp"

#include <gtest/gtest.h>

#include <random>

namespace segx::market {
namespace {

TEST(Auction, SecondPriceWinnerPaysTheSecondHighestBid) {
  // Bids 1..3 at 500, 900, 700: bid 2 wins and pays 700.
  const Determination d =
      determine(Format::second_price, 1, 100, {{1, 500, 1}, {2, 900, 1}, {3, 700, 1}});
  EXPECT_EQ(d.outcome, Outcome::awarded);
  ASSERT_EQ(d.awards.size(), 1u);
  EXPECT_EQ(d.awards[0].bid, 2u);
  EXPECT_EQ(d.awards[0].units, 1u);
  EXPECT_EQ(d.awards[0].unit_price, 700);
  EXPECT_EQ(d.clearing_price, 700);
}

TEST(Auction, SecondPriceWithOneBidPaysTheReserve) {
  const Determination d = determine(Format::second_price, 1, 250, {{4, 900, 1}});
  EXPECT_EQ(d.outcome, Outcome::awarded);
  ASSERT_EQ(d.awards.size(), 1u);
  EXPECT_EQ(d.awards[0].unit_price, 250);
}

TEST(Auction, SecondPriceIsNeverBelowTheReserve) {
  // The second bid is under the reserve, so it cannot set the price.
  const Determination d = determine(Format::second_price, 1, 300, {{1, 900, 1}, {2, 200, 1}});
  ASSERT_EQ(d.awards.size(), 1u);
  EXPECT_EQ(d.awards[0].bid, 1u);
  EXPECT_EQ(d.awards[0].unit_price, 300);
}

TEST(Auction, TiesGoToTheEarlierBid) {
  // Bids 7 and 5 both at 800: bid 5 came first (lower ledger number) and wins; the tied
  // loser sets the price.
  const Determination d =
      determine(Format::second_price, 1, 0, {{7, 800, 1}, {5, 800, 1}, {6, 100, 1}});
  ASSERT_EQ(d.awards.size(), 1u);
  EXPECT_EQ(d.awards[0].bid, 5u);
  EXPECT_EQ(d.awards[0].unit_price, 800);
}

TEST(Auction, NoBids) {
  const Determination d = determine(Format::uniform, 3, 0, {});
  EXPECT_EQ(d.outcome, Outcome::no_bids);
  EXPECT_TRUE(d.awards.empty());
}

TEST(Auction, ReserveNotMet) {
  const Determination d = determine(Format::second_price, 1, 1000, {{1, 999, 1}, {2, 500, 1}});
  EXPECT_EQ(d.outcome, Outcome::reserve_not_met);
  EXPECT_TRUE(d.awards.empty());
  EXPECT_EQ(d.clearing_price, 0);
}

TEST(Auction, UniformPriceKWinnersPayTheKPlusFirstPrice) {
  // Three blocks, five single-block bids: 900, 800, 700 win and pay the fourth, 600.
  const Determination d = determine(
      Format::uniform, 3, 100, {{1, 600, 1}, {2, 900, 1}, {3, 500, 1}, {4, 800, 1}, {5, 700, 1}});
  EXPECT_EQ(d.outcome, Outcome::awarded);
  ASSERT_EQ(d.awards.size(), 3u);
  EXPECT_EQ(d.awards[0].bid, 2u);
  EXPECT_EQ(d.awards[1].bid, 4u);
  EXPECT_EQ(d.awards[2].bid, 5u);
  for (const Award& a : d.awards)
    EXPECT_EQ(a.unit_price, 600);
}

TEST(Auction, UniformPriceWithMoreBlocksThanBidsSellsWhatIsBidAtTheReserve) {
  const Determination d = determine(Format::uniform, 5, 150, {{1, 600, 1}, {2, 400, 2}});
  EXPECT_EQ(d.outcome, Outcome::partially_awarded);
  ASSERT_EQ(d.awards.size(), 2u);
  EXPECT_EQ(d.awards[0].units, 1u);
  EXPECT_EQ(d.awards[1].units, 2u);
  for (const Award& a : d.awards)
    EXPECT_EQ(a.unit_price, 150);
}

TEST(Auction, UniformPriceFillsABidInPartAndItsLosingUnitSetsThePrice) {
  // Three blocks: bid 1 wants 2 at 900, bid 2 wants 2 at 800, bid 3 wants 1 at 700.
  // Bid 1 gets 2, bid 2 gets 1; bid 2's second unit is the highest that lost: price 800.
  const Determination d = determine(Format::uniform, 3, 0, {{1, 900, 2}, {2, 800, 2}, {3, 700, 1}});
  EXPECT_EQ(d.outcome, Outcome::awarded);
  ASSERT_EQ(d.awards.size(), 2u);
  EXPECT_EQ(d.awards[0].bid, 1u);
  EXPECT_EQ(d.awards[0].units, 2u);
  EXPECT_EQ(d.awards[1].bid, 2u);
  EXPECT_EQ(d.awards[1].units, 1u);
  EXPECT_EQ(d.clearing_price, 800);
}

TEST(Auction, UniformPriceExactlyKUnitsPayTheReserve) {
  const Determination d = determine(Format::uniform, 2, 50, {{1, 300, 1}, {2, 200, 1}});
  EXPECT_EQ(d.outcome, Outcome::awarded);
  EXPECT_EQ(d.clearing_price, 50);
}

TEST(Auction, AscendingWinnerPaysItsOwnBid) {
  const Determination d =
      determine(Format::ascending, 1, 100, {{1, 300, 1}, {2, 450, 1}, {3, 400, 1}});
  EXPECT_EQ(d.outcome, Outcome::awarded);
  ASSERT_EQ(d.awards.size(), 1u);
  EXPECT_EQ(d.awards[0].bid, 2u);
  EXPECT_EQ(d.awards[0].unit_price, 450);
}

// The linear-time selection and the full parallel sort must agree.
TEST(Auction, LargeBidSetsGiveTheSameResultAsAFullRanking) {
  std::mt19937_64 rng(42);
  std::vector<Candidate> bids;
  for (uint64_t i = 1; i <= 200000; ++i)
    bids.push_back({i, static_cast<Money>(rng() % 100000), static_cast<uint32_t>(1 + rng() % 3)});
  for (uint32_t k : {1u, 10u, 100000u}) {
    const Determination d = determine(Format::uniform, k, 10, bids);
    std::vector<Candidate> ranked = bids;
    std::erase_if(ranked, [](const Candidate& c) { return c.price < 10; });
    std::sort(ranked.begin(), ranked.end(), [](const Candidate& a, const Candidate& b) {
      return a.price != b.price ? a.price > b.price : a.bid < b.bid;
    });
    uint32_t left = k;
    size_t i = 0;
    for (; i < ranked.size() && left > 0; ++i) {
      ASSERT_LT(i, d.awards.size());
      EXPECT_EQ(d.awards[i].bid, ranked[i].bid) << "k=" << k << " rank " << i;
      left -= std::min(left, ranked[i].quantity);
    }
    EXPECT_EQ(d.awards.size(), i) << "k=" << k;
  }
}

}  // namespace
}  // namespace segx::market
