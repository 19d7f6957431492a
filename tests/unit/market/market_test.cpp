// The market's rules end to end on a real SQLite ledger, with the clock in the test's hands:
// auctions, groups, settlement, activation, ratings, and a restart that loses nothing.
#include "market/market.hpp"

#include "market_fixture.hpp"

namespace segx::market {
namespace {

TEST_F(MarketTest, SecondPriceLotFromListingToRatedLease) {
  const uint64_t lot = make_lot(lot_spec());
  auto listing = market_->lots();
  ASSERT_EQ(listing.size(), 1u);
  EXPECT_EQ(listing[0].lot.provider, "acme");
  EXPECT_EQ(listing[0].provider_reputation.count, 0u);

  ASSERT_TRUE(bid(alice, lot, 900));
  ASSERT_TRUE(bid(bob, lot, 700));
  ASSERT_TRUE(bid(carol, lot, 50));  // below the reserve: accepted, cannot win

  // Sealed: bob sees only his own bid; the provider sees all with reputations.
  EXPECT_EQ(market_->bids(bob, lot).value().size(), 1u);
  EXPECT_EQ(market_->bids(provider, lot).value().size(), 3u);

  at(t0 + 601 * s);
  const LotView closed = market_->lot(lot).value();
  EXPECT_EQ(closed.lot.state, LotState::closed);
  EXPECT_EQ(closed.lot.outcome, Outcome::awarded);
  EXPECT_EQ(closed.lot.clearing_price, 700);
  auto leases = market_->leases(alice);
  ASSERT_EQ(leases.size(), 1u);
  const Lease& l = leases[0];
  EXPECT_EQ(l.bidder, "alice");
  EXPECT_EQ(l.unit_price, 700);
  EXPECT_TRUE(market_->leases(bob).empty());

  // Settlement charged alice 700 and rated her as a recipient who paid.
  auto charges = market_->charges(alice, l.id);
  ASSERT_EQ(charges.size(), 1u);
  EXPECT_EQ(charges[0].amount, 700);
  EXPECT_EQ(charges[0].result, ChargeResult::accepted);
  // Unique across ledgers: the market's own random id is part of it.
  ASSERT_EQ(market_->market_id().size(), 16u);
  EXPECT_EQ(charges[0].idempotency_key,
            "segx-" + market_->market_id() + "-lease-" + std::to_string(l.id) + "-alice");
  EXPECT_EQ(market_->reputation("alice").as_recipient.count, 1u);
  EXPECT_EQ(market_->reputation("alice").as_recipient.positive, 1u);

  // Not yet started: nothing in the data plane.
  EXPECT_TRUE(activator_.active.empty());
  at(t0 + 3600 * s);
  ASSERT_EQ(activator_.active.size(), 1u);
  const BlockRequest& b = activator_.active.begin()->second;
  EXPECT_EQ(b.id, "lease-" + std::to_string(l.id));
  EXPECT_EQ(b.profile, "web");
  EXPECT_EQ(b.min_rate, 10'000'000u);
  EXPECT_EQ(b.max_rate, 50'000'000u);
  EXPECT_EQ(b.duration_ns, 3600 * s);
  ASSERT_EQ(b.members.size(), 1u);
  EXPECT_EQ(format_member(b.members[0]), "ip:10.1.1.5/32");
  EXPECT_EQ(market_->lease(alice, l.id).value().state, LeaseState::active);

  // Rating before the block ends is refused.
  auto early = market_->rate_provider(alice, l.id, true, 5, "fast");
  ASSERT_FALSE(early);
  EXPECT_NE(early.error().find("has not finished"), std::string::npos) << early.error();

  at(t0 + 7200 * s);
  EXPECT_TRUE(activator_.active.empty());
  const Lease done = market_->lease(alice, l.id).value();
  EXPECT_EQ(done.state, LeaseState::finished);
  EXPECT_EQ(done.usage.bytes[0], 1'000'000u);

  auto r = market_->rate_provider(alice, l.id, true, 4, "as promised");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r.value().of, "acme");
  const auto rep = market_->reputation("acme").as_provider;
  EXPECT_EQ(rep.count, 1u);
  EXPECT_EQ(rep.positive, 1u);
  // Every later listing carries it.
  EXPECT_EQ(market_->lots()[0].provider_reputation.count, 1u);
}

TEST_F(MarketTest, BidsAreRefusedWithAReasonAndAKind) {
  LotSpec spec = lot_spec();
  spec.max_price = 5000;
  const uint64_t lot = make_lot(spec);
  const auto refused = [&](Result<Bid> r, const std::string& why, ErrorKind kind) {
    ASSERT_FALSE(r) << "accepted, expected: " << why;
    EXPECT_NE(r.error().find(why), std::string::npos) << r.error();
    EXPECT_EQ(error_kind_name(r.error_kind()), error_kind_name(kind)) << r.error();
  };
  refused(market_->place_bid(provider, {lot, 900, 1, {ip("10.0.0.1")}, "tok_accept"}), "cannot",
          ErrorKind::forbidden);
  refused(bid(acme_staff, lot, 900), "cannot bid on its own lot", ErrorKind::forbidden);
  refused(bid(alice, lot, 6000), "above the lot's maximum of 5000", ErrorKind::rule);
  refused(bid(alice, lot, 900, "tok_accept", 2), "quantity must be 1 to 1", ErrorKind::invalid);
  refused(bid(alice, lot, 900, ""), "payment_token", ErrorKind::invalid);
  refused(bid(alice, 999, 900), "no lot 999", ErrorKind::not_found);
  refused(bid(alice, lot, 900, "tok_accept", 1,
              {own_ip(alice, 1), own_ip(alice, 2), own_ip(alice, 3), own_ip(alice, 4),
               own_ip(alice, 5)}),
          "more than the 4 this lot allows", ErrorKind::rule);
  refused(market_->place_bid(alice, {lot, 900, 1, {member("device:nobody")}, "tok_accept"}),
          "is not held by alice", ErrorKind::forbidden);
  refused(market_->place_bid(alice, {lot, 900, 1, {member("phone:+4930999999")}, "tok_accept"}),
          "is not held by alice", ErrorKind::forbidden);
  EXPECT_FALSE(parse_member("ip:0.0.0.0/0"));
  EXPECT_FALSE(parse_member("ip:::/0"));
  EXPECT_FALSE(parse_member("vlan:0"));
  EXPECT_FALSE(parse_member("fax:123"));
  EXPECT_EQ(format_member(parse_member("ip:10.0.0.0/8").value()), "ip:10.0.0.0/8");
  ASSERT_TRUE(market_->place_bid(alice, {lot, 900, 1, {member("device:tablet")}, "tok_accept"}));
  refused(bid(alice, lot, 950), "sealed bids are final", ErrorKind::conflict);
  // A device speaks for alice.
  refused(bid(alice_phone, lot, 950), "sealed bids are final", ErrorKind::conflict);
  ASSERT_TRUE(bid(bob, lot, 800));
  ASSERT_TRUE(bid(carol, lot, 800));
  ASSERT_TRUE(bid(dave, lot, 800));
  ASSERT_TRUE(bid(eve, lot, 800));
  refused(bid(frank, lot, 800), "limit of 5 bids", ErrorKind::rule);
  clock_.now = t0 + 600 * s;
  refused(bid(gina, lot, 800), "closed to bids", ErrorKind::conflict);
}

TEST_F(MarketTest, AReloadsRulesApplyToNewCommandsAndNeverMoveALiveLease) {
  const uint64_t lot = make_lot(lot_spec());
  ASSERT_TRUE(market_->place_bid(alice, {lot, 900, 1, {member("device:tablet")}, "tok_accept"}));
  at(t0 + 601 * s);
  ASSERT_EQ(market_->leases(admin).size(), 1u);
  const uint64_t lease = market_->leases(admin)[0].id;

  // The tablet's address moves while the lease that names it is live: refused, as a whole.
  auto moved = test_subscribers();
  moved[0].devices[0].ips = {config::parse_ip_prefix("10.9.0.8").value()};
  moved[1].prefixes.push_back(config::parse_ip_prefix("10.77.0.0/16").value());
  for (const Status& r :
       {market_->check_rules(moved), market_->set_rules({"web", "video"}, moved)}) {
    ASSERT_FALSE(r);
    EXPECT_EQ(error_kind_name(r.error_kind()), error_kind_name(ErrorKind::conflict));
    EXPECT_NE(r.error().find("lease " + std::to_string(lease)), std::string::npos) << r.error();
  }
  // Nothing changed: bob's new grant and the new profile are not in force.
  LotSpec later = lot_spec();
  later.closes_ns = t0 + 1200 * s;
  LotSpec video = later;
  video.profile = "video";
  auto refused_lot = market_->create_lot(provider, video);
  ASSERT_FALSE(refused_lot);
  EXPECT_NE(refused_lot.error().find("video"), std::string::npos) << refused_lot.error();
  const uint64_t lot2 = make_lot(later);
  EXPECT_FALSE(bid(bob, lot2, 900, "tok_accept", 1, {ip("10.77.0.1/32")}));

  // Granting more and taking away what no live lease names: applied at once.
  auto granted = test_subscribers();
  granted[1].prefixes.push_back(config::parse_ip_prefix("10.77.0.0/16").value());
  granted[2].prefixes.clear();  // carol keeps nothing
  ASSERT_TRUE(market_->check_rules(granted));
  ASSERT_TRUE(market_->set_rules({"web", "video"}, granted));
  EXPECT_TRUE(bid(bob, lot2, 900, "tok_accept", 1, {ip("10.77.0.1/32")}));
  auto carol_bid = bid(carol, lot2, 900);
  ASSERT_FALSE(carol_bid);
  EXPECT_NE(carol_bid.error().find("is not held by carol"), std::string::npos) << carol_bid.error();
  EXPECT_TRUE(market_->create_lot(provider, video));
  EXPECT_EQ(market_->options().profiles, (std::set<std::string>{"web", "video"}));

  // The lease runs on as awarded, with the identifiers it had.
  at(t0 + 3600 * s);
  const auto block = activator_.active.find("lease-" + std::to_string(lease));
  ASSERT_NE(block, activator_.active.end());
  EXPECT_EQ(format_member(block->second.members.at(0)), "device:tablet");
  EXPECT_EQ(market_->lease(admin, lease).value().state, LeaseState::active);
}

TEST_F(MarketTest, LotsAreCheckedWhenCreated) {
  LotSpec bad = lot_spec();
  bad.profile = "video";
  EXPECT_FALSE(market_->create_lot(provider, bad));
  bad = lot_spec(Format::second_price, 3);
  EXPECT_FALSE(market_->create_lot(provider, bad));
  bad = lot_spec();
  bad.start_ns = bad.closes_ns - 1;
  EXPECT_FALSE(market_->create_lot(provider, bad));
  bad = lot_spec();
  bad.closes_ns = t0 - 1;
  EXPECT_FALSE(market_->create_lot(provider, bad));
  EXPECT_FALSE(market_->create_lot(alice, lot_spec()));
  auto by_admin = market_->create_lot(admin, lot_spec());
  ASSERT_TRUE(by_admin);
  EXPECT_EQ(market_->lot(by_admin.value()).value().lot.provider, "acme");
}

TEST_F(MarketTest, NoBidsAndReserveNotMetAwardNothing) {
  const uint64_t empty = make_lot(lot_spec());
  const uint64_t cheap = make_lot(lot_spec());
  ASSERT_TRUE(bid(alice, cheap, 99));
  at(t0 + 601 * s);
  EXPECT_EQ(market_->lot(empty).value().lot.outcome, Outcome::no_bids);
  EXPECT_EQ(market_->lot(cheap).value().lot.outcome, Outcome::reserve_not_met);
  EXPECT_TRUE(market_->leases(admin).empty());
}

TEST_F(MarketTest, UniformLotWithASponsoredGroupSplitsTheChargeProRata) {
  const uint64_t lot = make_lot(lot_spec(Format::uniform, 2));
  GroupSpec g;
  g.lot = lot;
  g.price = 800;
  g.members = {{"alice", {own_ip(alice)}}, {"dave", {own_ip(dave)}}, {"eve", {own_ip(eve)}}};
  auto group = market_->create_group(alice, g);
  ASSERT_TRUE(group) << group.error();
  ASSERT_TRUE(market_->pledge(alice, group.value().id, 600, "tok_accept"));
  ASSERT_TRUE(market_->pledge(dave, group.value().id, 400, "tok_decline"));
  // eve joins pledging nothing: she is sponsored. A stranger cannot pledge.
  ASSERT_TRUE(market_->pledge(eve, group.value().id, 0, ""));
  EXPECT_FALSE(market_->pledge(carol, group.value().id, 100, "tok_accept"));
  ASSERT_TRUE(bid(bob, lot, 500));
  ASSERT_TRUE(bid(carol, lot, 333));
  at(t0 + 601 * s);

  // Two blocks: the group (800) and bob (500) win; carol's 333 is the price.
  EXPECT_EQ(market_->lot(lot).value().lot.clearing_price, 333);
  const Lease gl = market_->leases(eve).at(0);
  EXPECT_EQ(gl.bidder, "alice");
  EXPECT_EQ(gl.recipients, (std::vector<std::string>{"alice", "dave", "eve"}));
  ASSERT_EQ(gl.members.size(), 3u);  // all members are served, eve too
  auto charges = market_->charges(admin, gl.id);
  ASSERT_EQ(charges.size(), 2u);
  // 333 split 600:400 is 199.8 and 133.2: 199 + 133 = 332, the last cent to the larger
  // remainder (alice's 0.8).
  EXPECT_EQ(charges[0].payer, "alice");
  EXPECT_EQ(charges[0].amount, 200);
  EXPECT_EQ(charges[0].result, ChargeResult::accepted);
  EXPECT_EQ(charges[1].payer, "dave");
  EXPECT_EQ(charges[1].amount, 133);
  EXPECT_EQ(charges[1].result, ChargeResult::declined);
  EXPECT_EQ(market_->reputation("alice").as_recipient.positive, 1u);
  EXPECT_EQ(market_->reputation("dave").as_recipient.count, 1u);
  EXPECT_EQ(market_->reputation("dave").as_recipient.positive, 0u);
  // One payer paid: the block is served.
  at(t0 + 3600 * s);
  EXPECT_EQ(market_->lease(admin, gl.id).value().state, LeaseState::active);
}

// A group's organiser names other members, each with what that member holds; a member takes
// part once it joins (a pledge, 0 to be sponsored). Until then its identifiers are in no block
// and keep none of its own bids out: nobody can put a customer into a lease, block its own
// bids for that time or watch its traffic, without its say.
TEST_F(MarketTest, AGroupMemberTakesPartOnlyOnceItJoins) {
  LotSpec early = lot_spec();
  early.reserve = 0;
  early.closes_ns = t0 + 300 * s;
  const uint64_t lot1 = make_lot(early);
  const uint64_t lot2 = make_lot(lot_spec());  // the same block time, closing later
  // alice names only dave, with dave's own address; she is not a member herself.
  GroupSpec g;
  g.lot = lot1;
  g.price = 0;
  g.members = {{"dave", {own_ip(dave)}}};
  const uint64_t group = market_->create_group(alice, g).value().id;
  EXPECT_TRUE(market_->group(dave, group)) << "the member sees the group it is named in";
  EXPECT_TRUE(market_->group(dave, group).value().served().empty());
  at(t0 + 301 * s);
  // Nobody joined: the group does not win, and there is no lease holding dave's address.
  auto closed = market_->lot(lot1).value();
  EXPECT_EQ(closed.lot.outcome, Outcome::no_bids);
  ASSERT_EQ(closed.lot.excluded.count(group), 1u);
  EXPECT_THAT(closed.lot.excluded.at(group), ::testing::HasSubstr("joined"));
  EXPECT_TRUE(market_->leases(dave).empty());
  EXPECT_TRUE(market_->leases(alice).empty());
  // dave's own bid for the same time is his to make, and wins.
  ASSERT_TRUE(bid(dave, lot2, 500));
  ASSERT_TRUE(bid(bob, lot2, 300));
  at(t0 + 601 * s);
  const auto won = market_->leases(dave);
  ASSERT_EQ(won.size(), 1u);
  EXPECT_EQ(won[0].bidder, "dave");
  EXPECT_EQ(won[0].unit_price, 300);
}

TEST_F(MarketTest, AMemberThatJoinsIsServedAndOneThatDoesNotIsNot) {
  const uint64_t lot = make_lot(lot_spec());
  GroupSpec g;
  g.lot = lot;
  g.price = 400;
  g.members = {{"alice", {own_ip(alice)}}, {"dave", {own_ip(dave)}}, {"eve", {own_ip(eve)}}};
  const uint64_t group = market_->create_group(alice, g).value().id;
  ASSERT_TRUE(market_->pledge(alice, group, 400, "tok_accept"));
  ASSERT_TRUE(market_->pledge(dave, group, 0, "")) << "0 joins as sponsored, no token";
  EXPECT_FALSE(market_->pledge(eve, group, -1, ""));
  EXPECT_FALSE(market_->pledge(eve, group, 10, "")) << "a paying pledge needs a token";
  const Group seen = market_->group(alice, group).value();
  std::vector<std::string> joined;
  for (const GroupMember* gm : seen.served())
    joined.push_back(gm->principal);
  EXPECT_EQ(joined, (std::vector<std::string>{"alice", "dave"}));
  at(t0 + 601 * s);
  ASSERT_EQ(market_->leases(alice).size(), 1u);
  const Lease l = market_->leases(alice).at(0);
  EXPECT_EQ(l.recipients, (std::vector<std::string>{"alice", "dave"}));
  EXPECT_EQ(l.members.size(), 2u) << "eve never joined: her address is not in the block";
  EXPECT_TRUE(market_->leases(eve).empty());
  ASSERT_EQ(market_->charges(admin, l.id).size(), 1u) << "dave pays nothing";
  // The journal replays to the same state.
  reopen();
  EXPECT_EQ(market_->leases(alice).at(0).members.size(), 2u);
}

TEST_F(MarketTest, AWithdrawnPledgeLowersTheGroupsCap) {
  const uint64_t lot = make_lot(lot_spec());
  GroupSpec g;
  g.lot = lot;
  g.price = 1000;
  g.members = {{"alice", {own_ip(alice)}}, {"dave", {own_ip(dave)}}};
  auto group = market_->create_group(alice, g);
  ASSERT_TRUE(group);
  ASSERT_TRUE(market_->pledge(alice, group.value().id, 600, "tok_accept"));
  ASSERT_TRUE(market_->pledge(dave, group.value().id, 400, "tok_accept"));
  ASSERT_TRUE(bid(bob, lot, 800));
  ASSERT_TRUE(market_->withdraw_pledge(dave, group.value().id));
  EXPECT_FALSE(market_->withdraw_pledge(dave, group.value().id));
  at(t0 + 601 * s);
  // The group can now pay at most 600: bob's 800 wins and pays the group's 600.
  auto leases = market_->leases(admin);
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0].bidder, "bob");
  EXPECT_EQ(leases[0].unit_price, 600);
  // Pledges are final once the lot closes.
  EXPECT_FALSE(market_->pledge(dave, group.value().id, 400, "tok_accept"));
}

