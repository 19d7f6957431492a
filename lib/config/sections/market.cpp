// Section market: the auction, settlement, the ledger and the API with its tokens.

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "config/sections/context.hpp"

namespace segx::config::sections {
namespace {

void read_api(Context& ctx, const Value& v, ApiConfig& api) {
  MapReader m(v);
  if (auto l = m.get("listen")) {
    if (auto e = l->as_parsed<Endpoint>(parse_endpoint)) api.listen = *e;
  }
  m.read("threads", api.threads, 1, 256);
  m.read_size("body_limit", api.body_limit, 1024, 64ull << 20);
  m.read("rate_limit", api.rate_limit, 1, 1'000'000);
  m.read("anonymous_rate_limit", api.anonymous_rate_limit, 0, 1'000'000);
  m.read("header_timeout", api.header_timeout, Duration(100ms), Duration(10min));
  m.read("body_timeout", api.body_timeout, Duration(100ms), Duration(1h));
  m.read("read_timeout", api.read_timeout, Duration(100ms), Duration(10min));
  m.read("write_timeout", api.write_timeout, Duration(100ms), Duration(10min));
  m.read("keep_alive_timeout", api.keep_alive_timeout, Duration(0), Duration(10min));
  m.read("keep_alive_requests", api.keep_alive_requests, 1, 1'000'000);
  read_connection_caps(m, api.max_connections, api.max_connections_per_address);
  if (auto tls = m.get("tls")) {
    MapReader tm(*tls);
    tm.read("cert", api.tls_cert, true);
    tm.read("key", api.tls_key, true);
    tm.read("ciphers", api.tls_ciphers);
    tm.read("ciphersuites", api.tls_ciphersuites);
  }
  auto tokens = m.get("tokens");
  if (!tokens) return;
  std::set<std::string> principals, recipients;
  std::vector<std::pair<Value, TokenConfig>> devices;
  for (const Value& item : tokens->list()) {
    MapReader tm(item);
    if (!tm.valid()) continue;
    TokenConfig t;
    tm.read_name("principal", t.principal, true);
    if (auto r = tm.require("role")) {
      if (auto s = r->as_choice({"admin", "provider", "recipient", "device"})) t.role = *s;
    }
    if (auto o = tm.get("owner")) {
      if (auto s = o->as_name()) t.owner = *s;
      if (t.role != "device" && !t.role.empty()) o->error("only a device token has an owner");
    }
    if (auto h = tm.require("sha256")) {
      if (auto s = h->as_string()) {
        if (s->size() == 64 && std::all_of(s->begin(), s->end(), [](char c) {
              return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
            })) {
          t.sha256 = *s;
        } else {
          h->error(
              "expected the token's SHA-256 as 64 lowercase hex digits (sha256sum "
              "prints it); the token itself is never stored");
        }
      }
    }
    if (!t.principal.empty() && !principals.insert(t.principal).second) {
      item.error("principal '" + t.principal + "' has two tokens");
    }
    if (t.role == "recipient") recipients.insert(t.principal);
    if (t.role == "device") {
      if (t.owner.empty()) item.error("a device token needs an owner (the recipient it acts for)");
      devices.emplace_back(item, t);
    }
    api.tokens.push_back(t);
  }
  for (const auto& [item, t] : devices) {
    if (!t.owner.empty() && !recipients.count(t.owner) && !ctx.subscriber_ids.count(t.owner)) {
      item.error("owner '" + t.owner + "' is neither a recipient token nor a subscriber");
    }
  }
}

}  // namespace

// ---- market -------------------------------------------------------------------------
void read_market(Context& ctx, const Value& v) {
  MarketConfig& mk = ctx.c.market;
  MapReader m(v);
  m.read("enabled", mk.enabled);
  m.read_choice("role", mk.role, {"standalone", "moderator", "appliance"});
  if (auto a = m.get("appliance")) {
    if (auto name = a->as_name()) mk.appliance = *name;
  } else if (mk.role != "standalone") {
    v.error("market.role '" + mk.role +
            "' shares a ledger: give this appliance a name of its own (market.appliance)");
  }
  if (auto r = m.get("rate_share")) {
    auto x = r->as_parsed<double>([](std::string_view t) -> Result<double> {
      const std::string text(t);
      char* end = nullptr;
      const double d = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0') return Error{"expected a number such as 0.5"};
      return d;
    });
    if (x) {
      if (*x > 0 && *x <= 1) {
        mk.rate_share = *x;
      } else {
        r->error("expected a share greater than 0 and at most 1, got " + std::to_string(*x));
      }
    }
  }
  if (auto l = m.get("ledger")) {
    // A URL, or {url: URL, timeout: DURATION}.
    std::optional<MapReader> lm;
    std::optional<std::string> url;
    if (l->is_map()) {
      lm.emplace(*l);
      if (auto u = lm->require("url")) url = u->as_string();
      lm->read("timeout", mk.ledger_timeout, Duration(100ms), Duration(10min));
    } else {
      url = l->as_string();
    }
    if (auto s = url) {
      const bool sqlite = s->starts_with("sqlite:") && s->size() > 7;
      const bool pg = s->starts_with("postgresql://") || s->starts_with("postgres://");
      if (!sqlite && !pg) {
        l->error("expected sqlite:PATH or postgresql://..., got '" + *s + "'");
      } else {
        mk.ledger = *s;
      }
      if (sqlite && mk.role != "standalone") {
        l->error("market.role '" + mk.role +
                 "' shares the ledger between appliances, which "
                 "needs a postgresql:// ledger");
      }
    }
  } else if (mk.role != "standalone") {
    v.error("market.role '" + mk.role + "' needs a postgresql:// ledger");
  }
  if (auto cur = m.get("currency")) {
    if (auto s = cur->as_string()) {
      if (s->size() == 3 &&
          std::all_of(s->begin(), s->end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
        mk.currency = *s;
      } else {
        cur->error("expected an ISO 4217 currency code such as EUR or USD, got '" + *s + "'");
      }
    }
  }
  m.read("rating_window", mk.rating_window, Duration(1h), Duration(std::chrono::hours(24 * 365)));
  m.read("bids_per_lot", mk.bids_per_lot, 1, 1'000'000);
  if (auto g = m.get("gateway")) {
    MapReader gm(*g);
    gm.read_choice("kind", mk.gateway.kind, {"test", "webhook"});
    if (auto url = gm.get("url")) {
      if (auto s = url->as_string()) {
        if (s->starts_with("http://") || s->starts_with("https://")) {
          mk.gateway.url = *s;
        } else {
          url->error("expected an http:// or https:// URL, got '" + *s + "'");
        }
      }
    } else if (mk.gateway.kind == "webhook" && gm.valid()) {
      g->error("gateway kind 'webhook' needs a url");
    }
    gm.read("timeout", mk.gateway.timeout, Duration(100ms), Duration(60s));
    gm.read("retries", mk.gateway.retries, 0, 10);
  }
  if (auto st = m.get("settlement")) {
    MapReader sm(*st);
    sm.read("deadline", mk.settlement.deadline, Duration(1s),
            Duration(std::chrono::hours(24 * 30)));
    sm.read("backoff", mk.settlement.backoff, Duration(10ms), Duration(1h));
    sm.read("max_backoff", mk.settlement.max_backoff, Duration(10ms), Duration(24h));
    if (mk.settlement.max_backoff < mk.settlement.backoff)
      st->error("settlement.max_backoff is below settlement.backoff");
  }
  if (auto ac = m.get("activation")) {
    MapReader am(*ac);
    am.read("attempts", mk.activation.attempts, 1, 100);
    am.read("backoff", mk.activation.backoff, Duration(10ms), Duration(1h));
  }
  if (auto a = m.get("api")) read_api(ctx, *a, mk.api);
}

}  // namespace segx::config::sections
