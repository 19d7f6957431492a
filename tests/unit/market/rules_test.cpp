// The market's rules as an adversarial recipient meets them: amounts and times that would
// wrap, pledges that would game an ascending lot, and members that are someone else's.
// Each case is one of the problems issue 14 reproduced on the market before its rewrite.
#include "market/rules.hpp"

#include "market_fixture.hpp"

namespace segx::market {
namespace {

using ::testing::HasSubstr;

TEST(CheckedArithmetic, RefusesWhatAMoneyCannotHold) {
  EXPECT_EQ(money_mul(5, 7), 35);
  EXPECT_EQ(money_mul(max_money, 1), max_money);
  EXPECT_FALSE(money_mul(max_money, 2));
  EXPECT_FALSE(money_mul(3'689'348'814'741'910'324, 5));  // 2^64 + 4
  EXPECT_FALSE(money_mul(-1, 1));
  EXPECT_EQ(money_add(max_money - 1, 1), max_money);
  EXPECT_FALSE(money_add(max_money, 1));
  EXPECT_FALSE(money_add(-5, 1));
  EXPECT_EQ(time_add(1, 2), 3);
  EXPECT_FALSE(time_add(INT64_MAX, 1));
  EXPECT_FALSE(time_add(INT64_MIN, -1));
}

TEST(Holdings, ARecipientHoldsItsEntryDevicesPhonesAndWhatIsGrantedInside) {
  Holdings h(test_subscribers());
  EXPECT_TRUE(h.check_held("alice", {member("user:alice")}));
  EXPECT_TRUE(h.check_held("alice", {member("device:tablet"), member("phone:+4930123456")}));
  EXPECT_TRUE(h.check_held("alice", {ip("10.1.1.0/24"), ip("10.1.1.128/25"), ip("10.1.1.9")}));
  EXPECT_TRUE(h.check_held("alice", {member("mac:02:00:00:00:0a:01"), member("vlan:100")}));
  // Someone else's, wider than the grant, or nobody's: forbidden, naming the member.
  for (const char* m :
       {"user:bob", "device:tablet", "ip:10.1.0.0/23", "ip:0.0.0.0/1", "ip:128.0.0.0/1",
        "mac:02:00:00:00:0a:02", "vlan:101", "phone:+4930123456"}) {
    const std::string who =
        std::string(m) == "device:tablet" || std::string(m) == "phone:+4930123456" ? "bob"
                                                                                   : "alice";
    Status st = h.check_held(who, {member(m)});
    ASSERT_FALSE(st) << who << " " << m;
    EXPECT_EQ(st.error_kind(), ErrorKind::forbidden) << m;
    EXPECT_THAT(st.error(), HasSubstr(std::string("member ") + m)) << st.error();
  }
  EXPECT_FALSE(h.check_held("nobody", {ip("10.1.1.5")}));
}

TEST(Holdings, ExpandsMembersAsTheDataPlaneMetersThem) {
  Holdings h(test_subscribers());
  std::vector<std::string> labels;
  for (const Ident& i : h.expand({member("user:alice")}))
    labels.push_back(i.label());
  EXPECT_THAT(labels, ::testing::ElementsAre("ip 10.9.0.7/32", "ip 10.1.1.77/32",
                                             "mac 02:00:00:00:0a:01", "vlan 100"));
  ASSERT_EQ(h.expand({member("phone:+4930123456")}).size(), 1u);
  EXPECT_EQ(h.expand({member("phone:+4930123456")})[0].label(), "ip 10.9.0.7/32");
  EXPECT_TRUE(
      overlaps(h.expand({ip("10.1.1.0/24")})[0], h.expand({member("device:alice-laptop")})[0]));
  EXPECT_FALSE(overlaps(h.expand({ip("10.1.2.0/24")})[0], h.expand({ip("10.1.1.0/24")})[0]));
}

// Issue 14, problem 1: price x quantity wrapped to 4 minor units; INT64_MAX/2 x 3 to nothing.
TEST_F(MarketTest, TotalsThatWouldWrapAreRefusedAtTheDoor) {
  const uint64_t lot = make_lot(lot_spec(Format::uniform, 5));
  for (Money price : {Money{3'689'348'814'741'910'324}, INT64_MAX / 2}) {
    for (uint32_t q : {3u, 5u}) {
      auto r = bid(alice, lot, price, "tok_visa", q);
      ASSERT_FALSE(r) << price << " x " << q;
      EXPECT_EQ(r.error_kind(), ErrorKind::invalid);
      EXPECT_THAT(r.error(), HasSubstr("more than the largest amount"));
    }
  }
  auto above = bid(alice, lot, max_money + 1);
  ASSERT_FALSE(above);
  EXPECT_EQ(above.error_kind(), ErrorKind::invalid);
  EXPECT_TRUE(bid(alice, lot, max_money / 5, "tok_visa", 5));
  // Nothing of the refusals reached the journal.
  EXPECT_EQ(market_->stats().bids, 1u);
}

// Problem 1: three pledges of INT64_MAX/2 showed "pledged": -4611686018427387907.
TEST_F(MarketTest, PledgesThatWouldOverflowTheGroupsTotalAreRefused) {
  const uint64_t lot = make_lot(lot_spec());
  GroupSpec g;
  g.lot = lot;
  g.price = 1000;
  g.members = {{"alice", {own_ip(alice)}}, {"bob", {own_ip(bob)}}, {"carol", {own_ip(carol)}}};
  auto group = market_->create_group(alice, g);
  ASSERT_TRUE(group) << group.error();
  const uint64_t id = group.value().id;
  ASSERT_TRUE(market_->pledge(alice, id, max_money, "tok_visa"));
  Status second = market_->pledge(bob, id, max_money, "tok_visa");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error_kind(), ErrorKind::invalid);
  EXPECT_THAT(second.error(), HasSubstr("largest amount"));
  EXPECT_FALSE(market_->pledge(carol, id, 1, "tok_visa"));
  EXPECT_EQ(market_->group(admin, id).value().pledged(), max_money);
}

// Problem 1: closes_in 9223372036854775807 gave a closing time in 1734.
TEST_F(MarketTest, TimesThatWouldWrapAreRefused) {
  LotSpec a = lot_spec(Format::ascending);
  a.closes_ns = INT64_MAX - 10;
  a.soft_close_ns = 60 * s;
  a.max_extension_ns = 120 * s;
  a.start_ns = INT64_MAX;
  auto r = market_->create_lot(provider, a);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error_kind(), ErrorKind::invalid);
  LotSpec b = lot_spec();
  b.start_ns = INT64_MAX - s;
  b.duration_ns = 2 * s;
  EXPECT_FALSE(market_->create_lot(provider, b));
  LotSpec c = lot_spec(Format::uniform, 100);
  c.max_rate = UINT64_MAX / 50;
  EXPECT_FALSE(market_->create_lot(provider, c)) << "lease rates are the lot's times its blocks";
}

