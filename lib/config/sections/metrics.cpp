// Section metrics: the Prometheus endpoint, and the check that it and the API do not share a port.

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "config/sections/context.hpp"

namespace segx::config::sections {

// ---- metrics ------------------------------------------------------------------------
void read_metrics(Context& ctx, const Value& v) {
  MapReader m(v);
  m.read("enabled", ctx.c.metrics.enabled);
  if (auto l = m.get("listen")) {
    if (auto e = l->as_parsed<Endpoint>(parse_endpoint)) ctx.c.metrics.listen = *e;
    ctx.metrics_listen = l;
  }
  read_connection_caps(m, ctx.c.metrics.max_connections, ctx.c.metrics.max_connections_per_address);
}

void check_listeners(Context& ctx, const Value& root) {
  const Endpoint& a = ctx.c.market.api.listen;
  const Endpoint& b = ctx.c.metrics.listen;
  if (ctx.c.market.enabled && ctx.c.metrics.enabled && a.port == b.port && a.port != 0 &&
      (a.host == b.host || a.host == "0.0.0.0" || b.host == "0.0.0.0")) {
    (ctx.metrics_listen ? *ctx.metrics_listen : root)
        .error("metrics.listen and market.api.listen are the same port (" + std::to_string(a.port) +
               ")");
  }
}

}  // namespace segx::config::sections
