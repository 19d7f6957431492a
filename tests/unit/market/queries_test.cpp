// What each role may see (issue 14, problem 7): rating comments and gateway reasons, the
// members of open-outcry bids, and leases and groups that are not the viewer's.
#include "market_fixture.hpp"

namespace segx::market {
namespace {

// One finished lease of alice (paid) and one of dave (declined): settlement rated both.
class QueriesTest : public MarketTest {
 protected:
  void SetUp() override {
    MarketTest::SetUp();
    const uint64_t a = make_lot(lot_spec());
    const uint64_t d = make_lot(lot_spec());
    ASSERT_TRUE(bid(alice, a, 900, "tok_visa"));
    ASSERT_TRUE(bid(dave, d, 900, "tok_insufficient_funds"));
    at(t0 + 601 * s);
    at(t0 + 3600 * s);
    at(t0 + 7200 * s);
    alice_lease_ = market_->leases(alice).at(0).id;
    dave_lease_ = market_->leases(dave).at(0).id;
    ASSERT_TRUE(market_->rate_provider(alice, alice_lease_, true, 5, "as promised"));
  }
  // A lot open after SetUp's leases have ended, and alice's group on it with carol.
  uint64_t later_lot(Format f = Format::second_price) {
    LotSpec spec = lot_spec(f);
    spec.closes_ns = t0 + 8000 * s;
    spec.start_ns = t0 + 9000 * s;
    return make_lot(spec);
  }
  uint64_t alices_group(uint64_t lot, Money price) {
    GroupSpec g;
    g.lot = lot;
    g.price = price;
    g.members = {{"alice", {own_ip(alice)}}, {"carol", {own_ip(carol)}}};
    return market_->create_group(alice, g).value().id;
  }
  uint64_t alice_lease_ = 0, dave_lease_ = 0;
};

TEST_F(QueriesTest, ARecipientRatingsWordsAreForItsTwoPartiesOnly) {
  const auto seen_by = [&](const Actor& viewer) {
    return market_->ratings_of(viewer, "dave").at(0);
  };
  const RatingView stranger = seen_by(bob);
  EXPECT_FALSE(stranger.full);
  EXPECT_FALSE(stranger.rating.positive) << "the verdict is public";
  EXPECT_EQ(stranger.rating.comment, "") << "the gateway's reason is not";
  EXPECT_EQ(stranger.rating.lease, 0u) << "nor which lease";
  for (const Actor& party : {dave, provider, admin}) {
    const RatingView v = seen_by(party);
    EXPECT_TRUE(v.full) << party.id;
    EXPECT_EQ(v.rating.comment, "charge declined: insufficient funds") << party.id;
    EXPECT_EQ(v.rating.lease, dave_lease_);
  }
  // A provider rating is a review: its words stay public, its lease does not.
  const RatingView review = market_->ratings_of(bob, "acme").at(0);
  EXPECT_EQ(review.rating.comment, "as promised");
  EXPECT_EQ(review.rating.lease, 0u);
  // The reputation counts are public.
  EXPECT_EQ(market_->reputation("dave").as_recipient.count, 1u);
}

TEST_F(QueriesTest, ALeaseOrGroupTheViewerMayNotSeeIsNotFoundLikeAMissingOne) {
  const auto missing = market_->lease(bob, 9999);
  const auto hidden = market_->lease(bob, alice_lease_);
  ASSERT_FALSE(missing);
  ASSERT_FALSE(hidden);
  EXPECT_EQ(missing.error_kind(), ErrorKind::not_found);
  EXPECT_EQ(hidden.error_kind(), ErrorKind::not_found);
  EXPECT_EQ(hidden.error(), "no lease " + std::to_string(alice_lease_));
  EXPECT_TRUE(market_->ratings_for_lease(bob, alice_lease_).empty());
  EXPECT_TRUE(market_->charges(bob, alice_lease_).empty());

  const uint64_t group = alices_group(later_lot(), 300);
  const auto g_hidden = market_->group(bob, group);
  ASSERT_FALSE(g_hidden);
  EXPECT_EQ(g_hidden.error_kind(), ErrorKind::not_found);
  EXPECT_EQ(g_hidden.error(), "no group " + std::to_string(group));
  EXPECT_TRUE(market_->group(carol, group));
  EXPECT_TRUE(market_->group(provider, group));
  const Status pledge = market_->pledge(bob, group, 100, "tok_visa");
  EXPECT_EQ(pledge.error_kind(), ErrorKind::not_found);
}

TEST_F(QueriesTest, AnOpenOutcryLotShowsPricesNotOtherBiddersMembers) {
  const uint64_t lot = later_lot(Format::ascending);
  ASSERT_TRUE(market_->place_bid(alice, {lot, 300, 1, {member("phone:+4930123456")}, "tok_visa"}));
  ASSERT_TRUE(bid(bob, lot, 400));
  const auto seen_by_carol = market_->bids(carol, lot).value();
  ASSERT_EQ(seen_by_carol.size(), 2u) << "open outcry: every bid";
  for (const BidView& b : seen_by_carol) {
    EXPECT_FALSE(b.members_shown);
    EXPECT_TRUE(b.bid.members.empty());
    EXPECT_GT(b.bid.price, 0);
  }
  const auto seen_by_alice = market_->bids(alice, lot).value();
  EXPECT_EQ(format_member(seen_by_alice[0].bid.members.at(0)), "phone:+4930123456");
  EXPECT_TRUE(seen_by_alice[1].bid.members.empty());
  const auto seen_by_provider = market_->bids(provider, lot).value();
  for (const BidView& b : seen_by_provider)
    EXPECT_EQ(b.bid.members.size(), 1u);
}

// A group's price is its ceiling, not its bid: rivals on an open-outcry lot see what it bids
// (its pledges, per block), never how far it would go.
TEST_F(QueriesTest, AGroupsCeilingIsNotShownToRivals) {
  const uint64_t lot = later_lot(Format::ascending);
  const uint64_t group = alices_group(lot, 100000);
  ASSERT_TRUE(market_->pledge(carol, group, 125, "tok_visa"));
  const auto price_seen_by = [&](const Actor& who) {
    const std::vector<BidView> seen = market_->bids(who, lot).value();
    for (const BidView& b : seen)
      if (b.bid.id == group) return b.bid.price;
    return Money{-1};
  };
  EXPECT_EQ(price_seen_by(bob), 125);
  EXPECT_EQ(price_seen_by(alice), 100000) << "its organiser";
  EXPECT_EQ(price_seen_by(provider), 100000) << "the lot's provider";
}

}  // namespace
}  // namespace segx::market