TEST_F(MarketTest, AscendingSoftCloseExtendsUpToItsCap) {
  LotSpec spec = lot_spec(Format::ascending);
  spec.soft_close_ns = 60 * s;
  spec.max_extension_ns = 120 * s;
  spec.increment = 10;
  const uint64_t lot = make_lot(spec);
  const int64_t close = spec.closes_ns;
  clock_.now = close - 300 * s;
  ASSERT_TRUE(bid(alice, lot, 200));
  EXPECT_EQ(market_->lot(lot).value().lot.closes_ns, close);  // not in the last minute
  auto low = bid(bob, lot, 205);
  ASSERT_FALSE(low);
  EXPECT_NE(low.error().find("at least 210"), std::string::npos) << low.error();
  EXPECT_FALSE(bid(alice, lot, 300));  // already leading
  clock_.now = close - 30 * s;
  ASSERT_TRUE(bid(bob, lot, 210));
  EXPECT_EQ(market_->lot(lot).value().lot.closes_ns, close + 30 * s);
  clock_.now = close + 20 * s;
  ASSERT_TRUE(bid(alice, lot, 250));
  EXPECT_EQ(market_->lot(lot).value().lot.closes_ns, close + 80 * s);
  clock_.now = close + 70 * s;
  ASSERT_TRUE(bid(bob, lot, 300));
  EXPECT_EQ(market_->lot(lot).value().lot.closes_ns, close + 120 * s);  // the cap
  clock_.now = close + 110 * s;
  ASSERT_TRUE(bid(alice, lot, 310));
  EXPECT_EQ(market_->lot(lot).value().lot.closes_ns, close + 120 * s);
  at(close + 119 * s);
  EXPECT_EQ(market_->lot(lot).value().lot.state, LotState::open);
  at(close + 120 * s);
  EXPECT_FALSE(bid(bob, lot, 400));
  auto leases = market_->leases(admin);
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0].bidder, "alice");
  EXPECT_EQ(leases[0].unit_price, 310);  // the winner pays its own bid
  // Open outcry: everyone sees every bid.
  EXPECT_EQ(market_->bids(carol, lot).value().size(), 5u);
}