// Problem 2: a pledge of 10^12 took the lead, every other bid was refused, the pledge was
// withdrawn and the lot closed awarded at 0.
TEST_F(MarketTest, TheLeadingGroupCannotWithdrawOrLowerItsPledges) {
  LotSpec spec = lot_spec(Format::ascending);
  spec.increment = 10;
  const uint64_t lot = make_lot(spec);
  GroupSpec g;
  g.lot = lot;
  g.price = 1'000'000'000'000;
  g.members = {{"bob", {own_ip(bob)}}, {"carol", {own_ip(carol)}}};
  auto group = market_->create_group(bob, g);
  ASSERT_TRUE(group) << group.error();
  const uint64_t id = group.value().id;
  ASSERT_TRUE(market_->pledge(bob, id, 1'000'000'000'000, "tok_visa"));
  EXPECT_EQ(market_->lot(lot).value().lot.leader, id);
  auto blocked = bid(alice, lot, 500);
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error_kind(), ErrorKind::rule);
  Status withdraw = market_->withdraw_pledge(bob, id);
  ASSERT_FALSE(withdraw);
  EXPECT_EQ(withdraw.error_kind(), ErrorKind::rule);
  EXPECT_THAT(withdraw.error(), HasSubstr("cannot be lowered or withdrawn"));
  EXPECT_FALSE(market_->pledge(bob, id, 1, "tok_visa")) << "lowering is withdrawing in part";
  at(t0 + 601 * s);
  const auto leases = market_->leases(admin);
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0].unit_price, 1'000'000'000'000) << "the leader pays its own price";
  const auto charges = market_->charges(admin, leases[0].id);
  ASSERT_EQ(charges.size(), 1u);
  EXPECT_EQ(charges[0].amount, 1'000'000'000'000);
}

