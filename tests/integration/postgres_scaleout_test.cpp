// Several appliances, one market, one PostgreSQL ledger: a moderator and an appliance, both
// carrying traffic of one block's members. The moderator is killed with SIGKILL while the
// auction is open and started again; nothing acknowledged is lost, the lot closes, both
// appliances meter the block at half its rates, and the lease's usage is the sum of both.
// Suite postgres: SEGX_TEST_POSTGRES names the server (scripts/test.sh starts one).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "../unit/ledger/test_journal.hpp"
#include "api_run.hpp"
#include "market/market.hpp"
#include "segx_run.hpp"
#include "support.hpp"

namespace segx::test {
namespace {

using namespace std::chrono_literals;
using market::Actor;
using market::Role;

class PostgresScaleOut : public SegxRun {
 protected:
  void TearDown() override {
    SegxRun::TearDown();
    remove_dpdk_runtime(prefix_b_);
  }

  // A config for one appliance: its own capture in and out, its own DPDK prefix.
  std::string config(const std::string& name, const std::string& role, const std::string& prefix,
                     const std::string& url) {
    std::string eal =
        eal_section({"net_pcap0,rx_pcap=" + (dir_ / "in.pcap").string() + ",infinite_rx=1",
                     "net_pcap1,tx_pcap=" + (dir_ / (name + "-out.pcap")).string()},
                    "768MiB");
    eal.replace(eal.find(prefix_), prefix_.size(), prefix);
    return eal +
           "ports:\n  - {name: in, device: net_pcap0}\n  - {name: out, device: net_pcap1, "
           "rx_queues: 0}\n" +
           pipeline_section("    action: forward\n    output: out\n") +
           "providers:\n  id: acme\nprofiles:\n  - name: all\n    metered: true\n    unmetered: "
           "drop\n    segment: {packets: 64}\n    output: out\n" +
           grants_yaml + "market:\n  role: " + role + "\n  appliance: " + name +
           "\n  rate_share: 0.5\n  ledger: " + url + "\n" +
           (role == "moderator" ? "  api:\n    listen: 127.0.0.1:0\n    tokens:\n"
                                  "      - {principal: dave, role: recipient, sha256: " +
                                      sha256_hex("dave-t") +
                                      "}\n      - {principal: erin, role: recipient, sha256: " +
                                      sha256_hex("erin-t") + "}\n"
                                : "");
  }

  // Who holds which addresses, in the configuration and in the test's own market.
  static inline const std::vector<std::pair<std::string, std::vector<std::string>>> holders = {
      {"alice", {"10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"}},
      {"bob", {"203.0.113.0/25"}},
      {"carol", {"203.0.113.128/25"}},
      {"dave", {"198.51.100.0/25"}},
      {"erin", {"198.51.100.128/25"}}};
  static std::vector<config::SubscriberConfig> grants() {
    std::vector<config::SubscriberConfig> out;
    for (const auto& [who, prefixes] : holders) {
      config::SubscriberConfig sub;
      sub.id = who;
      for (const auto& p : prefixes)
        sub.prefixes.push_back(config::parse_ip_prefix(p).value());
      out.push_back(sub);
    }
    return out;
  }
  const std::string grants_yaml = [] {
    std::string y = "subscribers:\n";
    for (const auto& [who, prefixes] : holders) {
      y += "  - {id: " + who + ", prefixes: [";
      for (size_t i = 0; i < prefixes.size(); ++i)
        y += (i ? ", " : "") + prefixes[i];
      y += "]}\n";
    }
    return y;
  }();

