// libFuzzer target: rebuilding the market from a journal (Market::open and TokenStore::open
// replaying a "memory:" ledger). Each input line is one event, "TYPE BODY", appended as is,
// so bodies are arbitrary bytes rather than the market's canonical JSON. A journal the market
// cannot read must make open() fail with a message, never crash it; one it accepts must give
// a market whose queries and first tick work.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "api/auth.hpp"
#include "ledger/ledger.hpp"
#include "market/market.hpp"

namespace {

using namespace segx;

class FixedClock final : public market::Clock {
 public:
  int64_t now_ns() const override { return 1'800'000'000LL * 1'000'000'000; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto ledger = std::move(ledger::Ledger::open("memory:")).value();
  int64_t time_ns = 1'799'999'000LL * 1'000'000'000;
  for (int n = 0; n < 64 && !input.empty(); ++n) {
    const size_t nl = input.find('\n');
    const std::string_view line = input.substr(0, nl);
    input = nl == std::string_view::npos ? std::string_view{} : input.substr(nl + 1);
    const size_t sp = line.find(' ');
    const std::string type(line.substr(0, sp));
    const std::string body(sp == std::string_view::npos ? "" : line.substr(sp + 1));
    if (!ledger->append_durable(type, body, time_ns += 1'000'000'000)) std::abort();
  }

  FixedClock clock;
  market::TestGateway gateway;
  market::MarketOptions mo;
  mo.provider_id = "acme";
  mo.profiles = {"web"};
  // The API's token events share the journal; the market skips them by the registry.
  if (!api::TokenStore::register_event_types(*ledger)) std::abort();
  auto market = market::Market::open(mo, *ledger, gateway, clock);
  auto tokens = api::TokenStore::open({}, ledger.get());
  if (!market) {
    if (market.error().empty()) std::abort();
    // Reproducing one input by hand: SEGX_FUZZ_VERBOSE=1 says why the journal was refused.
    if (std::getenv("SEGX_FUZZ_VERBOSE")) std::fprintf(stderr, "%s\n", market.error().c_str());
    return 0;
  }
  market::Market& m = *market.value();
  const market::Actor admin{"root", market::Role::admin, ""};
  for (const auto& lot : m.lots()) {
    (void)m.bids(admin, lot.lot.id);
  }
  for (const auto& lease : m.leases(admin)) {
    (void)m.charges(admin, lease.id);
    (void)m.ratings_for_lease(admin, lease.id);
  }
  (void)m.reputation("alice");
  (void)m.ratings_of(admin, "alice");
  (void)m.bids_of(admin);
  (void)m.stats();
  m.tick(nullptr);
  m.settle();
  return 0;
}
