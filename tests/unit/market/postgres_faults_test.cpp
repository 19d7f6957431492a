// Suite postgres: the market on a PostgreSQL ledger whose server fails under load (issue 15,
// problem 5). A private server (scripts/postgres-server.sh) is stopped at once and started
// again while four clients bid, then frozen (SIGSTOP) and thawed: every acknowledged bid is
// in the journal afterwards, writes resume without a restart, and no caller waits past the
// ledger's timeout (plus its second) for an answer.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "market_fixture.hpp"

namespace segx::market {
namespace {

using namespace std::chrono_literals;

std::string script() {
  const char* root = std::getenv("SEGX_SOURCE_ROOT");
  return std::string(root ? root : ".") + "/scripts/postgres-server.sh";
}

int run(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

class PostgresFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    chmod(dir_.path().c_str(), 0711);  // the server runs as 'postgres' when we are root
    pg_ = (dir_ / "pg").string();
    const std::string out = (dir_ / "url").string();
    ASSERT_EQ(run(script() + " start " + pg_ + " > " + out), 0);
    std::ifstream in(out);
    std::getline(in, url_);
    ASSERT_FALSE(url_.empty());
  }
  void TearDown() override {
    signal_server("CONT");  // if the test failed while the server was frozen
    run(script() + " stop " + pg_);
  }

  // The server's processes: the postmaster and its children.
  void signal_server(const char* sig) {
    run(std::string("pid=$(head -1 ") + pg_ + "/data/postmaster.pid 2>/dev/null) && kill -" + sig +
        " $(pgrep -P $pid) $pid 2>/dev/null");
  }

  // Each client bids at most every 2 ms over about 20 s: fewer than 10,000 each.
  static constexpr int bids_per_client = 12'000;
  static MarketOptions options() {
    MarketOptions o = test_options();
    o.bids_per_lot = 1'000'000;
    for (int t = 0; t < 4; ++t)
      for (int i = 0; i < bids_per_client; ++i) {
        config::SubscriberConfig sub;
        sub.id = "c" + std::to_string(t) + "-" + std::to_string(i);
        sub.prefixes.push_back(config::parse_ip_prefix(address(t, i)).value());
        o.subscribers.push_back(sub);
      }
    return o;
  }
  static std::string address(int t, int i) {
    return "10." + std::to_string(50 + t) + "." + std::to_string(i / 256) + "." +
           std::to_string(i % 256);
  }

  test::TempDir dir_;
  std::string pg_, url_;
};

TEST_F(PostgresFaults, AStoppedOrFrozenServerLosesNothingAcknowledgedAndStallsNoCaller) {
  ledger::LedgerOptions lo;
  lo.timeout = 1s;
  auto l = ledger::Ledger::open(url_, lo);
  ASSERT_TRUE(l) << l.error();
  ledger::Ledger& ledger = *l.value();
  FakeClock clock;
  TestGateway gateway;
  const MarketOptions o = options();
  auto m = Market::open(o, ledger, gateway, clock);
  ASSERT_TRUE(m) << m.error();
  Market& market = *m.value();
  LotSpec spec;
  spec.profile = "web";
  spec.format = Format::uniform;
  spec.quantity = 10;
  spec.closes_ns = t0 + 3600 * s;
  spec.start_ns = t0 + 7200 * s;
  spec.duration_ns = 600 * s;
  const uint64_t lot = market.create_lot(provider, spec).value();

  std::mutex mutex;
  std::set<uint64_t> acknowledged;
  std::atomic<int> refused{0}, after{0};
  std::atomic<int64_t> slowest_ms{0};
  std::atomic<bool> stop{false}, recovered{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      // Paced, so that no machine is fast enough to run out of bidders before the end.
      for (int i = 0; i < bids_per_client && !stop; ++i) {
        std::this_thread::sleep_for(2ms);
        const Actor who{"c" + std::to_string(t) + "-" + std::to_string(i), Role::recipient, ""};
        const auto started = std::chrono::steady_clock::now();
        auto b = market.place_bid(who, {lot, 100 + i, 1, {ip(address(t, i))}, "tok_visa"});
        const int64_t took = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - started)
                                 .count();
        int64_t prev = slowest_ms;
        while (took > prev && !slowest_ms.compare_exchange_weak(prev, took)) {
        }
        if (b) {
          std::lock_guard g(mutex);
          acknowledged.insert(b.value().id);
          if (recovered) ++after;
        } else {
          EXPECT_EQ(b.error_kind(), ErrorKind::unavailable) << b.error();
          ++refused;
          std::this_thread::sleep_for(20ms);
        }
      }
    });
  }
  // Stopped at once and started again under load.
  std::this_thread::sleep_for(1s);
  ASSERT_EQ(run(script() + " down " + pg_), 0);
  std::this_thread::sleep_for(3s);
  EXPECT_FALSE(ledger.health().ok);
  ASSERT_EQ(run(script() + " up " + pg_), 0);
  std::this_thread::sleep_for(3s);
  recovered = true;
  std::this_thread::sleep_for(2s);
  EXPECT_GT(after.load(), 0) << "writes resumed without a restart";
  EXPECT_TRUE(ledger.health().ok) << ledger.health().error;

  // Frozen: the connection stays open and nothing answers.
  signal_server("STOP");
  recovered = false;
  std::this_thread::sleep_for(4s);
  EXPECT_FALSE(ledger.health().ok);
  EXPECT_THAT(ledger.health().error, ::testing::HasSubstr("has not answered"));
  signal_server("CONT");
  std::this_thread::sleep_for(3s);
  after = 0;
  recovered = true;
  std::this_thread::sleep_for(2s);
  stop = true;
  for (auto& c : clients)
    c.join();
  EXPECT_GT(after.load(), 0) << "writes resumed after the freeze";
  EXPECT_GT(refused.load(), 0) << "the outage was seen";
  // No caller waited past the timeout plus its second (with room for a loaded machine).
  EXPECT_LE(slowest_ms.load(), 1000 + 1000 + 1500);
  std::printf("  %zu bids acknowledged, %d refused (503), slowest answer %lld ms\n",
              acknowledged.size(), refused.load(), static_cast<long long>(slowest_ms.load()));

  // Every acknowledged bid is in the journal, read by a fresh market.
  m.value().reset();
  l.value().reset();
  auto again = ledger::Ledger::open(url_);
  ASSERT_TRUE(again) << again.error();
  auto reopened = Market::open(o, *again.value(), gateway, clock);
  ASSERT_TRUE(reopened) << reopened.error();
  std::set<uint64_t> present;
  const auto bids = reopened.value()->bids(admin, lot).value();
  for (const BidView& b : bids)
    present.insert(b.bid.id);
  for (uint64_t id : acknowledged)
    ASSERT_TRUE(present.count(id)) << "acknowledged bid " << id << " lost";
  EXPECT_TRUE(again.value()->verify().ok);
}

}  // namespace
}  // namespace segx::market
