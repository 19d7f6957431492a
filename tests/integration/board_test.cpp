// The web board in a real browser: Debian's headless Chromium driven by Selenium
// (tests/integration/board_browser.py, Debian's /usr/bin/python3). The ledger is prepared
// with the market library so that acme already has a rating; the board must show it on a
// lot, take a bid typed with the keyboard, and list it under the bidder's own bids. A
// second test sells a block that meters the replayed capture: the board's chart of the
// running block must hold the API's points, the provider's view must list the block with
// its chart, and once the block ends the lease's card must show its compliance beside the
// rating form. Screenshots are kept in the build directory (browser/board.png,
// browser/board-block.png and browser/board-block-chart.png, the image
// docs/operator-guide.md shows).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "api_run.hpp"
#include "market/market.hpp"

namespace segx::test {
namespace {

class AtTime final : public market::Clock {
 public:
  int64_t now_ns() const override { return now; }
  int64_t now = 0;
};

/// The same grants for a market the test runs in-process on segx's ledger.
inline market::MarketOptions test_market_options() {
  market::MarketOptions o;
  o.provider_id = "acme";
  o.profiles = {"all"};
  for (const auto& [who, prefix] : test_grants) {
    config::SubscriberConfig sub;
    sub.id = who;
    sub.prefixes.push_back(config::parse_ip_prefix(prefix).value());
    o.subscribers.push_back(sub);
  }
  return o;
}

TEST_F(ApiRun, TheBoardShowsReputationAndTakesAKeyboardBid) {
  const fs::path config = write_config();
  {
    // An auction an hour ago, played with the library on a clock the test sets: alice won,
    // paid, and rated acme positively.
    const int64_t s = 1'000'000'000;
    AtTime clock;
    clock.now = market::SystemClock().now_ns() - 3600 * s;
    auto ledger = ledger::Ledger::open("sqlite:" + (dir_ / "ledger.db").string());
    ASSERT_TRUE(ledger) << ledger.error();
    market::TestGateway gateway;
    auto m = market::Market::open(test_market_options(), *ledger.value(), gateway, clock);
    ASSERT_TRUE(m) << m.error();
    market::LotSpec spec;
    spec.profile = "all";
    spec.closes_ns = clock.now + 10 * s;
    spec.start_ns = clock.now + 20 * s;
    spec.duration_ns = 10 * s;
    auto lot = m.value()->create_lot({"acme", market::Role::provider, ""}, spec);
    ASSERT_TRUE(lot) << lot.error();
    ASSERT_TRUE(m.value()->place_bid(
        {"alice", market::Role::recipient, ""},
        {lot.value(), 100, 1, {market::parse_member("ip:10.0.0.0/8").value()}, "tok_visa"}));
    clock.now += 11 * s;
    m.value()->tick(nullptr);
    m.value()->settle();
    clock.now += 10 * s;  // the block runs ...
    m.value()->tick(nullptr);
    clock.now += 20 * s;  // ... and ends
    m.value()->tick(nullptr);
    const auto leases = m.value()->leases({"root", market::Role::admin, ""});
    ASSERT_EQ(leases.size(), 1u);
    auto rated = m.value()->rate_provider({"alice", market::Role::recipient, ""}, leases[0].id,
                                          true, 5, "fast");
    ASSERT_TRUE(rated) << rated.error();
  }
  const std::string url = start(config);
  json lot =
      request("POST", "/v1/lots", "acme",
              R"({"profile": "all", "closes_in": "30m", "start_in": "1h", "duration": "1h"})", 201);
  EXPECT_EQ(lot["provider_reputation"]["count"], 1);
  const std::string id = std::to_string(lot["id"].get<uint64_t>());

  const char* build = std::getenv("SEGX_BUILD_ROOT");
  const fs::path shots = build ? fs::path(build) / "browser" : dir_.path();
  fs::create_directories(shots);
  const int rc =
      run({"/usr/bin/python3", (source_root() / "tests/integration/board_browser.py").string(),
           "bid", "--url", url, "--token", "carol-t", "--lot", id, "--provider", "acme", "--member",
           "ip:192.0.2.0/24", "--price", "4321", "--screenshot", (shots / "board.png").string()},
          dir_.path(), "browser", std::chrono::seconds(300));
  EXPECT_EQ(rc, 0) << read_file(dir_ / "browser.out") << read_file(dir_ / "browser.err");
  std::printf("%s", read_file(dir_ / "browser.out").c_str());
  // What the browser did is in the market.
  json bids = request("GET", "/v1/bids", "carol", "", 200)["bids"];
  ASSERT_EQ(bids.size(), 1u);
  EXPECT_EQ(bids[0]["price"], 4321);
  EXPECT_EQ(bids[0]["members"][0], "ip:192.0.2.0/24");
}

TEST_F(ApiRun, TheBoardChartsARunningBlockAndShowsItsComplianceBesideTheRatingForm) {
  const std::string url = start(write_config());
  // The capture is replayed without pause (infinite_rx), far above the maximum: the block
  // delivers about its maximum every second and drops the rest as red. The block lasts long
  // enough for Chromium to start and read its chart on a loaded machine.
  json lot = request("POST", "/v1/lots", "acme",
                     R"({"profile": "all", "closes_in": "1s", "start_in": "2s", "duration": "45s",
                         "min_rate": "1Mbit/s", "max_rate": "4Mbit/s"})",
                     201);
  const std::string lot_id = std::to_string(lot["id"].get<uint64_t>());
  request("POST", "/v1/lots/" + lot_id + "/bids", "alice",
          R"({"price": 100, "members": ["ip:10.0.0.0/8"], "payment_token": "tok_visa"})", 201);
  json leases = wait_until("/v1/leases", "alice", [](const json& j) {
    return j["leases"].size() == 1 && j["leases"][0]["state"] != "awarded";
  });
  ASSERT_EQ(leases["leases"].size(), 1u);
  ASSERT_EQ(leases["leases"][0]["state"], "active") << leases.dump();
  const std::string block = leases["leases"][0]["block"];

  const char* build = std::getenv("SEGX_BUILD_ROOT");
  const fs::path shots = build ? fs::path(build) / "browser" : dir_.path();
  fs::create_directories(shots);
  const int rc =
      run({"/usr/bin/python3", (source_root() / "tests/integration/board_browser.py").string(),
           "block", "--url", url, "--token", "alice-t", "--provider-token", "acme-t", "--block",
           block, "--screenshot", (shots / "board-block.png").string(), "--chart-screenshot",
           (shots / "board-block-chart.png").string()},
          dir_.path(), "browser", std::chrono::seconds(400));
  EXPECT_EQ(rc, 0) << read_file(dir_ / "browser.out") << read_file(dir_ / "browser.err");
  std::printf("%s", read_file(dir_ / "browser.out").c_str());

  // What the browser did is in the market: one rating by alice, after a measured block.
  json b = request("GET", "/v1/blocks/" + block, "alice", "", 200);
  EXPECT_EQ(b["state"], "finished");
  EXPECT_GE(b["compliance"]["seconds"].get<int64_t>(), 3) << b.dump();
  EXPECT_GT(b["compliance"]["at_max_seconds"].get<int64_t>(), 0) << b.dump();
  json ratings = request("GET", "/v1/leases/" + b["lease"].dump() + "/ratings", "alice", "", 200);
  ASSERT_EQ(ratings["ratings"].size(), 1u);
  EXPECT_EQ(ratings["ratings"][0]["by"], "alice");
  EXPECT_EQ(ratings["ratings"][0]["score"], 5);
}

}  // namespace
}  // namespace segx::test