TEST_F(MarketTest, AMinimumRecipientReputationIsEnforced) {
  // alice earns one positive recipient rating by paying for a lease.
  finished_lease();
  LotSpec spec = lot_spec();
  spec.closes_ns = t0 + 8000 * s;
  spec.start_ns = t0 + 9000 * s;
  spec.min_recipient_wilson = 0.2;
  const uint64_t lot = make_lot(spec);
  auto refused = bid(bob, lot, 900);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("requires a recipient reputation"), std::string::npos)
      << refused.error();
  // 1 of 1 positive: Wilson lower bound 0.2065.
  EXPECT_TRUE(bid(alice, lot, 900));
}

TEST_F(MarketTest, OnlyPartiesRateOnceInsideTheWindow) {
  const uint64_t lease = finished_lease();
  // A stranger, and the losing bidder, are refused.
  auto stranger = market_->rate_provider(carol, lease, false, 1, "");
  ASSERT_FALSE(stranger);
  // To a stranger the lease does not exist.
  EXPECT_EQ(stranger.error_kind(), ErrorKind::not_found) << stranger.error();
  EXPECT_FALSE(market_->rate_provider(bob, lease, false, 1, ""));
  EXPECT_FALSE(market_->rate_provider(bob_phone, lease, false, 1, ""));
  // The provider rates recipients through settlement only, and cannot rate itself.
  EXPECT_FALSE(market_->rate_provider(provider, lease, true, 5, ""));
  // alice's device rates for her, and its id is kept.
  auto r = market_->rate_provider(alice_phone, lease, true, 5, "good");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r.value().by, "alice");
  EXPECT_EQ(r.value().device, "alice-phone");
  auto again = market_->rate_provider(alice, lease, false, 1, "changed my mind");
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().find("already rated"), std::string::npos);
  // The provider adds a note to alice's paid rating once.
  ASSERT_TRUE(market_->note_recipient(provider, lease, "alice", "prompt payer"));
  EXPECT_FALSE(market_->note_recipient(provider, lease, "alice", "again"));
  EXPECT_FALSE(market_->note_recipient(provider, lease, "bob", "not a party"));
}

