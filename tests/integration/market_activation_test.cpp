// The market drives the real data plane: a lot put up in the ledger closes while segx runs,
// the winner is charged through the test gateway, the lease's block is activated with its
// members and rates, meters the traffic, ends on time, and its usage lands in the ledger.
// `segx ledger verify` then vouches for the chain, and names the event a changed byte hits.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "market/market.hpp"
#include "segx_run.hpp"
#include "support.hpp"

namespace segx::test {
namespace {

using namespace std::chrono_literals;
using market::Actor;
using market::Role;

class MarketActivation : public SegxRun {
 protected:
  // The market as segx.yaml describes it, for the test's own market on the same ledger.
  static market::MarketOptions options() {
    market::MarketOptions o;
    o.provider_id = "acme";
    o.profiles = {"all"};
    config::SubscriberConfig alice, bob;
    alice.id = "alice";
    for (const char* p : {"10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"})
      alice.prefixes.push_back(config::parse_ip_prefix(p).value());
    bob.id = "bob";
    bob.prefixes.push_back(config::parse_ip_prefix("198.51.100.0/24").value());
    o.subscribers = {alice, bob};
    return o;
  }
  std::string config_text() {
    return eal_section({"net_pcap0,rx_pcap=" + (dir_ / "in.pcap").string() + ",infinite_rx=1",
                        "net_pcap1,tx_pcap=" + (dir_ / "out.pcap").string()},
                       "768MiB") +
           "ports:\n  - {name: in, device: net_pcap0}\n  - {name: out, device: net_pcap1, "
           "rx_queues: 0}\n" +
           pipeline_section("    action: forward\n    output: out\n") +
           R"(providers:
  id: acme
profiles:
  - name: all
    metered: true
    unmetered: drop
    segment: {packets: 64}
    output: out
subscribers:
  - {id: alice, prefixes: [10.0.0.0/8, 192.0.2.0/24, 2001:db8::/32]}
  - {id: bob, prefixes: [198.51.100.0/24]}
market:
  ledger: sqlite:)" +
           (dir_ / "ledger.db").string() + "\n";
  }
};

TEST_F(MarketActivation, AnAwardedLeaseIsMeteredForItsBlockAndItsUsageRecorded) {
  generate(2000, 61);
  write_file(dir_ / "segx.yaml", config_text());
  const int64_t s = 1'000'000'000;
  market::SystemClock clock;
  const int64_t now = clock.now_ns();
  {
    // The provider and two recipients, through the library the API will use.
    auto ledger = ledger::Ledger::open("sqlite:" + (dir_ / "ledger.db").string());
    ASSERT_TRUE(ledger) << ledger.error();
    market::TestGateway gateway;
    auto m = market::Market::open(options(), *ledger.value(), gateway, clock);
    ASSERT_TRUE(m) << m.error();
    market::LotSpec spec;
    spec.profile = "all";
    // Generous margins: segx must be running before the block starts, however slow start-up.
    spec.closes_ns = now + 4 * s;
    spec.start_ns = now + 6 * s;
    spec.duration_ns = 3 * s;
    spec.min_rate = 2'000'000;
    spec.max_rate = 8'000'000;
    spec.reserve = 100;
    auto lot = m.value()->create_lot({"acme", Role::provider, ""}, spec);
    ASSERT_TRUE(lot) << lot.error();
    const auto member = [](const char* t) { return market::parse_member(t).value(); };
    ASSERT_TRUE(m.value()->place_bid(
        {"alice", Role::recipient, ""},
        {lot.value(),
         900,
         1,
         {member("ip:10.0.0.0/8"), member("ip:192.0.2.0/24"), member("ip:2001:db8::/32")},
         "tok_visa"}));
    ASSERT_TRUE(
        m.value()->place_bid({"bob", Role::recipient, ""},
                             {lot.value(), 400, 1, {member("ip:198.51.100.0/24")}, "tok_visa"}));
  }

  Process p(segx(dir_ / "segx.yaml", {"--duration", "12"}), dir_.path(), "segx");
  ASSERT_EQ(p.wait(300s), 0) << p.out() << p.err();
  EXPECT_THAT(p.err(), ::testing::HasSubstr("events verified"));
  EXPECT_THAT(p.err(), ::testing::HasSubstr("closed: awarded, 1 lease(s) at 400 EUR per block"));
  EXPECT_THAT(p.err(), ::testing::HasSubstr("active as block lease-1"));
  EXPECT_THAT(p.err(), ::testing::HasSubstr("lease 1 finished"));

  // What segx recorded, read back through the market as a restarted appliance would.
  auto ledger = ledger::Ledger::open("sqlite:" + (dir_ / "ledger.db").string());
  ASSERT_TRUE(ledger);
  market::TestGateway gateway;
  auto m = market::Market::open(options(), *ledger.value(), gateway, clock);
  ASSERT_TRUE(m) << m.error();
  const Actor admin{"root", Role::admin, ""};
  const auto leases = m.value()->leases(admin);
  ASSERT_EQ(leases.size(), 1u);
  const market::Lease& l = leases[0];
  EXPECT_EQ(l.bidder, "alice");
  EXPECT_EQ(l.unit_price, 400);
  EXPECT_EQ(l.state, market::LeaseState::finished);
  const auto charges = m.value()->charges(admin, l.id);
  ASSERT_EQ(charges.size(), 1u);
  EXPECT_EQ(charges[0].result, market::ChargeResult::accepted);

  // The block ran for its duration and carried exactly what came out of the output port.
  // Active for about its 3 s: the control loop starts and ends it on its next turn, a little
  // late on a busy machine (the figure is printed, the bounds are loose).
  std::printf("market: lease block active %.3f s, %lu green and %lu yellow packets\n",
              static_cast<double>(l.usage.active_ns) / 1e9, l.usage.packets[0], l.usage.packets[1]);
  EXPECT_GT(l.usage.active_ns, 3 * s / 2);
  EXPECT_LT(l.usage.active_ns, 5 * s);
  const auto out = read_pcap_records(dir_ / "out.pcap");
  ASSERT_GT(out.size(), 100u) << "the lease's block let nothing through";
  EXPECT_EQ(l.usage.packets[0] + l.usage.packets[1], out.size());
  EXPECT_GT(l.usage.packets[2], 0u) << "traffic was offered far above the maximum rate";
  EXPECT_EQ(l.usage.member_bytes.size(), 3u);
  auto r = report();
  EXPECT_EQ(r["market"]["leases"], 1);
  EXPECT_EQ(r["market"]["charges"]["accepted"], 1);
  EXPECT_EQ(r["mempool"]["in_use"], 0);

  // The winner rates the provider with the block's usage as evidence.
  auto rating = m.value()->rate_provider({"alice", Role::recipient, ""}, l.id, true, 5, "fine");
  ASSERT_TRUE(rating) << rating.error();
  // Closing the last connection folds the WAL into the main file, which the test edits next.
  m.value().reset();
  ledger.value().reset();

  Process ok(
      {segx_binary().string(), "ledger", "verify", "--config", (dir_ / "segx.yaml").string()},
      dir_.path(), "verify");
  ASSERT_EQ(ok.wait(60s), 0) << ok.out() << ok.err();
  EXPECT_THAT(ok.out(), ::testing::HasSubstr("chain intact"));

  // Change alice's winning bid from 900 to 990 in the file: verify names that event (the
  // bid is event 3, after the market's id and the lot).
  std::string db = read_file(dir_ / "ledger.db");
  const size_t at = db.find("\"price\":900");
  ASSERT_NE(at, std::string::npos);
  db[at + 9] = '9';
  write_file(dir_ / "ledger.db", db);
  Process broken(
      {segx_binary().string(), "ledger", "verify", "--config", (dir_ / "segx.yaml").string()},
      dir_.path(), "verify-broken");
  EXPECT_EQ(broken.wait(60s), 5) << broken.out() << broken.err();
  EXPECT_THAT(broken.out(), ::testing::HasSubstr("BROKEN at event 3"));
  // segx will not extend a broken chain.
  Process refused(segx(dir_ / "segx.yaml", {"--duration", "1"}), dir_.path(), "segx-refused");
  EXPECT_EQ(refused.wait(60s), 3);
  EXPECT_THAT(refused.err(), ::testing::HasSubstr("fails verification"));
}

}  // namespace
}  // namespace segx::test
