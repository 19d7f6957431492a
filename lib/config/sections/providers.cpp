// Section providers: this provider, its peers and what it serves them (serve, read after pipeline).

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "config/sections/context.hpp"

namespace segx::config::sections {

// ---- providers ----------------------------------------------------------------------
void read_providers(Context& ctx, const Value& v) {
  ProvidersConfig& pr = ctx.c.providers;
  MapReader m(v);
  m.read_name("id", pr.id);
  m.read_names("offers", pr.offers);
  if (ctx.options.service_known) {
    if (auto offers = m.get("offers")) {
      for (const Value& item : offers->list(true)) {
        auto name = item.as_string();
        if (name && !ctx.options.service_known(*name)) {
          item.error("service '" + *name +
                     "' is offered here but this build has no such "
                     "service (available: " +
                     ctx.options.services_available + ")");
        }
      }
    }
  }
  std::optional<Value> addr_v = m.get("address");
  if (addr_v) pr.address = addr_v->as_parsed<IpAddress>(parse_ip_address);
  m.read("hold", pr.hold, 16u, 1u << 20);
  ctx.serve_v = m.get("serve");
  auto peers = m.get("peers");
  if (!peers) return;
  std::set<std::string> ids;
  for (const Value& item : peers->list()) {
    MapReader pm(item);
    if (!pm.valid()) continue;
    PeerConfig peer;
    pm.read_name("id", peer.id, true);
    if (auto port = pm.require("port")) {
      if (auto s = port->as_name()) {
        peer.port = *s;
        check_port_ref(ctx, *port, *s);
      }
    }
    if (auto a = pm.require("address")) {
      if (auto ip = a->as_parsed<IpAddress>(parse_ip_address)) {
        peer.address = *ip;
        if (pr.address && pr.address->family != ip->family) {
          a->error("peer address is IPv" + std::to_string(ip->family) +
                   " but providers.address is IPv" + std::to_string(pr.address->family));
        }
      }
    }
    if (auto mac = pm.get("mac")) peer.mac = mac->as_parsed<MacAddress>(parse_mac);
    pm.read_names("offers", peer.offers);
    if (peer.offers.empty()) item.error("a peer must offer at least one service (offers)");
    pm.read("timeout", peer.timeout, Duration(1ms), Duration(60s));
    std::string fallback = "pass";
    pm.read_choice("fallback", fallback, {"pass", "drop"});
    peer.fallback = fallback == "pass" ? Fallback::pass : Fallback::drop;
    if (peer.id.empty()) continue;
    if (peer.id == pr.id) {
      item.error("peer id '" + peer.id + "' is this provider's own id (providers.id)");
    } else if (!ids.insert(peer.id).second) {
      item.error("peer id '" + peer.id + "' is used twice");
    }
    pr.peers.push_back(peer);
  }
  if (!pr.peers.empty() && !pr.address) {
    v.error(
        "providers.address (this provider's tunnel address) is required when peers are "
        "configured");
  }
}

// providers.serve: entries like a chain's, each offered here, one per service.
void read_serve(Context& ctx, const Value& v) {
  std::set<std::string> names;
  for (const Value& item : v.list()) {
    ServiceConfig s;
    s.path = item.path();
    std::optional<Value> name_v;
    if (!entry_name(ctx, item, s, name_v)) continue;
    if (!contains(ctx.c.providers.offers, s.name)) {
      name_v->error("service '" + s.name +
                    "' is served to peers but not offered here (providers.offers: " +
                    join(ctx.c.providers.offers) + ")");
      continue;
    }
    if (!names.insert(s.name).second) {
      name_v->error("service '" + s.name + "' is served twice; one entry per service");
      continue;
    }
    if (ctx.options.check_service) ctx.options.check_service(s, true, item, ctx.c);
    ctx.c.providers.serve.push_back(s);
  }
}

}  // namespace segx::config::sections
