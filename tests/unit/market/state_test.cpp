// One state machine: for random command sequences (every format, groups, pledges,
// withdrawals, cancels, ratings, ticks, settlement, a data plane that refuses blocks, a
// gateway that errs, and commits that fail), the state the market holds after running them
// equals, field by field, the state a fresh market rebuilds by replaying the journal. A
// failed commit leaves nothing behind (issue 14, problem 5).
#include "market/state.hpp"

#include <random>
#include <sstream>

#include "market_fixture.hpp"

namespace segx::market {
namespace {

using nlohmann::json;

// Everything the state holds, in a canonical order (the counter of applied events aside: a
// live market applies its events once more to its live copy).
std::string dump(const State& st) {
  json j;
  j["market_id"] = st.market_id;
  j["next_id"] = st.next_id;
  j["next_lease"] = st.next_lease;
  const auto members = [](const std::vector<config::MemberConfig>& ms) {
    json a = json::array();
    for (const auto& m : ms)
      a.push_back(format_member(m));
    return a;
  };
  for (const auto& [id, l] : st.lots) {
    const LotSpec& p = l.spec;
    j["lots"].push_back({id,
                         l.provider,
                         l.created_ns,
                         l.closes_ns,
                         lot_state_name(l.state),
                         outcome_name(l.outcome),
                         l.clearing_price,
                         l.bids,
                         l.leader,
                         l.leading_price,
                         l.excluded,
                         p.profile,
                         p.start_ns,
                         p.duration_ns,
                         p.min_rate,
                         p.max_rate,
                         p.max_members,
                         p.quantity,
                         p.reserve,
                         p.max_price,
                         format_name(p.format),
                         p.closes_ns,
                         p.soft_close_ns,
                         p.max_extension_ns,
                         p.increment,
                         p.min_recipient_wilson,
                         p.min_recipient_ratings});
  }
  std::map<uint64_t, const Bid*> bids;
  for (const auto& [id, b] : st.bids)
    bids[id] = &b;
  for (const auto& [id, b] : bids)
    j["bids"].push_back({id, b->lot, b->bidder, b->device, b->price, b->quantity,
                         members(b->members), b->token_fp, b->time_ns, b->group});
  for (const auto& [id, g] : st.groups) {
    json gm = json::array();
    for (const auto& m : g.members)
      gm.push_back({m.principal, members(m.members)});
    json pl = json::object();
    for (const auto& [who, p] : g.pledges)
      pl[who] = {p.amount, p.token_fp};
    j["groups"].push_back({id, g.lot, g.organizer, gm, pl});
  }
  for (const auto& [id, l] : st.leases) {
    json usage = {l.usage.active_ns, l.usage.packets, l.usage.bytes, l.usage.member_bytes};
    j["leases"].push_back({id,
                           l.lot,
                           l.bid,
                           l.provider,
                           l.bidder,
                           l.recipients,
                           l.units,
                           l.unit_price,
                           l.profile,
                           l.start_ns,
                           l.end_ns,
                           l.min_rate,
                           l.max_rate,
                           members(l.members),
                           lease_state_name(l.state),
                           usage,
                           l.charges,
                           l.awarded_ns,
                           l.ran,
                           l.activation_error,
                           l.failure});
  }
  for (const Charge& c : st.charges)
    j["charges"].push_back({c.id, c.lease, c.payer, c.amount, c.token_ref, c.token_fp,
                            c.idempotency_key, charge_result_name(c.result), c.reference, c.reason,
                            c.attempts, c.created_ns, refund_state_name(c.refund),
                            c.refund_reference, c.refund_reason});
  for (const auto& [id, r] : st.ratings)
    j["ratings"].push_back({id, r.lease, r.kind == RatingKind::provider, r.by, r.of, r.device,
                            r.positive, r.score, r.comment, r.time_ns});
  j["ratings_of"] = st.ratings_of;
  j["ratings_of_lease"] = st.ratings_of_lease;
  for (const auto& [k, v] : st.provider_rated)
    j["provider_rated"].push_back({k.first, k.second, v});
  for (const auto& [k, v] : st.recipient_rating)
    j["recipient_rating"].push_back({k.first, k.second, v});
  j["noted"] = st.noted;
  j["lease_of_bid"] = std::map<uint64_t, uint64_t>(st.lease_of_bid.begin(), st.lease_of_bid.end());
  j["leases_of"] = st.leases_of;
  j["bids_by"] = std::map<std::string, std::vector<uint64_t>>(st.bids_by.begin(), st.bids_by.end());
  j["lots_of"] = st.lots_of;
  j["open_lots"] = st.open_lots;
  j["live_leases"] = st.live_leases;
  j["due_charges"] = st.due_charges;
  j["due_refunds"] = st.due_refunds;
  j["legacy_tokens"] = st.legacy_tokens;
  return j.dump();
}

// A memory store that fails the appends a test chooses: a disk that fills up or a lock
// another process holds, at a moment the test decides (LevelDB's fault-injection Env).
class FaultyStorage final : public ledger::Storage {
 public:
  explicit FaultyStorage(std::unique_ptr<ledger::Storage> inner) : inner_(std::move(inner)) {}
  Result<ledger::Head> head() override { return inner_->head(); }
  Status append(std::span<ledger::Event> events) override {
    if (fail_next > 0) {
      --fail_next;
      return Error{"injected: disk full", ErrorKind::internal};
    }
    return inner_->append(events);
  }
  Status scan(uint64_t from, const std::function<bool(const ledger::Event&)>& fn) override {
    return inner_->scan(from, fn);
  }
  Result<std::optional<std::string>> secret(const std::string& name) override {
    return inner_->secret(name);
  }
  Status probe() override { return {}; }
  std::string describe() const override { return "faulty memory"; }
  std::atomic<int> fail_next{0};

