// Market benchmark: bids per second through the market in memory and durable (SQLite, WAL,
// synchronous=FULL, group commit), and winner determination over a million bids. Prints
// figures and writes them as JSON; it never passes or fails on speed.
//
//   market_bench [--dir DIR] [--bids N] [--threads T] [--window W] [--json FILE]

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "ledger/ledger.hpp"
#include "market/auction.hpp"
#include "market/market.hpp"

using namespace segx;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string dir = "/tmp";
  uint64_t bids = 300000;
  unsigned threads = 4;
  unsigned window = 512;  // bids a client has in flight before it waits for durability
  std::string json;
};

class FixedClock final : public market::Clock {
 public:
  int64_t now_ns() const override { return now; }
  int64_t now = 1'800'000'000LL * 1'000'000'000;
};

// Bidder i of client t's own address: 10.t.i/65536.i/256.i%256.
config::MemberConfig address(unsigned t, uint64_t i) {
  return market::parse_member("ip:" + std::to_string(10 + t) + "." + std::to_string(i >> 16 & 255) +
                              "." + std::to_string(i >> 8 & 255) + "." + std::to_string(i & 255))
      .value();
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct BidRun {
  double seconds = 0;
  double per_second = 0;
  uint64_t commits = 0;
  uint64_t max_batch = 0;
};

// `threads` clients each submit bids on their own lots and wait for durability every
// `window` bids (like API threads acknowledging batches of requests).
BidRun run_bids(const std::string& url, const Options& o) {
  auto ledger = ledger::Ledger::open(url);
  if (!ledger) {
    std::fprintf(stderr, "market_bench: %s\n", ledger.error().c_str());
    std::exit(1);
  }
  market::TestGateway gateway;
  FixedClock clock;
  market::MarketOptions mo;
  mo.provider_id = "acme";
  mo.profiles = {"web"};
  mo.bids_per_lot = 1'000'000;
  const uint64_t per_thread = o.bids / o.threads;
  // Every bidder holds an address of its own: the market checks each bid's members.
  for (unsigned t = 0; t < o.threads; ++t)
    for (uint64_t i = 0; i < per_thread; ++i) {
      config::SubscriberConfig sub;
      sub.id = "r" + std::to_string(t) + "-" + std::to_string(i);
      sub.prefixes.push_back(address(t, i).ip);
      mo.subscribers.push_back(std::move(sub));
    }
  auto m = market::Market::open(mo, *ledger.value(), gateway, clock);
  market::Market& market = *m.value();
  const int64_t s = 1'000'000'000;
  std::vector<uint64_t> lots;
  for (unsigned t = 0; t < o.threads; ++t) {
    market::LotSpec spec;
    spec.profile = "web";
    spec.format = market::Format::uniform;
    spec.quantity = 10;
    spec.closes_ns = clock.now + 3600 * s;
    spec.start_ns = clock.now + 7200 * s;
    spec.duration_ns = 3600 * s;
    lots.push_back(market.create_lot({"acme", market::Role::provider, ""}, spec).value());
  }
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  std::atomic<bool> failed{false};
  for (unsigned t = 0; t < o.threads; ++t) {
    clients.emplace_back([&, t] {
      std::mt19937 rng(t);
      uint64_t last = 0;
      for (uint64_t i = 0; i < per_thread; ++i) {
        const market::Actor bidder{"r" + std::to_string(t) + "-" + std::to_string(i),
                                   market::Role::recipient, ""};
        auto b = market.submit_bid(bidder, {lots[t],
                                            static_cast<market::Money>(100 + rng() % 100000),
                                            1,
                                            {address(t, i)},
                                            "tok_visa"});
        if (!b) {
          std::fprintf(stderr, "market_bench: bid refused: %s\n", b.error().c_str());
          failed = true;
          return;
        }
        last = b.value().ticket;
        if ((i + 1) % o.window == 0 && !market.wait(last)) failed = true;
      }
      if (!market.wait(last)) failed = true;
    });
  }
  for (auto& c : clients)
    c.join();
  BidRun r;
  r.seconds = seconds_since(start);
  r.per_second = static_cast<double>(per_thread * o.threads) / r.seconds;
  const auto st = ledger.value()->stats();
  r.commits = st.commits;
  r.max_batch = st.max_batch;
  if (failed) std::exit(1);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--dir")
      o.dir = argv[i + 1];
    else if (a == "--bids")
      o.bids = std::stoull(argv[i + 1]);
    else if (a == "--threads")
      o.threads = static_cast<unsigned>(std::stoul(argv[i + 1]));
    else if (a == "--window")
      o.window = static_cast<unsigned>(std::stoul(argv[i + 1]));
    else if (a == "--json")
      o.json = argv[i + 1];
    else {
      std::fprintf(
          stderr,
          "usage: market_bench [--dir DIR] [--bids N] [--threads T] [--window W] [--json FILE]\n");
      return 2;
    }
  }
  nlohmann::json out;
  std::printf(
      "market benchmark: %lu bids, %u client threads, %u bids in flight per client, %u CPUs\n",
      o.bids, o.threads, o.window, std::thread::hardware_concurrency());

  const BidRun mem = run_bids("memory:", o);
  std::printf("  bids in memory            %10.0f bids/s  (%.2f s)\n", mem.per_second, mem.seconds);
  out["bids_in_memory_per_second"] = mem.per_second;

  const std::string db = o.dir + "/market-bench-" + std::to_string(getpid()) + ".db";
  const BidRun durable = run_bids("sqlite:" + db, o);
  std::printf(
      "  bids durable (SQLite FULL) %9.0f bids/s  (%.2f s, %lu commits, %.0f bids per commit, "
      "largest %lu)   target >= 300000\n",
      durable.per_second, durable.seconds, durable.commits,
      static_cast<double>(o.bids) / static_cast<double>(std::max<uint64_t>(durable.commits, 1)),
      durable.max_batch);
  out["bids_durable_per_second"] = durable.per_second;
  out["durable_commits"] = durable.commits;
  for (const char* suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(db + suffix);

  // Winner determination over a million bids, for one block and for 1,000 blocks.
  std::mt19937_64 rng(7);
  std::vector<market::Candidate> bids;
  for (uint64_t i = 1; i <= 1'000'000; ++i)
    bids.push_back(
        {i, static_cast<market::Money>(rng() % 10'000'000), static_cast<uint32_t>(1 + rng() % 4)});
  for (uint32_t k : {1u, 1000u, 500000u}) {
    std::vector<double> times;
    for (int rep = 0; rep < 5; ++rep) {
      auto copy = bids;
      const auto t = Clock::now();
      const auto d = market::determine(
          k == 1 ? market::Format::second_price : market::Format::uniform, k, 0, std::move(copy));
      times.push_back(seconds_since(t) * 1000);
      if (d.awards.empty()) return 1;
    }
    std::sort(times.begin(), times.end());
    std::printf(
        "  winner determination, 1,000,000 bids, %6u block(s): %7.1f ms (median of 5)   target < "
        "200 ms\n",
        k, times[2]);
    out["winner_determination_ms"][std::to_string(k)] = times[2];
  }
  if (!o.json.empty()) {
    std::ofstream(o.json) << out.dump(2) << "\n";
    std::printf("  figures written to %s\n", o.json.c_str());
  }
  return 0;
}