  std::string prefix_b_ = unique_prefix("scaleout-b");
};

TEST_F(PostgresScaleOut, ModeratorKilledMidAuctionLosesNothingAndUsageSumsOverAppliances) {
  TestJournal journal(dir_);
  ASSERT_TRUE(journal.postgres()) << "run in suite postgres (SEGX_TEST_BACKEND=postgres)";
  generate(2000, 71);
  write_file(dir_ / "a.yaml", config("edge-1", "moderator", prefix_, journal.url()));
  write_file(dir_ / "b.yaml", config("edge-2", "appliance", prefix_b_, journal.url()));

  const int64_t s = 1'000'000'000;
  market::SystemClock clock;
  const int64_t now = clock.now_ns();
  market::MarketOptions o;
  o.provider_id = "acme";
  o.profiles = {"all"};
  o.role = market::MarketRole::moderator;
  o.appliance = "edge-1";
  o.subscribers = grants();
  std::vector<uint64_t> acknowledged;
  uint64_t lot = 0;
  {
    // The provider's lot and three bids, acknowledged (durable) before anything runs.
    auto ledger = ledger::Ledger::open(journal.url());
    ASSERT_TRUE(ledger) << ledger.error();
    market::TestGateway gateway;
    auto m = market::Market::open(o, *ledger.value(), gateway, clock);
    ASSERT_TRUE(m) << m.error();
    market::LotSpec spec;
    spec.profile = "all";
    // Generous margins: both appliances run before the lot closes, however slow start-up.
    spec.closes_ns = now + 12 * s;
    spec.start_ns = now + 16 * s;
    spec.duration_ns = 4 * s;
    spec.min_rate = 4'000'000;
    spec.max_rate = 16'000'000;
    spec.reserve = 100;
    lot = m.value()->create_lot({"acme", Role::provider, ""}, spec).value();
    const auto member = [](const char* t) { return market::parse_member(t).value(); };
    for (const char* who : {"alice", "bob", "carol"}) {
      auto b = m.value()->place_bid(
          {who, Role::recipient, ""},
          {lot, who[0] == 'a' ? 900 : 300 + static_cast<int64_t>(who[0]), 1,
           who[0] == 'a' ? std::vector<config::MemberConfig>{member("ip:10.0.0.0/8"),
                                                             member("ip:192.0.2.0/24"),
                                                             member("ip:2001:db8::/32")}
                         : std::vector<config::MemberConfig>{member(
                               who[0] == 'b' ? "ip:203.0.113.0/25" : "ip:203.0.113.128/25")},
           "tok_visa"});
      ASSERT_TRUE(b) << b.error();
      acknowledged.push_back(b.value().id);
    }
  }

  Process b(segx(dir_ / "b.yaml", {"--duration", "36"}), dir_.path(), "segx-b");
  {
    Process a(segx(dir_ / "a.yaml", {"--duration", "60"}), dir_.path(), "segx-a-killed");
    ASSERT_TRUE(a.wait_for_output("running with", 120s, /*stderr=*/true)) << a.out() << a.err();
    // Two more bids through the moderator's API while the auction is open: acknowledged
    // (201) only once durable in PostgreSQL.
    std::smatch m;
    const std::string out = a.err();
    ASSERT_TRUE(std::regex_search(out, m, std::regex("api: http://127.0.0.1:([0-9]+)/v1"))) << out;
    httplib::Client c("127.0.0.1", std::stoi(m[1].str()));
    c.set_read_timeout(30);
    for (const char* who : {"dave", "erin"}) {
      const nlohmann::json body = {
          {"price", who[0] == 'd' ? 500 : 450},
          {"members", {who[0] == 'd' ? "ip:198.51.100.0/25" : "ip:198.51.100.128/25"}},
          {"payment_token", "tok_visa"}};
      auto r = c.Post(("/v1/lots/" + std::to_string(lot) + "/bids").c_str(),
                      httplib::Headers{{"Authorization", std::string("Bearer ") + who + "-t"}},
                      body.dump(), "application/json");
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 201) << r->body;
      acknowledged.push_back(nlohmann::json::parse(r->body)["id"].get<uint64_t>());
    }
    // Killed mid-auction, with no chance to write anything more.
    a.signal(SIGKILL);
    a.wait(60s);
  }
  remove_dpdk_runtime(prefix_);
  // The report goes to its own file, so the killed run's cannot be mistaken for it.
  auto argv = segx(dir_ / "a.yaml", {"--duration", "30"});
  Process a(argv, dir_.path(), "segx-a");
  ASSERT_EQ(a.wait(300s), 0) << a.out() << a.err();
  ASSERT_EQ(b.wait(300s), 0) << b.out() << b.err();
  EXPECT_THAT(a.err(), ::testing::HasSubstr("closed: awarded"));
  EXPECT_THAT(b.err(),
              ::testing::HasSubstr("appliance 'edge-2' on a shared ledger, enforcing 50%"));
  EXPECT_THAT(b.err(), ::testing::HasSubstr("lease 1 finished"));

  // Read back what both wrote, as the moderator sees it.
  auto ledger = ledger::Ledger::open(journal.url());
  ASSERT_TRUE(ledger);
  market::TestGateway gateway;
  auto m = market::Market::open(o, *ledger.value(), gateway, clock);
  ASSERT_TRUE(m) << m.error();
  const Actor admin{"root", Role::admin, ""};
  const auto bids = m.value()->bids(admin, lot);
  ASSERT_TRUE(bids);
  std::vector<uint64_t> present;
  for (const auto& v : bids.value())
    present.push_back(v.bid.id);
  EXPECT_EQ(present, acknowledged) << "an acknowledged bid was lost";
  const auto leases = m.value()->leases(admin);
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0].bidder, "alice");
  EXPECT_EQ(m.value()->charges(admin, leases[0].id).size(), 1u)
      << "charged once, not per appliance";

  // Each appliance's usage event, and its own output capture.
  std::map<std::string, uint64_t> passed;
  ASSERT_TRUE(ledger.value()->scan(1, [&](const ledger::Event& e) {
    if (e.type != "usage") return true;
    const auto j = nlohmann::json::parse(e.body);
    const auto& p = j["usage"]["packets"];
    passed[j["appliance"]] += p[0].get<uint64_t>() + p[1].get<uint64_t>();
    return true;
  }));
  ASSERT_EQ(passed.size(), 2u) << "both appliances report usage";
  for (const auto& [name, packets] : passed) {
    const auto out = read_pcap_records(dir_ / (name + "-out.pcap"));
    EXPECT_GT(packets, 0u) << name;
    EXPECT_EQ(packets, out.size()) << name << ": what its meter passed is what it sent";
  }
  const auto& u = leases[0].usage;
  EXPECT_EQ(u.packets[0] + u.packets[1], passed["edge-1"] + passed["edge-2"]);
  std::printf("scale-out: edge-1 passed %lu packets, edge-2 %lu, lease total %lu\n",
              passed["edge-1"], passed["edge-2"], u.packets[0] + u.packets[1]);
  const auto v = ledger.value()->verify();
  EXPECT_TRUE(v.ok) << v.reason;
}

}  // namespace
}  // namespace segx::test