TEST_F(MarketTest, RatingsAfterTheWindowAreRefused) {
  const uint64_t lease = finished_lease();
  clock_.now = t0 + 7200 * s + 60LL * 86400 * s + 1;
  auto late = market_->rate_provider(alice, lease, true, 5, "");
  ASSERT_FALSE(late);
  EXPECT_NE(late.error().find("rating window"), std::string::npos) << late.error();
}

TEST_F(MarketTest, ProviderReputationOnKnownCounts) {
  // Four leases rated 3 satisfied, 1 not: 75% positive, Wilson lower bound 0.3006.
  const Actor raters[] = {alice, bob, carol, dave};
  std::vector<uint64_t> lots;
  for (int i = 0; i < 4; ++i)
    lots.push_back(make_lot(lot_spec()));
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(bid(raters[i], lots[static_cast<size_t>(i)], 500));
  at(t0 + 601 * s);
  at(t0 + 3600 * s);
  at(t0 + 7200 * s);
  const auto leases = market_->leases(admin);
  ASSERT_EQ(leases.size(), 4u);
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(
        market_->rate_provider(raters[i], leases[static_cast<size_t>(i)].id, i != 3, 0, ""));
  const auto rep = market_->reputation("acme").as_provider;
  EXPECT_EQ(rep.count, 4u);
  EXPECT_EQ(rep.positive, 3u);
  EXPECT_DOUBLE_EQ(rep.percent_positive, 75.0);
  EXPECT_NEAR(rep.wilson_lower, 0.30064, 1e-5);
  // Ratings older than 12 months no longer count.
  clock_.now = t0 + 7200 * s + 366LL * 86400 * s;
  EXPECT_EQ(market_->reputation("acme").as_provider.count, 0u);
}

