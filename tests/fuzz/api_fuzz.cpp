// libFuzzer target: the REST API's request handling (Api::handle, lib/api/api.hpp) in
// process, as tests/unit/api/api_test.cpp drives it: a market on a "memory:" ledger, the
// configured tokens, a fixed clock. Each input is up to eight requests separated by a line
// "%%"; a request is "METHOD PATH[?k=v]" on its first line, a token on the second (empty:
// none) and the body after. A fresh market per input makes every crash reproducible from its
// input alone. The API promises: never throws, bad input never gets a 500, and JSON
// responses are JSON.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/api.hpp"
#include "api/auth.hpp"

namespace {

using namespace segx;

class FixedClock final : public market::Clock {
 public:
  int64_t now_ns() const override { return 1'800'000'000LL * 1'000'000'000; }
};

std::string_view next_line(std::string_view& s) {
  const size_t nl = s.find('\n');
  std::string_view line = s.substr(0, nl);
  s = nl == std::string_view::npos ? std::string_view{} : s.substr(nl + 1);
  return line;
}

api::Request request_from(std::string_view text) {
  api::Request r;
  std::string_view first = next_line(text);
  const size_t sp = first.find(' ');
  r.method = std::string(first.substr(0, sp));
  std::string_view target = sp == std::string_view::npos ? "" : first.substr(sp + 1);
  const size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    const size_t eq = query.find('=');
    r.query.emplace(std::string(query.substr(0, eq)),
                    eq == std::string_view::npos ? "" : std::string(query.substr(eq + 1)));
  }
  const std::string_view token = next_line(text);
  if (!token.empty()) r.authorization = "Bearer " + std::string(token);
  r.body = std::string(text);
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  FixedClock clock;
  market::TestGateway gateway;
  auto ledger = std::move(ledger::Ledger::open("memory:")).value();
  market::MarketOptions mo;
  mo.provider_id = "acme";
  mo.profiles = {"web"};
  // alice and bob hold addresses, alice a device with a telephone number.
  for (const auto& [who, prefix] : {std::pair<const char*, const char*>{"alice", "10.0.0.0/8"},
                                    std::pair<const char*, const char*>{"bob", "192.0.2.0/24"}}) {
    config::SubscriberConfig sub;
    sub.id = who;
    sub.prefixes.push_back(config::parse_ip_prefix(prefix).value());
    mo.subscribers.push_back(sub);
  }
  config::DeviceConfig phone;
  phone.id = "alice-phone";
  phone.ips.push_back(config::parse_ip_prefix("10.9.0.1").value());
  phone.phones.push_back("+15551230001");
  mo.subscribers[0].devices.push_back(phone);
  if (!api::TokenStore::register_event_types(*ledger)) std::abort();
  auto market = std::move(market::Market::open(mo, *ledger, gateway, clock)).value();
  const std::vector<config::TokenConfig> tokens = {
      {"root", "admin", "", api::token_hash("root")},
      {"acme", "provider", "", api::token_hash("acme")},
      {"alice", "recipient", "", api::token_hash("alice")},
      {"bob", "recipient", "", api::token_hash("bob")},
      {"alice-phone", "device", "alice", api::token_hash("alice-phone")},
  };
  auto store = std::move(api::TokenStore::open(tokens, ledger.get())).value();
  api::ApiOptions ao;
  ao.body_limit = 4096;
  ao.rate_limit = 1'000'000;  // the limiter is not what is being fuzzed
  ao.profiles = {{"web", true, {"count"}, "out"}};
  ao.version = "fuzz";
  api::Api a(ao, *store, *market, *ledger, clock);

  for (int n = 0; n < 8 && !input.empty(); ++n) {
    const size_t sep = input.find("\n%%\n");
    const std::string_view one = input.substr(0, sep);
    input = sep == std::string_view::npos ? std::string_view{} : input.substr(sep + 4);
    const api::Request request = request_from(one);
    const api::Response r = api::wait(a.handle(request));
    // Reproducing one input by hand: SEGX_FUZZ_VERBOSE=1 prints each answer.
    if (std::getenv("SEGX_FUZZ_VERBOSE")) {
      std::fprintf(stderr, "%s %s -> %d %.200s\n", request.method.c_str(), request.path.c_str(),
                   r.status, r.body.c_str());
    }
    if (r.status >= 500 && r.status != 503) std::abort();
    if (r.content_type == "application/json" && !r.body.empty() &&
        !nlohmann::json::accept(r.body)) {
      std::abort();
    }
  }
  market->tick(nullptr);
  return 0;
}
