// Section profiles: match, segment rules, service chains (and the chain entry shared with serve).

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "config/sections/context.hpp"

namespace segx::config::sections {
namespace {

struct ProtocolName {
  std::string_view name;
  uint8_t number;
  bool has_ports;
};
constexpr ProtocolName protocol_names[] = {
    {"icmp", 1, false}, {"tcp", 6, true},  {"udp", 17, true},     {"gre", 47, false},
    {"esp", 50, false}, {"ah", 51, false}, {"icmpv6", 58, false}, {"sctp", 132, true},
};

void read_match(Context& ctx, const Value& v, MatchConfig& match) {
  MapReader m(v);
  if (auto ports = m.get("input_ports")) {
    for (const Value& item : ports->list(true)) {
      if (auto s = item.as_name(); s && check_port_ref(ctx, item, *s)) match.ports.push_back(*s);
    }
  }
  const auto append = [](auto& list) {
    return [&list](const Value&, auto x) { list.push_back(x); };
  };
  m.read_each<Range>("vlan", range_parser(0, 4095), append(match.vlans));
  m.read_each<IpPrefix>("src", parse_ip_prefix, append(match.src));
  m.read_each<IpPrefix>("dst", parse_ip_prefix, append(match.dst));
  bool ports_ok = true;
  if (auto protos = m.get("protocol")) {
    for (const Value& item : protos->list(true)) {
      auto s = item.as_string();
      if (!s) continue;
      const ProtocolName* named = nullptr;
      for (const auto& pn : protocol_names) {
        if (pn.name == *s) named = &pn;
      }
      if (named != nullptr) {
        match.protocols.push_back(named->number);
        ports_ok = ports_ok && named->has_ports;
      } else if (auto n = item.as_int(0, 255)) {
        match.protocols.push_back(static_cast<uint8_t>(*n));
        ports_ok = ports_ok && (*n == 6 || *n == 17 || *n == 132);
      }
    }
  }
  m.read_each<Range>("src_port", range_parser(0, 65535), append(match.src_ports));
  m.read_each<Range>("dst_port", range_parser(0, 65535), append(match.dst_ports));
  if (!ports_ok && (!match.src_ports.empty() || !match.dst_ports.empty())) {
    v.error("src_port and dst_port need protocols with ports (tcp, udp, sctp)");
  }
  m.read_each<Range>("dscp", range_parser(0, 63), append(match.dscp));
  bool has_v4 = false, has_v6 = false;
  for (const auto* list : {&match.src, &match.dst}) {
    for (const auto& p : *list)
      (p.address.family == 4 ? has_v4 : has_v6) = true;
  }
  if (!match.src.empty() && !match.dst.empty()) {
    // A profile is one ACL rule set per family; mixing families across src and dst
    // would make half of the combinations impossible to match.
    const bool src_v4 = std::all_of(match.src.begin(), match.src.end(),
                                    [](const IpPrefix& p) { return p.address.family == 4; });
    const bool dst_v4 = std::all_of(match.dst.begin(), match.dst.end(),
                                    [](const IpPrefix& p) { return p.address.family == 4; });
    if (has_v4 && has_v6 && src_v4 != dst_v4) {
      v.error("src and dst prefixes must be of the same address family");
    }
  }
}

void read_segment(const Value& v, SegmentPolicy& seg) {
  MapReader m(v);
  m.read("packets", seg.packets, 0, 65535);
  m.read_size("bytes", seg.bytes, 0, 1ull << 30);
  m.read("time", seg.time, Duration(0), Duration(1h));
  m.read("idle", seg.idle, Duration(0), Duration(1h));
  m.read("tcp_close", seg.tcp_close);
  if (m.valid() && seg.time == Duration(0) && seg.idle == Duration(0)) {
    v.error("time and idle are both 0: a segment of a flow that stops would never close");
  }
}

void read_services(Context& ctx, const Value& v, std::vector<ServiceConfig>& out) {
  for (const Value& item : v.list()) {
    ServiceConfig s;
    s.path = item.path();
    std::optional<Value> name_v;
    if (!entry_name(ctx, item, s, name_v)) continue;
    bool offered = contains(ctx.c.providers.offers, s.name);
    for (const auto& peer : ctx.c.providers.peers)
      offered = offered || contains(peer.offers, s.name);
    if (!offered) {
      name_v->error("service '" + s.name + "' is offered neither here (providers.offers: " +
                    join(ctx.c.providers.offers) + ") nor by any peer");
    } else if (ctx.options.check_service) {
      ctx.options.check_service(s, contains(ctx.c.providers.offers, s.name), item, ctx.c);
    }
    out.push_back(s);
  }
}

}  // namespace

// ---- profiles -----------------------------------------------------------------------
void read_profiles(Context& ctx, const Value& v) {
  std::set<std::string> names;
  for (const Value& item : v.list()) {
    MapReader m(item);
    if (!m.valid()) continue;
    ProfileConfig p;
    m.read_name("name", p.name, true);
    if (!p.name.empty() && !names.insert(p.name).second) {
      item.error("profile name '" + p.name + "' is used twice");
    }
    if (auto match = m.get("match")) read_match(ctx, *match, p.match);
    if (auto seg = m.get("segment")) read_segment(*seg, p.segment);
    if (auto services = m.get("services")) read_services(ctx, *services, p.services);
    if (auto out = m.require("output")) {
      if (auto s = out->as_name(); s && check_port_ref(ctx, *out, *s)) p.output = *s;
    }
    m.read("metered", p.metered);
    std::string unmetered = "best_effort";
    m.read_choice("unmetered", unmetered, {"best_effort", "drop"});
    p.unmetered = unmetered == "drop" ? Unmetered::drop : Unmetered::best_effort;
    ctx.c.profiles.push_back(p);
  }
}

// A chain entry's name and options: a bare name, or a mapping with `name`. False when
// the entry has no usable name (reported).
bool entry_name(Context& ctx, const Value& item, ServiceConfig& s, std::optional<Value>& name_v) {
  if (item.is_map()) {
    // Options are the service's own; only the name is checked here.
    YAML::Node options(YAML::NodeType::Map);
    for (auto it = item.yaml().begin(); it != item.yaml().end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == "name") {
        name_v.emplace(it->second, item.path() + ".name", to_mark(it->second.Mark()), ctx.diag);
      } else {
        options[it->first] = it->second;
      }
    }
    s.options = options;
    if (!name_v) {
      item.error("missing required key 'name'");
      return false;
    }
  } else {
    name_v = item;
  }
  auto name = name_v->as_name();
  if (!name) return false;
  s.name = *name;
  return true;
}

}  // namespace segx::config::sections