TEST_F(MarketTest, ARestartRebuildsEverythingAndResumesActiveBlocks) {
  const uint64_t lot = make_lot(lot_spec());
  ASSERT_TRUE(bid(alice, lot, 900));
  ASSERT_TRUE(bid(bob, lot, 700));
  const uint64_t open_lot = make_lot(lot_spec(Format::uniform, 3));
  at(t0 + 601 * s);
  // open_lot closed too (no bids); make another one that stays open.
  LotSpec later = lot_spec();
  later.closes_ns = t0 + 5000 * s;
  later.start_ns = t0 + 9000 * s;
  const uint64_t still_open = make_lot(later);
  ASSERT_TRUE(bid(carol, still_open, 400));
  at(t0 + 3600 * s);
  ASSERT_EQ(activator_.active.size(), 1u);
  const auto before = market_->stats();

  // The process dies: the data plane forgets its blocks; the ledger keeps everything.
  activator_.active.clear();
  reopen();
  const auto after = market_->stats();
  EXPECT_EQ(after.lots, before.lots);
  EXPECT_EQ(after.bids, before.bids);
  EXPECT_EQ(after.leases, before.leases);
  EXPECT_EQ(after.charges_accepted, before.charges_accepted);
  EXPECT_EQ(after.ratings, before.ratings);
  EXPECT_GT(after.replayed_events, 0u);
  EXPECT_EQ(market_->lot(open_lot).value().lot.outcome, Outcome::no_bids);
  EXPECT_EQ(market_->lot(still_open).value().lot.state, LotState::open);
  EXPECT_EQ(market_->bids(provider, still_open).value().size(), 1u);
  // Who bid on an open lot is known again after the restart: a sealed bid is still final.
  auto again = bid(carol, still_open, 450);
  ASSERT_FALSE(again);
  EXPECT_EQ(error_kind_name(again.error_kind()), error_kind_name(ErrorKind::conflict));
  EXPECT_THAT(again.error(), ::testing::HasSubstr("sealed bids are final"));
  EXPECT_EQ(market_->reputation("alice").as_recipient.positive, 1u);
  // The lease was active: it is suspended until the next tick activates it again.
  const uint64_t lease = market_->leases(alice).at(0).id;
  EXPECT_EQ(market_->lease(alice, lease).value().state, LeaseState::suspended);
  at(t0 + 3700 * s);
  EXPECT_EQ(market_->lease(alice, lease).value().state, LeaseState::active);
  ASSERT_EQ(activator_.active.size(), 1u);
  EXPECT_EQ(activator_.active.begin()->second.duration_ns, 3500 * s);  // what is left
  EXPECT_TRUE(ledger_->verify().ok);
  // The still-open lot closes after the restart as it would have.
  at(t0 + 5001 * s);
  EXPECT_EQ(market_->lot(still_open).value().lot.outcome, Outcome::awarded);
}

