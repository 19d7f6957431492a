// Writes a market's history into a ledger, for benchmarks that need a market with a past:
// `lots` uniform lots of `units` blocks, each bid on by every one of `bidders` recipients
// (lots x bidders bids), closed, charged, run on the clock alone (as the moderator runs them:
// no data plane, no usage) and ended, one lot an hour after the other so that no two leases
// of one bidder overlap. Everything happens in the past, so a segx opened on the
// ledger finds only finished lots and leases. Prints what it wrote; exits non-zero if the
// market refused anything.
//
//   market_history --ledger URL [--lots L] [--units U] [--bidders B] [--provider ID]
//                  [--profile NAME]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "ledger/ledger.hpp"
#include "market/market.hpp"

using namespace segx;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string ledger;
  uint64_t lots = 1000;
  uint32_t units = 100;
  uint64_t bidders = 1000;
  std::string provider = "acme";
  std::string profile = "all";
};

class SteppedClock final : public market::Clock {
 public:
  int64_t now_ns() const override { return now; }
  int64_t now = 0;
};

constexpr int64_t s = 1'000'000'000;
constexpr int64_t hour = 3600 * s;

// Bidder i's own address, in 172.16.0.0/12 (the API benchmark's bidders are in 10/8).
config::MemberConfig address(uint64_t i) {
  return market::parse_member("ip:172." + std::to_string(16 + (i >> 16 & 15)) + "." +
                              std::to_string(i >> 8 & 255) + "." + std::to_string(i & 255))
      .value();
}

void fail(const std::string& what) {
  std::fprintf(stderr, "market_history: %s\n", what.c_str());
  std::exit(1);
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--ledger")
      o.ledger = argv[i + 1];
    else if (a == "--lots")
      o.lots = std::stoull(argv[i + 1]);
    else if (a == "--units")
      o.units = static_cast<uint32_t>(std::stoul(argv[i + 1]));
    else if (a == "--bidders")
      o.bidders = std::stoull(argv[i + 1]);
    else if (a == "--provider")
      o.provider = argv[i + 1];
    else if (a == "--profile")
      o.profile = argv[i + 1];
    else
      o.ledger.clear(), i = argc;
  }
  if (o.ledger.empty() || o.bidders == 0 || o.bidders > (1u << 20) || o.units == 0 ||
      o.units > o.bidders) {
    std::fprintf(stderr,
                 "usage: market_history --ledger URL [--lots L] [--units U] [--bidders B (at "
                 "most 1048576)] [--provider ID] [--profile NAME]   (U <= B)\n");
    return 2;
  }
  auto ledger = ledger::Ledger::open(o.ledger);
  if (!ledger) fail(ledger.error());
  market::TestGateway gateway;
  SteppedClock clock;
  // The last block ends two hours before now: nothing is left to run when segx opens this.
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t began = now - static_cast<int64_t>(o.lots + 5) * hour;
  clock.now = began;
  market::MarketOptions mo;
  mo.provider_id = o.provider;
  mo.profiles = {o.profile};
  mo.bids_per_lot = static_cast<uint32_t>(o.bidders);
  for (uint64_t i = 0; i < o.bidders; ++i) {
    config::SubscriberConfig sub;
    sub.id = "h" + std::to_string(i);
    sub.prefixes.push_back(address(i).ip);
    mo.subscribers.push_back(std::move(sub));
  }
  auto m = market::Market::open(mo, *ledger.value(), gateway, clock);
  if (!m) fail(m.error());
  market::Market& market = *m.value();
  const market::Actor provider{o.provider, market::Role::provider, ""};

  const auto t0 = Clock::now();
  std::vector<uint64_t> lots;
  for (uint64_t l = 0; l < o.lots; ++l) {
    market::LotSpec spec;
    spec.profile = o.profile;
    spec.format = market::Format::uniform;
    spec.quantity = o.units;
    // Lot l closes in hour l + 1 and runs in hour l + 2: a few lots' leases are live at once.
    spec.closes_ns = began + static_cast<int64_t>(l + 1) * hour;
    spec.start_ns = began + static_cast<int64_t>(l + 2) * hour;
    spec.duration_ns = hour;
    auto id = market.create_lot(provider, spec);
    if (!id) fail("lot refused: " + id.error());
    lots.push_back(id.value());
  }
  uint64_t bids = 0, last = 0;
  for (uint64_t l = 0; l < o.lots; ++l) {
    for (uint64_t i = 0; i < o.bidders; ++i) {
      const market::Actor bidder{"h" + std::to_string(i), market::Role::recipient, ""};
      auto b = market.submit_bid(bidder, {lots[l],
                                          static_cast<market::Money>(100 + (i * 7919 + l) % 10'000),
                                          1,
                                          {address(i)},
                                          "tok_visa"});
      if (!b) fail("bid refused: " + b.error());
      last = b.value().ticket;
      if (++bids % 4096 == 0 && !market.wait(last)) fail("a commit failed");
    }
  }
  if (!market.wait(last)) fail("a commit failed");
  const double bid_seconds = seconds_since(t0);

  // Hour by hour: a lot closes and is charged, the one before starts, the one before that ends.
  for (uint64_t h = 1; h <= o.lots + 3; ++h) {
    clock.now = began + static_cast<int64_t>(h) * hour;
    market.tick(nullptr);
    market.settle();
    market.tick(nullptr);
  }

  uint64_t ended = 0, leases = 0;
  for (const auto& lease : market.leases({"admin", market::Role::admin, ""})) {
    ++leases;
    if (lease.state == market::LeaseState::finished) ++ended;
  }
  const auto st = ledger.value()->stats();
  std::printf(
      "market_history: %lu lots, %lu bids (%.0f/s), %lu leases (%lu finished), %lu events in "
      "%.1f s\n",
      o.lots, bids, static_cast<double>(bids) / bid_seconds, leases, ended, st.events,
      seconds_since(t0));
  return ended == o.lots * o.units ? 0 : 1;
}
