// A lease's life after the auction, with the faults it meets: a free win, a data plane that
// refuses the block, a payment gateway that errs for hours, and refunds. Each case is one
// of the problems issue 14 reproduced before the market's rewrite.
#include "market_fixture.hpp"

namespace segx::market {
namespace {

using ::testing::HasSubstr;

size_t count(const std::vector<std::string>& types, const std::string& type) {
  return static_cast<size_t>(std::count(types.begin(), types.end(), type));
}

// Problem 4: a lot won at 0 recorded no charge and its lease stayed `awarded` forever.
TEST_F(MarketTest, ALeaseWonAtZeroIsFreeAndActivates) {
  LotSpec spec = lot_spec();
  spec.reserve = 0;
  const uint64_t lot = make_lot(spec);
  ASSERT_TRUE(bid(alice, lot, 500));
  at(t0 + 601 * s);
  const auto leases = market_->leases(alice);
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0].unit_price, 0) << "one bid, no reserve: the second price is 0";
  const auto charges = market_->charges(alice, leases[0].id);
  ASSERT_EQ(charges.size(), 1u);
  EXPECT_EQ(charges[0].amount, 0);
  EXPECT_EQ(charges[0].result, ChargeResult::accepted);
  EXPECT_EQ(charges[0].reference, "free");
  EXPECT_EQ(gateway_.attempts(charges[0].idempotency_key), 0u) << "the gateway is not called";
  EXPECT_EQ(market_->reputation("alice").as_recipient.count, 0u) << "a free win rates no one";
  at(t0 + 3600 * s);
  EXPECT_EQ(market_->lease(alice, leases[0].id).value().state, LeaseState::active);
  // The token she gave is not kept for a charge that will never be made.
  EXPECT_FALSE(ledger_->secret(bid_token_name(leases[0].bid)).value());
}

// Problem 6: a lease that could not activate was retried every 100 ms and each try was a
// journal event (174 in 10 s for two leases).
TEST_F(MarketTest, AnActivationThatKeepsFailingEndsTheLeaseFailedAndRefunded) {
  const uint64_t a = make_lot(lot_spec());
  const uint64_t b = make_lot(lot_spec());
  ASSERT_TRUE(bid(alice, a, 900, "tok_visa"));
  ASSERT_TRUE(bid(bob, b, 900, "tok_visa"));
  at(t0 + 601 * s);
  ASSERT_EQ(gateway_.accepted_charges(), 2u);
  activator_.fail = true;
  // Ten seconds of ticks every 100 ms: tries at 0 s, 1 s and 3 s (the backoff doubles),
  // then each lease fails.
  for (int i = 0; i <= 100; ++i)
    at(t0 + 3600 * s + i * 100'000'000LL);
  const auto types = journal_types();
  EXPECT_EQ(count(types, "activation"), 2u) << "one event per change of state, not per try";
  EXPECT_EQ(count(types, "lease_failed"), 2u);
  EXPECT_EQ(activator_.attempts, 6);
  for (const Lease& l : market_->leases(admin)) {
    EXPECT_EQ(l.state, LeaseState::failed);
    EXPECT_THAT(l.failure, HasSubstr("refused its block 3 times: no metered profile"));
    const auto ch = market_->charges(admin, l.id);
    ASSERT_EQ(ch.size(), 1u);
    EXPECT_EQ(ch[0].refund, RefundState::accepted);
    EXPECT_EQ(ch[0].refund_reference.substr(0, 8), "test_re_");
  }
  EXPECT_EQ(gateway_.refunds(), 2u);
  EXPECT_EQ(gateway_.refunded(), 200) << "both prices (the reserve, 100) returned in full";
  EXPECT_EQ(market_->stats().failed_leases, 2u);
  // Only a lease that ran to its end is rated.
  EXPECT_FALSE(market_->rate_provider(alice, market_->leases(alice).at(0).id, false, 1, ""));
}

// A lease whose whole block passed while segx could not run it fails and is refunded.
TEST_F(MarketTest, ALeaseWhoseTimeRanOutBeforeItRanFails) {
  const uint64_t lot = make_lot(lot_spec());
  ASSERT_TRUE(bid(alice, lot, 900, "tok_visa"));
  at(t0 + 601 * s);
  at(t0 + 7201 * s);  // segx was down for the whole block
  const Lease l = market_->leases(alice).at(0);
  EXPECT_EQ(l.state, LeaseState::failed);
  EXPECT_THAT(l.failure, HasSubstr("time ran out"));
  EXPECT_EQ(gateway_.refunds(), 1u);
}