TEST_F(MarketTest, ShutdownSuspendsActiveBlocksWithTheirUsage) {
  const uint64_t lot = make_lot(lot_spec());
  ASSERT_TRUE(bid(alice, lot, 900));
  at(t0 + 601 * s);
  at(t0 + 3600 * s);
  clock_.now = t0 + 3660 * s;
  market_->suspend(&activator_);
  EXPECT_TRUE(activator_.active.empty());
  const Lease l = market_->leases(alice).at(0);
  EXPECT_EQ(l.state, LeaseState::suspended);
  EXPECT_EQ(l.usage.bytes[0], 1'000'000u);
  reopen();
  EXPECT_EQ(market_->leases(alice).at(0).usage.bytes[0], 1'000'000u);
  at(t0 + 7200 * s);  // too late to resume: it ends with the usage it had
  EXPECT_EQ(market_->leases(alice).at(0).state, LeaseState::finished);
}

}  // namespace
}  // namespace segx::market

namespace segx::market {
namespace {

TEST_F(MarketTest, BidsWithAwkwardNamesReadBackTheSameAfterARestart) {
  const uint64_t lot = make_lot(lot_spec());
  const Actor odd{"we\"ird\\name\ttab", Role::recipient, ""};
  auto b = market_->place_bid(odd, {lot, 900, 1, {own_ip(odd)}, "tok_\"quoted\""});
  ASSERT_TRUE(b) << b.error();
  reopen();
  const auto bids = market_->bids(provider, lot).value();
  ASSERT_EQ(bids.size(), 1u);
  EXPECT_EQ(bids[0].bid.bidder, odd.id);
  EXPECT_EQ(bids[0].bid.price, 900);
  EXPECT_TRUE(ledger_->verify().ok);
}

}  // namespace
}  // namespace segx::market

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>