 private:
  std::unique_ptr<ledger::Storage> inner_;
};

struct Sequence {
  std::mt19937_64 rng;
  FakeClock clock;
  TestGateway gateway;
  RecordingActivator activator;
  FaultyStorage* storage = nullptr;
  std::unique_ptr<ledger::Ledger> ledger;
  std::unique_ptr<Market> market;
  std::vector<uint64_t> lots, groups, leases;
  size_t failures = 0;

  explicit Sequence(uint64_t seed) : rng(seed) {
    auto faulty = std::make_unique<FaultyStorage>(ledger::open_storage("memory:").value());
    storage = faulty.get();
    ledger::LedgerOptions lo;
    lo.timeout = std::chrono::milliseconds(0);
    ledger = ledger::Ledger::open(std::move(faulty), lo).value();
    MarketOptions o = test_options();
    o.bids_per_lot = 6;
    o.activation_attempts = 2;
    o.settlement_deadline_ns = 40 * s;
    market = Market::open(o, *ledger, gateway, clock).value();
  }

  uint64_t pick(const std::vector<uint64_t>& v) {
    return v.empty() ? 1 + rng() % 20 : v[rng() % v.size()];
  }
  const Actor& someone() {
    static const Actor* all[] = {&alice, &bob,   &carol,       &dave,
                                 &eve,   &frank, &alice_phone, &provider};
    return *all[rng() % std::size(all)];
  }
  Money price() {
    switch (rng() % 6) {
      case 0:
        return 0;
      case 1:
        return max_money - static_cast<Money>(rng() % 3);
      case 2:
        return 3'689'348'814'741'910'324;
      default:
        return static_cast<Money>(rng() % 2000);
    }
  }
  std::string token() {
    static const char* t[] = {
        "tok_visa", "tok_decline", "tok_error", "tok_error_once", "tok_insufficient_funds", ""};
    return t[rng() % std::size(t)];
  }
  std::vector<config::MemberConfig> members(const Actor& who) {
    switch (rng() % 5) {
      case 0:
        return {member("device:tablet")};
      case 1:
        return {own_ip(bob, static_cast<int>(rng() % 3))};
      default:
        return {own_ip(who, static_cast<int>(rng() % 3))};
    }
  }

  void step() {
    // Sometimes the store fails the next commit.
    if (rng() % 12 == 0) storage->fail_next = 1;
    const Actor& who = someone();
    switch (rng() % 11) {
      case 0: {
        LotSpec spec;
        spec.profile = rng() % 5 ? "web" : "video";
        spec.format = static_cast<Format>(rng() % 3);
        spec.quantity = spec.format == Format::uniform ? 1 + rng() % 3 : 1;
        spec.closes_ns = clock.now + static_cast<int64_t>(1 + rng() % 20) * s;
        if (spec.format == Format::ascending) {
          spec.soft_close_ns = static_cast<int64_t>(rng() % 5) * s;
          spec.max_extension_ns = static_cast<int64_t>(rng() % 10) * s;
          spec.increment = 1 + static_cast<Money>(rng() % 20);
        }
        spec.start_ns = spec.closes_ns + 10 * s + static_cast<int64_t>(rng() % 10) * s;
        spec.duration_ns = static_cast<int64_t>(1 + rng() % 20) * s;
        spec.reserve = static_cast<Money>(rng() % 3) * 100;
        if (auto id = market->create_lot(rng() % 8 ? provider : who, spec))
          lots.push_back(id.value());
        break;
      }
      case 1:
      case 2:
      case 3:
        (void)market->place_bid(who, {pick(lots), price(), static_cast<uint32_t>(1 + rng() % 2),
                                      members(who), token()});
        break;
      case 4: {
        GroupSpec g;
        g.lot = pick(lots);
        g.price = price();
        g.quantity = 1;
        g.members = {{who.principal(), members(who)}, {"eve", {own_ip(eve)}}};
        if (auto r = market->create_group(who, g)) groups.push_back(r.value().id);
        break;
      }
      case 5:
        (void)market->pledge(rng() % 2 ? who : eve, pick(groups), price(), token());
        break;
      case 6:
        (void)market->withdraw_pledge(rng() % 2 ? who : eve, pick(groups));
        break;
      case 7:
        (void)market->cancel_lot(rng() % 2 ? provider : who, pick(lots));
        break;
      case 8: {
        for (const Lease& l : market->leases(admin))
          leases.push_back(l.id);
        (void)market->rate_provider(who, pick(leases), rng() % 2, static_cast<uint8_t>(rng() % 6),
                                    "fine");
        (void)market->note_recipient(provider, pick(leases), who.principal(), "noted");
        break;
      }
      default:
        clock.now += static_cast<int64_t>(rng() % 8) * s;
        activator.fail = rng() % 4 == 0;
        gateway.error_all(rng() % 5 == 0);
        market->tick(&activator);
        market->settle();
        break;
    }
  }

