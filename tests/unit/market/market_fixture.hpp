#pragma once
// What the market's tests share: a clock the test moves, an activator that records what the
// market asks of the data plane, the principals and the identifiers each holds, and a
// fixture with a market on a real journal (SQLite, or PostgreSQL in suite postgres).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "../ledger/test_journal.hpp"
#include "market/market.hpp"
#include "support.hpp"

namespace segx::market {

constexpr int64_t s = 1'000'000'000;
constexpr int64_t t0 = 1'800'000'000 * s;  // some time in 2027

class FakeClock final : public Clock {
 public:
  int64_t now_ns() const override { return now; }
  int64_t now = t0;
};

// Records what the market asks of the data plane, and answers usage as a data plane would.
class RecordingActivator final : public Activator {
 public:
  Status activate(const BlockRequest& b) override {
    ++attempts;
    if (fail) return Error{"no metered profile"};
    active[b.id] = b;
    activations.push_back(b);
    return {};
  }
  Result<Usage> deactivate(const std::string& id) override {
    if (!active.erase(id)) return Error{"no block " + id};
    Usage u;
    u.active_ns = 60 * s;
    u.packets[0] = 1000;
    u.bytes[0] = 1'000'000;
    u.bytes[1] = 5000;
    u.member_bytes["ip 10.1.0.5/32"] = {1'000'000, 5000, 0};
    return u;
  }
  std::map<std::string, BlockRequest> active;
  std::vector<BlockRequest> activations;
  bool fail = false;
  int attempts = 0;
};

inline config::MemberConfig ip(const std::string& text) {
  return parse_member("ip:" + text).value();
}
inline config::MemberConfig member(const std::string& text) {
  return parse_member(text).value();
}

inline const Actor provider{"acme", Role::provider, ""};
inline const Actor admin{"root", Role::admin, ""};
inline const Actor alice{"alice", Role::recipient, ""};
inline const Actor bob{"bob", Role::recipient, ""};
inline const Actor carol{"carol", Role::recipient, ""};
inline const Actor dave{"dave", Role::recipient, ""};
inline const Actor eve{"eve", Role::recipient, ""};
inline const Actor frank{"frank", Role::recipient, ""};
inline const Actor gina{"gina", Role::recipient, ""};
inline const Actor alice_phone{"alice-phone", Role::device, "alice"};
inline const Actor bob_phone{"bob-phone", Role::device, "bob"};
inline const Actor acme_staff{"acme-ops", Role::recipient, "acme"};

/// The recipients of the tests and what each holds: 10.1.<n>.0/24 granted to the n-th, and
/// alice's devices "tablet" (10.9.0.7, +4930123456) and "alice-laptop" (10.1.1.77, a MAC and
/// VLAN 100).
inline std::vector<config::SubscriberConfig> test_subscribers() {
  std::vector<config::SubscriberConfig> out;
  const std::vector<std::string> names = {
      "alice", "bob",  "carol",    "dave", "eve",
      "frank", "gina", "acme-ops", "odd",  "we\"ird\\name\ttab"};
  for (size_t i = 0; i < names.size(); ++i) {
    config::SubscriberConfig sub;
    sub.id = names[i];
    sub.prefixes.push_back(
        config::parse_ip_prefix("10.1." + std::to_string(i + 1) + ".0/24").value());
    out.push_back(sub);
  }
  config::DeviceConfig tablet;
  tablet.id = "tablet";
  tablet.ips.push_back(config::parse_ip_prefix("10.9.0.7").value());
  tablet.phones.push_back("+4930123456");
  out[0].devices.push_back(tablet);
  config::DeviceConfig laptop;
  laptop.id = "alice-laptop";
  laptop.ips.push_back(config::parse_ip_prefix("10.1.1.77").value());
  laptop.macs.push_back(config::parse_mac("02:00:00:00:0a:01").value());
  laptop.vlans.push_back(100);
  out[0].devices.push_back(laptop);
  return out;
}

/// An address inside what `who` holds (10.1.<n>.5/32).
inline config::MemberConfig own_ip(const Actor& who, int host = 5) {
  const auto subs = test_subscribers();
  for (size_t i = 0; i < subs.size(); ++i)
    if (subs[i].id == who.principal())
      return ip("10.1." + std::to_string(i + 1) + "." + std::to_string(host) + "/32");
  return ip("192.0.2." + std::to_string(host) + "/32");  // held by nobody
}

inline MarketOptions test_options() {
  MarketOptions o;
  o.provider_id = "acme";
  o.currency = "EUR";
  o.profiles = {"web", "voice"};
  o.bids_per_lot = 5;
  o.activation_attempts = 3;
  o.subscribers = test_subscribers();
  return o;
}

class MarketTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }

  void reopen(MarketOptions o = test_options()) {
    market_.reset();
    ledger_.reset();
    ledger::LedgerOptions lo;
    lo.timeout = std::chrono::milliseconds(300);
    auto l = ledger::Ledger::open(journal_.url(), lo);
    ASSERT_TRUE(l) << l.error();
    ledger_ = std::move(l).value();
    options_ = o;
    auto m = Market::open(o, *ledger_, gateway_, clock_);
    ASSERT_TRUE(m) << m.error();
    market_ = std::move(m).value();
  }

  LotSpec lot_spec(Format f = Format::second_price, uint32_t quantity = 1) {
    LotSpec l;
    l.profile = "web";
    l.format = f;
    l.quantity = quantity;
    l.closes_ns = t0 + 600 * s;
    l.start_ns = t0 + 3600 * s;
    l.duration_ns = 3600 * s;
    l.min_rate = 10'000'000;
    l.max_rate = 50'000'000;
    l.reserve = 100;
    l.max_members = 4;
    return l;
  }

  uint64_t make_lot(const LotSpec& spec) {
    auto id = market_->create_lot(provider, spec);
    EXPECT_TRUE(id) << id.error();
    return id ? id.value() : 0;
  }

  Result<Bid> bid(const Actor& who, uint64_t lot, Money price,
                  const std::string& token = "tok_accept", uint32_t quantity = 1,
                  std::vector<config::MemberConfig> members = {}) {
    if (members.empty()) members.push_back(own_ip(who));
    return market_->place_bid(who, {lot, price, quantity, members, token});
  }

  // Moves the clock and runs the control loop's work.
  void at(int64_t when) {
    clock_.now = when;
    market_->tick(&activator_);
    market_->settle();
    market_->tick(&activator_);
  }

  // One finished second-price lease won by alice at 700: returns the lease id.
  uint64_t finished_lease() {
    const uint64_t lot = make_lot(lot_spec());
    EXPECT_TRUE(bid(alice, lot, 900));
    EXPECT_TRUE(bid(bob, lot, 700));
    at(t0 + 601 * s);
    at(t0 + 3600 * s);
    at(t0 + 7200 * s);
    auto ls = market_->leases(admin);
    EXPECT_EQ(ls.size(), 1u);
    return ls.empty() ? 0 : ls.back().id;
  }

  // Every event type in the journal, in order.
  std::vector<std::string> journal_types() {
    std::vector<std::string> out;
    EXPECT_TRUE(ledger_->scan(1, [&](const ledger::Event& e) {
      out.push_back(e.type);
      return true;
    }));
    return out;
  }

  test::TempDir dir_;
  test::TestJournal journal_{dir_};
  FakeClock clock_;
  TestGateway gateway_;
  RecordingActivator activator_;
  MarketOptions options_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<Market> market_;
};

}  // namespace segx::market