// Problem 2: a pledge 0.7 s before the close raised the group over the leader without
// extending the soft close.
TEST_F(MarketTest, APledgeThatRaisesAGroupIsABidOnAnAscendingLot) {
  LotSpec spec = lot_spec(Format::ascending);
  spec.increment = 10;
  spec.soft_close_ns = 60 * s;
  spec.max_extension_ns = 300 * s;
  const uint64_t lot = make_lot(spec);
  GroupSpec g;
  g.lot = lot;
  g.price = 5000;
  g.members = {{"bob", {own_ip(bob)}}, {"carol", {own_ip(carol)}}};
  const uint64_t id = market_->create_group(bob, g).value().id;
  ASSERT_TRUE(market_->pledge(bob, id, 100, "tok_visa"));
  ASSERT_TRUE(bid(alice, lot, 300));
  // Raising the group to 305 is a bid below the leader plus the increment.
  Status low = market_->pledge(carol, id, 205, "tok_visa");
  ASSERT_FALSE(low);
  EXPECT_EQ(low.error_kind(), ErrorKind::rule);
  EXPECT_THAT(low.error(), HasSubstr("at least 310"));
  clock_.now = spec.closes_ns - 700'000'000;  // 0.7 s before the close
  ASSERT_TRUE(market_->pledge(carol, id, 250, "tok_visa"));
  const Lot after = market_->lot(lot).value().lot;
  EXPECT_EQ(after.leader, id);
  EXPECT_EQ(after.leading_price, 350);
  EXPECT_EQ(after.closes_ns, clock_.now + 60 * s) << "the soft close is extended";
  // Leading, it may raise its own price, but not lower it.
  clock_.now += 30 * s;
  ASSERT_TRUE(market_->pledge(bob, id, 200, "tok_visa"));
  EXPECT_EQ(market_->lot(lot).value().lot.leading_price, 450);
  EXPECT_EQ(market_->lot(lot).value().lot.closes_ns, clock_.now + 60 * s);
  EXPECT_FALSE(market_->pledge(bob, id, 150, "tok_visa"));
}

// Problem 3: bob bid naming alice's device and phone and 0.0.0.0/1 + 128.0.0.0/1; his block
// metered everyone's traffic and alice's paid leases never activated.
TEST_F(MarketTest, ABidNamesOnlyItsBiddersIdentifiers) {
  const uint64_t lot = make_lot(lot_spec());
  for (const char* m :
       {"device:alice-laptop", "phone:+4930123456", "ip:0.0.0.0/1", "ip:128.0.0.0/1", "user:alice",
        "ip:10.1.1.77/32", "mac:02:00:00:00:0a:01", "vlan:100"}) {
    auto r = market_->place_bid(bob, {lot, 900, 1, {member(m)}, "tok_visa"});
    ASSERT_FALSE(r) << m;
    EXPECT_EQ(r.error_kind(), ErrorKind::forbidden) << m;
  }
  // Through a group too: each member's identifiers are checked against that member.
  GroupSpec g;
  g.lot = lot;
  g.price = 900;
  g.members = {{"bob", {own_ip(bob)}}, {"carol", {member("device:alice-laptop")}}};
  auto group = market_->create_group(bob, g);
  ASSERT_FALSE(group);
  EXPECT_EQ(group.error_kind(), ErrorKind::forbidden);
  EXPECT_THAT(group.error(), HasSubstr("not held by carol"));
  EXPECT_TRUE(
      market_->place_bid(alice, {lot, 900, 1, {member("device:alice-laptop")}, "tok_visa"}));
  EXPECT_EQ(market_->stats().bids, 1u);
}