  // Every block's time passes with a working data plane and gateway: nothing stays active,
  // so a fresh market opening the journal has nothing to interrupt.
  void finish() {
    storage->fail_next = 0;
    activator.fail = false;
    gateway.error_all(false);
    for (int i = 0; i < 8; ++i) {
      clock.now += 30 * s;
      market->tick(&activator);
      market->settle();
    }
  }
};

TEST(StateMachine, LiveStateEqualsTheReplayedJournalOver1000RandomSequences) {
  size_t events = 0, rolled_back = 0, leases = 0, failed_leases = 0, refunds = 0;
  for (uint64_t seed = 1; seed <= 1000; ++seed) {
    Sequence run(seed);
    const int steps = 60 + static_cast<int>(run.rng() % 60);
    for (int i = 0; i < steps; ++i)
      run.step();
    run.finish();
    const State live = run.market->snapshot();
    TestGateway g;
    auto replayed = Market::open(test_options(), *run.ledger, g, run.clock);
    ASSERT_TRUE(replayed) << "seed " << seed << ": " << replayed.error();
    const State again = replayed.value()->snapshot();
    ASSERT_EQ(dump(live), dump(again)) << "seed " << seed;
    ASSERT_TRUE(run.ledger->verify().ok) << "seed " << seed;
    events += live.applied;
    const MarketStats st = run.market->stats();
    rolled_back += st.rolled_back;
    leases += st.leases;
    failed_leases += st.failed_leases;
    refunds += st.refunds_accepted;
  }
  // The sequences reached the paths that matter.
  EXPECT_GT(rolled_back, 1000u);
  EXPECT_GT(leases, 500u);
  EXPECT_GT(failed_leases, 100u);
  EXPECT_GT(refunds, 50u);
  std::printf(
      "  1000 sequences: %zu events, %zu rolled back, %zu leases, %zu failed, %zu refunds\n",
      events, rolled_back, leases, failed_leases, refunds);
}

// Issue 14, problem 5: with the ledger locked by another process, the API answered 503 but
// the bid stayed in memory, blocked the retry (409), and its id went to another bid after a
// restart.
TEST_F(MarketTest, AFailedCommitLeavesNothingBehindAndBurnsNoId) {
  if (journal_.postgres()) GTEST_SKIP() << "the lock is SQLite's";
  const uint64_t lot = make_lot(lot_spec());
  // Another process holds the file's write lock.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(journal_.file().c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto failed = bid(alice, lot, 900);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error_kind(), ErrorKind::unavailable);
  EXPECT_TRUE(market_->bids(admin, lot).value().empty()) << "nothing in memory";
  EXPECT_FALSE(ledger_->health().ok);
  EXPECT_EQ(ledger_->stats().commit_failures, 1u);
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  // The retry is a first bid, not a second sealed one, and takes the id the failure did not.
  auto retried = bid(alice, lot, 900);
  ASSERT_TRUE(retried) << retried.error();
  EXPECT_EQ(retried.value().id, lot + 1);
  EXPECT_TRUE(ledger_->health().ok);
  auto next = bid(bob, lot, 800);
  ASSERT_TRUE(next);
  EXPECT_EQ(next.value().id, lot + 2);
  // After a restart every id is where it was.
  reopen();
  const auto bids = market_->bids(admin, lot).value();
  ASSERT_EQ(bids.size(), 2u);
  EXPECT_EQ(bids[0].bid.id, lot + 1);
  EXPECT_EQ(bids[0].bid.bidder, "alice");
  EXPECT_EQ(bids[1].bid.id, lot + 2);
  EXPECT_EQ(bid(carol, lot, 700).value().id, lot + 3);
  EXPECT_TRUE(ledger_->verify().ok);
}

}  // namespace
}  // namespace segx::market