// Problem 8: a gateway error was retried at once and then recorded as final; the sale was
// lost.
TEST_F(MarketTest, AChargeThatErrsStaysPendingWithBackoffUntilTheDeadline) {
  MarketOptions o = test_options();
  o.settlement_backoff_ns = 1 * s;
  o.settlement_max_backoff_ns = 60 * s;
  o.settlement_deadline_ns = 3600 * s;
  reopen(o);
  const uint64_t lot = make_lot(lot_spec());
  ASSERT_TRUE(bid(alice, lot, 900, "tok_visa"));
  clock_.now = t0 + 601 * s;
  market_->tick(&activator_);
  gateway_.error_all(true);  // the processor is down
  for (int i = 0; i < 50; ++i) {
    clock_.now += 1 * s;
    market_->settle();
  }
  const Lease l = market_->leases(admin).at(0);
  Charge c = market_->charges(admin, l.id).at(0);
  EXPECT_EQ(c.result, ChargeResult::pending) << "an error is not an answer";
  // 1 + 2 + 4 + 8 + 16 s of backoff within 50 s: at most 6 attempts, not 50.
  EXPECT_LE(gateway_.attempts(c.idempotency_key), 6u);
  EXPECT_GE(gateway_.attempts(c.idempotency_key), 5u);
  // The processor comes back: the same key goes through once.
  gateway_.error_all(false);
  clock_.now += 60 * s;
  market_->settle();
  c = market_->charges(admin, l.id).at(0);
  EXPECT_EQ(c.result, ChargeResult::accepted);
  EXPECT_EQ(gateway_.accepted_charges(), 1u);
  EXPECT_EQ(c.attempts, gateway_.attempts(c.idempotency_key));
  // Its token is erased once the charge is final; the chain still verifies.
  EXPECT_FALSE(ledger_->secret(bid_token_name(l.bid)).value());
  EXPECT_TRUE(ledger_->verify().ok);
}

TEST_F(MarketTest, AChargeWithNoAnswerBeforeTheDeadlineEndsInErrorAndTheLeaseUnpaid) {
  MarketOptions o = test_options();
  o.settlement_deadline_ns = 600 * s;
  reopen(o);
  const uint64_t lot = make_lot(lot_spec());
  ASSERT_TRUE(bid(bob, lot, 900, "tok_error"));
  at(t0 + 601 * s);
  const Lease l = market_->leases(admin).at(0);
  EXPECT_EQ(market_->charges(admin, l.id).at(0).result, ChargeResult::pending);
  at(t0 + 601 * s + 601 * s);
  const Charge c = market_->charges(admin, l.id).at(0);
  EXPECT_EQ(c.result, ChargeResult::error);
  EXPECT_THAT(c.reason, HasSubstr("settlement deadline"));
  EXPECT_EQ(market_->lease(admin, l.id).value().state, LeaseState::unpaid);
  // An outage is not the payer's fault: no rating.
  EXPECT_EQ(market_->reputation("bob").as_recipient.count, 0u);
}

// Problem 8: keys were "segx-lease-<id>-<payer>", the same in every ledger.
TEST_F(MarketTest, IdempotencyKeysDifferBetweenLedgers) {
  const uint64_t lot = make_lot(lot_spec());
  ASSERT_TRUE(bid(alice, lot, 900));
  at(t0 + 601 * s);
  const std::string first =
      market_->charges(admin, market_->leases(admin).at(0).id).at(0).idempotency_key;
  test::TempDir other_dir;
  auto other = ledger::Ledger::open("sqlite:" + (other_dir / "other.db").string());
  ASSERT_TRUE(other);
  TestGateway g;
  auto m = Market::open(test_options(), *other.value(), g, clock_);
  ASSERT_TRUE(m);
  clock_.now = t0;
  const uint64_t lot2 = m.value()->create_lot(provider, lot_spec()).value();
  ASSERT_TRUE(m.value()->place_bid(alice, {lot2, 900, 1, {own_ip(alice)}, "tok_accept"}));
  clock_.now = t0 + 601 * s;
  m.value()->tick(nullptr);
  const std::string second =
      m.value()->charges(admin, m.value()->leases(admin).at(0).id).at(0).idempotency_key;
  EXPECT_NE(first, second);
  EXPECT_EQ(first.substr(first.find("-lease-")), second.substr(second.find("-lease-")))
      << "same lease number and payer, different ledgers";
}

// Stopping segx does not wait for pending charges.
TEST_F(MarketTest, SettlementStopsBetweenGatewayCallsWhenAsked) {
  const uint64_t a = make_lot(lot_spec());
  const uint64_t b = make_lot(lot_spec());
  ASSERT_TRUE(bid(alice, a, 900, "tok_visa"));
  ASSERT_TRUE(bid(bob, b, 900, "tok_visa"));
  clock_.now = t0 + 601 * s;
  market_->tick(&activator_);
  std::atomic<bool> stop{true};
  EXPECT_EQ(market_->settle(&stop), 0u);
  EXPECT_EQ(gateway_.accepted_charges(), 0u);
  EXPECT_EQ(market_->stats().charges_pending, 2u);
}

}  // namespace
}  // namespace segx::market