namespace segx::market {
namespace {

// A child process places bids from several threads and reports each acknowledged bid id on
// a pipe; it is killed with SIGKILL mid-stream. After reopening, every acknowledged bid is
// in the market and the chain verifies.
TEST(MarketDurability, EveryAcknowledgedBidSurvivesSigkill) {
  test::TempDir dir;
  test::TestJournal journal(dir);
  const std::string url = journal.url();
  FakeClock clock;
  MarketOptions o;
  o.provider_id = "acme";
  o.profiles = {"web"};
  o.bids_per_lot = 1'000'000;
  // Each bidder holds an address of its own.
  for (int t = 0; t < 6; ++t)
    for (int i = 0; i < 20000; ++i) {
      config::SubscriberConfig sub;
      sub.id = "r" + std::to_string(t) + "-" + std::to_string(i);
      sub.prefixes.push_back(config::parse_ip_prefix("10." + std::to_string(t) + "." +
                                                     std::to_string(i / 256) + "." +
                                                     std::to_string(i % 256))
                                 .value());
      o.subscribers.push_back(std::move(sub));
    }
  LotSpec spec;
  spec.profile = "web";
  spec.format = Format::uniform;
  spec.quantity = 5;
  spec.closes_ns = t0 + 600 * s;
  spec.start_ns = t0 + 3600 * s;
  spec.duration_ns = 3600 * s;
  uint64_t lot = 0;
  {
    auto l = ledger::Ledger::open(url);
    ASSERT_TRUE(l);
    TestGateway g;
    auto m = Market::open(o, *l.value(), g, clock);
    ASSERT_TRUE(m);
    lot = m.value()->create_lot({"acme", Role::provider, ""}, spec).value();
  }
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    auto l = ledger::Ledger::open(url);
    TestGateway g;
    if (!l) _exit(3);
    auto m = Market::open(o, *l.value(), g, clock);
    if (!m) _exit(3);
    std::vector<std::thread> clients;
    for (int t = 0; t < 6; ++t) {
      clients.emplace_back([&, t] {
        for (int i = 0; i < 20000; ++i) {
          const Actor who{"r" + std::to_string(t) + "-" + std::to_string(i), Role::recipient, ""};
          const auto own = ip("10." + std::to_string(t) + "." + std::to_string(i / 256) + "." +
                              std::to_string(i % 256));
          auto b = m.value()->place_bid(who, {lot, 100 + i, 1, {own}, "tok_visa"});
          if (!b) _exit(4);
          const uint64_t id = b.value().id;
          if (write(fds[1], &id, sizeof id) != sizeof id) _exit(5);
        }
      });
    }
    for (auto& c : clients)
      c.join();
    _exit(0);
  }
  close(fds[1]);
  std::set<uint64_t> acknowledged;
  uint64_t id;
  while (acknowledged.size() < 2000 && read(fds[0], &id, sizeof id) == sizeof id)
    acknowledged.insert(id);
  kill(child, SIGKILL);
  while (read(fds[0], &id, sizeof id) == sizeof id)
    acknowledged.insert(id);
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child stopped by itself: " << WEXITSTATUS(status);

  auto l = ledger::Ledger::open(url);
  ASSERT_TRUE(l);
  TestGateway g;
  auto m = Market::open(o, *l.value(), g, clock);
  ASSERT_TRUE(m) << m.error();
  std::set<uint64_t> present;
  const auto bids = m.value()->bids({"acme", Role::provider, ""}, lot);
  ASSERT_TRUE(bids);
  for (const BidView& b : bids.value())
    present.insert(b.bid.id);
  ASSERT_GE(acknowledged.size(), 2000u);
  for (uint64_t a : acknowledged)
    ASSERT_TRUE(present.count(a)) << "acknowledged bid " << a << " lost";
  EXPECT_TRUE(l.value()->verify().ok);
}

}  // namespace
}  // namespace segx::market