// Problem 3, second half: no two leases at the same time share an identifier, so an
// activation never fails for an overlap the market could see.
TEST_F(MarketTest, LeasesAtTheSameTimeNeverShareAnIdentifier) {
  const uint64_t first = make_lot(lot_spec());
  ASSERT_TRUE(
      market_->place_bid(alice, {first, 900, 1, {member("device:alice-laptop")}, "tok_visa"}));
  at(t0 + 601 * s);
  ASSERT_EQ(market_->leases(alice).size(), 1u);
  // A second lot over the same hours: alice cannot name what her lease already holds, in
  // any form (the device's address inside her prefix, its MAC, the whole subscriber).
  LotSpec later = lot_spec();
  later.closes_ns = t0 + 1200 * s;
  const uint64_t second = make_lot(later);
  for (const char* m :
       {"ip:10.1.1.0/24", "ip:10.1.1.77/32", "mac:02:00:00:00:0a:01", "user:alice"}) {
    auto r = market_->place_bid(alice, {second, 900, 1, {member(m)}, "tok_visa"});
    ASSERT_FALSE(r) << m;
    EXPECT_EQ(r.error_kind(), ErrorKind::rule) << m;
    EXPECT_THAT(r.error(), HasSubstr("never share an identifier"));
  }
  ASSERT_TRUE(market_->place_bid(alice, {second, 900, 1, {ip("10.1.1.128/25")}, "tok_visa"}));
  // After the first lease's time, the same identifiers are free again.
  LotSpec next_day = lot_spec();
  next_day.closes_ns = t0 + 1200 * s;
  next_day.start_ns = t0 + 7200 * s;
  const uint64_t third = make_lot(next_day);
  EXPECT_TRUE(market_->place_bid(alice, {third, 900, 1, {ip("10.1.1.0/24")}, "tok_visa"}));
}

// Problem 3 at the close: two winners of one uniform lot whose members overlap cannot both
// get leases; the lower one is set aside with its reason and the auction decided without it.
TEST_F(MarketTest, AConflictingWinnerLosesAtTheCloseWithAReason) {
  const uint64_t lot = make_lot(lot_spec(Format::uniform, 2));
  // alice's tablet is in her user entry; she bids twice through a group and alone.
  GroupSpec g;
  g.lot = lot;
  g.price = 700;
  g.members = {{"alice", {member("user:alice")}}, {"bob", {own_ip(bob)}}};
  const uint64_t group = market_->create_group(bob, g).value().id;
  ASSERT_TRUE(market_->pledge(bob, group, 700, "tok_visa"));
  ASSERT_TRUE(market_->pledge(alice, group, 0, "")) << "alice joins, sponsored";
  ASSERT_TRUE(market_->place_bid(alice, {lot, 600, 1, {member("device:tablet")}, "tok_visa"}));
  ASSERT_TRUE(bid(carol, lot, 300));
  ASSERT_TRUE(bid(dave, lot, 200));
  at(t0 + 601 * s);
  const Lot closed = market_->lot(lot).value().lot;
  ASSERT_EQ(closed.excluded.size(), 1u);
  const auto bids = market_->bids(admin, lot).value();
  const auto loser = std::find_if(bids.begin(), bids.end(),
                                  [](const BidView& b) { return b.bid.bidder == "alice"; });
  ASSERT_NE(loser, bids.end());
  EXPECT_EQ(loser->status, "lost");
  EXPECT_THAT(loser->reason, HasSubstr("ip 10.9.0.7/32 overlaps"));
  // The group and carol win; dave's 200 sets the price.
  EXPECT_EQ(closed.clearing_price, 200);
  std::set<std::string> winners;
  for (const Lease& l : market_->leases(admin))
    winners.insert(l.bidder);
  EXPECT_EQ(winners, (std::set<std::string>{"bob", "carol"}));
  // Every lease activates: the data plane never sees an overlap.
  at(t0 + 3600 * s);
  EXPECT_EQ(activator_.active.size(), 2u);
  EXPECT_EQ(activator_.attempts, 2);
}

}  // namespace
}  // namespace segx::market