namespace segx::market {
namespace {

// One market, two appliances on one journal: the moderator runs the auction, the appliance
// learns the award from the ledger, both meter the block at half its rates, and the usage
// of both adds up in the lease.
TEST(SharedLedger, AModeratorAndAnApplianceMeterOneBlockAndTheirUsageAddsUp) {
  test::TempDir dir;
  test::TestJournal journal(dir);
  FakeClock clock;
  TestGateway gateway;
  auto base = [] {
    MarketOptions o;
    o.provider_id = "acme";
    o.profiles = {"web"};
    o.rate_share = 0.5;
    return o;
  };
  MarketOptions mo = base();
  mo.role = MarketRole::moderator;
  mo.appliance = "edge-1";
  MarketOptions ao = base();
  ao.role = MarketRole::appliance;
  ao.appliance = "edge-2";
  auto lm = ledger::Ledger::open(journal.url());
  auto la = ledger::Ledger::open(journal.url());
  ASSERT_TRUE(lm && la);
  mo.subscribers = ao.subscribers = test_subscribers();
  auto moderator = Market::open(mo, *lm.value(), gateway, clock);
  auto appliance = Market::open(ao, *la.value(), gateway, clock);
  ASSERT_TRUE(moderator && appliance);
  Market& m = *moderator.value();
  Market& a = *appliance.value();
  RecordingActivator dm, da;

  LotSpec spec;
  spec.profile = "web";
  spec.closes_ns = t0 + 600 * s;
  spec.start_ns = t0 + 3600 * s;
  spec.duration_ns = 3600 * s;
  spec.min_rate = 10'000'000;
  spec.max_rate = 40'000'000;
  spec.reserve = 100;
  // Market requests go to the moderator only.
  auto refused = a.create_lot(provider, spec);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("moderator"), std::string::npos) << refused.error();
  const uint64_t lot = m.create_lot(provider, spec).value();
  ASSERT_TRUE(m.place_bid(alice, {lot, 900, 1, {own_ip(alice)}, "tok_visa"}));
  EXPECT_FALSE(a.place_bid(bob, {lot, 950, 1, {own_ip(bob)}, "tok_visa"}));

  const auto both = [&](int64_t when) {
    clock.now = when;
    m.tick(&dm);
    m.settle();
    m.tick(&dm);
    a.tick(&da);
  };
  both(t0 + 601 * s);
  // The appliance learned the lot, the bid and the award from the ledger, and settles nothing.
  ASSERT_EQ(a.leases(admin).size(), 1u);
  EXPECT_EQ(a.lot(lot).value().lot.outcome, Outcome::awarded);
  both(t0 + 3600 * s);
  ASSERT_EQ(dm.active.size(), 1u);
  ASSERT_EQ(da.active.size(), 1u);
  // Each enforces half of the block's rates.
  EXPECT_EQ(dm.active.begin()->second.max_rate, 20'000'000u);
  EXPECT_EQ(da.active.begin()->second.min_rate, 5'000'000u);
  both(t0 + 7200 * s);
  EXPECT_TRUE(dm.active.empty());
  EXPECT_TRUE(da.active.empty());
  // The moderator reads the appliance's usage at its next tick.
  m.tick(&dm);
  const Lease l = m.leases(admin).at(0);
  EXPECT_EQ(l.state, LeaseState::finished);
  EXPECT_EQ(l.usage.bytes[0], 2'000'000u);    // 1,000,000 green bytes from each
  EXPECT_EQ(gateway.accepted_charges(), 1u);  // charged once, by the moderator
  EXPECT_TRUE(lm.value()->verify().ok);

  // A restarted moderator rebuilds the same totals from the shared journal.
  moderator.value().reset();
  auto again = Market::open(mo, *lm.value(), gateway, clock);
  ASSERT_TRUE(again);
  EXPECT_EQ(again.value()->leases(admin).at(0).usage.bytes[0], 2'000'000u);
  EXPECT_TRUE(again.value()->rate_provider(alice, l.id, true, 5, ""));
}

// Found by tests/fuzz/ledger_fuzz (regressions/float-out-of-int64-range): a float where the
// market writes an integer was cast out of range at replay (undefined behaviour). Such a
// journal is refused with the event's number, like any other event that cannot be read.
TEST_F(MarketTest, AJournalWithAFloatOutOfRangeIsRefusedAtOpen) {
  make_lot(lot_spec());
  ASSERT_TRUE(ledger_->append_durable("lot_cancelled", R"({"by":"acme","lot":1.8e25})", t0));
  market_.reset();
  auto m = Market::open(MarketOptions{}, *ledger_, gateway_, clock_);
  ASSERT_FALSE(m);
  // Event 1 is the market's id, 2 the lot.
  EXPECT_THAT(m.error(), ::testing::HasSubstr("event 3 (lot_cancelled) cannot be read"));
  EXPECT_THAT(m.error(), ::testing::HasSubstr("out of range"));
}

}  // namespace
}  // namespace segx::market
