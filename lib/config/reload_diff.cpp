// reload_diff: both configurations are written out as (key path, value text) pairs in the
// file's section order, with the YAML key names, and the pairs compared. A value's text only
// has to be equal when the values are: it is never shown.

#include "config/reload_diff.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <type_traits>
#include <utility>

namespace segx::config {

namespace {

// ---- value texts ---------------------------------------------------------------------------

// Length-prefixed, so that no two different lists of strings make the same text.
std::string t(const std::string& s) {
  return std::to_string(s.size()) + ":" + s;
}
std::string t(bool b) {
  return b ? "true" : "false";
}
template <typename N>
requires std::is_integral_v<N> std::string t(N n) {
  return std::to_string(n);
}
std::string t(double d) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}
std::string t(Duration d) {
  return std::to_string(d.count()) + "ns";
}
std::string t(const IpAddress& a) {
  return a.family ? format_ip(a) : "none";
}
std::string t(const IpPrefix& p) {
  return format_prefix(p);
}
std::string t(const MacAddress& m) {
  return format_mac(m);
}
std::string t(const Range& r) {
  return std::to_string(r.lo) + "-" + std::to_string(r.hi);
}
std::string t(const Endpoint& e) {
  return t(e.host) + ":" + std::to_string(e.port);
}
template <typename T>
std::string t(const std::optional<T>& o) {
  return o ? "some " + t(*o) : "none";
}
template <typename T>
std::string t(const std::vector<T>& v) {
  std::string s = "[";
  for (const auto& x : v)
    s += t(x) + ",";
  return s + "]";
}
template <typename K, typename V>
std::string t(const std::map<K, V>& m) {
  std::string s = "{";
  for (const auto& [k, v] : m)
    s += t(k) + "=" + t(v) + ",";
  return s + "}";
}

// A YAML node by value: mappings with their entries sorted, so key order does not count;
// scalars by their text (a quoted "5" and a plain 5 read the same to a service); tags and
// styles ignored.
std::string canonical(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "~";
  if (n.IsScalar()) return t(n.Scalar());
  if (n.IsSequence()) {
    std::string s = "[";
    for (const auto& item : n)
      s += canonical(item) + ",";
    return s + "]";
  }
  std::vector<std::pair<std::string, std::string>> entries;
  for (const auto& kv : n)
    entries.emplace_back(canonical(kv.first), canonical(kv.second));
  std::sort(entries.begin(), entries.end());
  std::string s = "{";
  for (const auto& [k, v] : entries)
    s += k + ":" + v + ",";
  return s + "}";
}

// ---- key paths -------------------------------------------------------------------------------

// (path, value) in the order written; a list entry also writes its own path with "entry",
// so that an entry present on one side only is reported once, as itself.
class Flat {
 public:
  template <typename T>
  void put(const std::string& path, const T& value) {
    entries_.emplace_back(path, t(value));
  }
  void put_text(const std::string& path, std::string text) {
    entries_.emplace_back(path, std::move(text));
  }
  void entry(const std::string& path) { entries_.emplace_back(path, "entry"); }
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

std::string at(const std::string& list, size_t i) {
  return list + "[" + std::to_string(i) + "]";
}

void flat_services(Flat& f, const std::string& key, const std::vector<ServiceConfig>& services) {
  for (size_t i = 0; i < services.size(); ++i) {
    const std::string p = at(key, i);
    f.entry(p);
    f.put(p + ".name", services[i].name);
    f.put_text(p + ".options", canonical(services[i].options));
  }
}

void flat_eal(Flat& f, const EalConfig& e) {
  // `lcores` holds both the ids and their CPUs ("2@1").
  f.put_text("eal.lcores", t(e.lcores) + t(e.cpus));
  f.put("eal.main_lcore", e.main_lcore);
  f.put("eal.memory", e.memory_bytes);
  f.put("eal.hugepages", e.hugepages);
  f.put("eal.file_prefix", e.file_prefix);
  f.put("eal.vdevs", e.vdevs);
  f.put("eal.pci_allow", e.pci_allow);
  f.put("eal.log_level", e.log_level);
  f.put("eal.extra_args", e.extra_args);
}

void flat_ports(Flat& f, const std::vector<PortConfig>& ports) {
  for (size_t i = 0; i < ports.size(); ++i) {
    const PortConfig& p = ports[i];
    const std::string k = at("ports", i);
    f.entry(k);
    f.put(k + ".name", p.name);
    f.put(k + ".device", p.device);
    f.put(k + ".rx_queues", p.rx_queues);
    f.put(k + ".tx_queues", p.tx_queues);
    f.put(k + ".rx_descriptors", p.rx_descriptors);
    f.put(k + ".tx_descriptors", p.tx_descriptors);
    f.put(k + ".mtu", p.mtu);
    f.put(k + ".promiscuous", p.promiscuous);
    f.put(k + ".link_wait", p.link_wait);
    f.put(k + ".gtpu", p.gtpu);
  }
}

void flat_pipeline(Flat& f, const PipelineConfig& p) {
  for (size_t i = 0; i < p.lcores.size(); ++i) {
    const std::string k = at("pipeline.lcores", i);
    f.entry(k);
    f.put(k + ".lcore", p.lcores[i].lcore);
    f.put(k + ".roles", p.lcores[i].roles);
  }
  f.put("pipeline.ring_size", p.ring_size);
  f.put("pipeline.burst", p.burst);
  f.put("pipeline.mempool.size", p.mempool.size);
  f.put("pipeline.mempool.cache", p.mempool.cache);
  f.put("pipeline.mempool.data_room", p.mempool.data_room);
  f.put("pipeline.flow_table.size", p.flow_table.size);
  f.put("pipeline.flow_table.idle_timeout", p.flow_table.idle_timeout);
  f.put("pipeline.segment_pool", p.segment_pool);
  f.put("pipeline.metering.blocks", p.metering.blocks);
  f.put("pipeline.metering.members", p.metering.members);
  f.put("pipeline.metering.burst", p.metering.burst);
  f.put("pipeline.metering.keep_ended", p.metering.keep_ended);
  f.put("pipeline.metering.series_points", p.metering.series_points);
  f.put("pipeline.default.action", p.default_action == DefaultAction::forward);
  f.put("pipeline.default.output", p.default_output);
  f.put("pipeline.default.by_input", p.default_by_input);
}

void flat_profile(Flat& f, const ProfileConfig& p) {
  const MatchConfig& m = p.match;
  f.put("name", p.name);
  f.put("match.ports", m.ports);
  f.put("match.vlans", m.vlans);
  f.put("match.src", m.src);
  f.put("match.dst", m.dst);
  f.put("match.protocols", m.protocols);
  f.put("match.src_ports", m.src_ports);
  f.put("match.dst_ports", m.dst_ports);
  f.put("match.dscp", m.dscp);
  f.put("segment.packets", p.segment.packets);
  f.put("segment.bytes", p.segment.bytes);
  f.put("segment.time", p.segment.time);
  f.put("segment.idle", p.segment.idle);
  f.put("segment.tcp_close", p.segment.tcp_close);
  flat_services(f, "services", p.services);
  f.put("output", p.output);
  f.put("metered", p.metered);
  f.put("unmetered", p.unmetered == Unmetered::drop);
}

void flat_providers(Flat& f, const ProvidersConfig& p) {
  f.put("providers.id", p.id);
  f.put("providers.offers", p.offers);
  f.put("providers.address", p.address);
  f.put("providers.hold", p.hold);
  flat_services(f, "providers.serve", p.serve);
  for (size_t i = 0; i < p.peers.size(); ++i) {
    const PeerConfig& peer = p.peers[i];
    const std::string k = at("providers.peers", i);
    f.entry(k);
    f.put(k + ".id", peer.id);
    f.put(k + ".port", peer.port);
    f.put(k + ".address", peer.address);
    f.put(k + ".mac", peer.mac);
    f.put(k + ".offers", peer.offers);
    f.put(k + ".timeout", peer.timeout);
    f.put(k + ".fallback", peer.fallback == Fallback::drop);
  }
}

void flat_market(Flat& f, const MarketConfig& m) {
  f.put("market.enabled", m.enabled);
  f.put("market.role", m.role);
  f.put("market.appliance", m.appliance);
  f.put("market.rate_share", m.rate_share);
  f.put("market.ledger.url", m.ledger);
  f.put("market.ledger.timeout", m.ledger_timeout);
  f.put("market.currency", m.currency);
  f.put("market.rating_window", m.rating_window);
  f.put("market.bids_per_lot", m.bids_per_lot);
  f.put("market.gateway.kind", m.gateway.kind);
  f.put("market.gateway.url", m.gateway.url);
  f.put("market.gateway.timeout", m.gateway.timeout);
  f.put("market.gateway.retries", m.gateway.retries);
  f.put("market.settlement.deadline", m.settlement.deadline);
  f.put("market.settlement.backoff", m.settlement.backoff);
  f.put("market.settlement.max_backoff", m.settlement.max_backoff);
  f.put("market.activation.attempts", m.activation.attempts);
  f.put("market.activation.backoff", m.activation.backoff);
  const ApiConfig& a = m.api;
  f.put("market.api.listen", a.listen);
  f.put("market.api.threads", a.threads);
  f.put("market.api.body_limit", a.body_limit);
  f.put("market.api.rate_limit", a.rate_limit);
  f.put("market.api.anonymous_rate_limit", a.anonymous_rate_limit);
  f.put("market.api.header_timeout", a.header_timeout);
  f.put("market.api.body_timeout", a.body_timeout);
  f.put("market.api.read_timeout", a.read_timeout);
  f.put("market.api.write_timeout", a.write_timeout);
  f.put("market.api.keep_alive_timeout", a.keep_alive_timeout);
  f.put("market.api.keep_alive_requests", a.keep_alive_requests);
  f.put("market.api.max_connections", a.max_connections);
  f.put("market.api.max_connections_per_address", a.max_connections_per_address);
  f.put("market.api.tls.cert", a.tls_cert);
  f.put("market.api.tls.key", a.tls_key);
  f.put("market.api.tls.ciphers", a.tls_ciphers);
  f.put("market.api.tls.ciphersuites", a.tls_ciphersuites);
  for (size_t i = 0; i < a.tokens.size(); ++i) {
    const TokenConfig& tk = a.tokens[i];
    const std::string k = at("market.api.tokens", i);
    f.entry(k);
    f.put(k + ".principal", tk.principal);
    f.put(k + ".role", tk.role);
    f.put(k + ".owner", tk.owner);
    f.put(k + ".sha256", tk.sha256);
  }
}

void flat_subscribers(Flat& f, const std::vector<SubscriberConfig>& subscribers) {
  for (const SubscriberConfig& s : subscribers) {
    f.put("id", s.id);
    for (const DeviceConfig& d : s.devices) {
      f.put("device.id", d.id);
      f.put("device.ips", d.ips);
      f.put("device.macs", d.macs);
      f.put("device.phones", d.phones);
      f.put("device.vlans", d.vlans);
    }
    f.put("prefixes", s.prefixes);
    f.put("macs", s.macs);
    f.put("vlans", s.vlans);
  }
}

void flat_block(Flat& f, const BlockConfig& b) {
  f.put("id", b.id);
  f.put("profile", b.profile);
  f.put("start_after", b.start_after);
  f.put("start_at", b.start_at);
  f.put("duration", b.duration);
  f.put("min_rate", b.min_rate);
  f.put("max_rate", b.max_rate);
  for (const MemberConfig& m : b.members) {
    f.put_text("member", t(static_cast<int>(m.kind)) + " " + t(m.ip) + " " + t(m.mac) + " " +
                             t(m.vlan) + " " + t(m.name));
  }
}

void flat_restart(Flat& f, const Config& c) {
  flat_eal(f, c.eal);
  flat_ports(f, c.ports);
  flat_pipeline(f, c.pipeline);
  flat_providers(f, c.providers);
  flat_market(f, c.market);
  f.put("metrics.enabled", c.metrics.enabled);
  f.put("metrics.listen", c.metrics.listen);
  f.put("metrics.max_connections", c.metrics.max_connections);
  f.put("metrics.max_connections_per_address", c.metrics.max_connections_per_address);
  f.put("results.file", c.results.file);
  f.put("results.socket", c.results.socket);
}

// The keys of pipeline that change live; every other key flat_restart writes needs a restart.
bool live_key(const std::string& path) {
  return path.starts_with("pipeline.default.");
}

template <typename F>
std::vector<std::pair<std::string, std::string>> flatten(F&& fill) {
  Flat f;
  fill(f);
  return f.entries();
}

// True when `path` lies inside `outer` ("ports[2].mtu" inside "ports[2]").
bool inside(const std::string& path, const std::string& outer) {
  return path.size() > outer.size() && path.starts_with(outer) &&
         (path[outer.size()] == '.' || path[outer.size()] == '[');
}

// Named entries (profiles by name, blocks by id) added, changed and removed.
template <typename T, typename Name, typename Fill>
void diff_named(const std::vector<T>& running, const std::vector<T>& next, Name name, Fill fill,
                bool order_counts, std::vector<std::string>& added,
                std::vector<std::string>& changed, std::vector<std::string>& removed) {
  std::map<std::string, size_t> before;
  for (size_t i = 0; i < running.size(); ++i)
    before.emplace(name(running[i]), i);
  std::set<std::string> seen;
  for (size_t i = 0; i < next.size(); ++i) {
    const std::string n = name(next[i]);
    seen.insert(n);
    auto it = before.find(n);
    if (it == before.end()) {
      added.push_back(n);
    } else if ((order_counts && it->second != i) ||
               flatten([&](Flat& f) { fill(f, running[it->second]); }) !=
                   flatten([&](Flat& f) { fill(f, next[i]); })) {
      changed.push_back(n);
    }
  }
  for (const T& r : running) {
    if (!seen.count(name(r))) removed.push_back(name(r));
  }
}

}  // namespace

ReloadDiff reload_diff(const Config& running, const Config& next) {
  ReloadDiff d;
  const auto before = flatten([&](Flat& f) { flat_restart(f, running); });
  const auto after = flatten([&](Flat& f) { flat_restart(f, next); });
  const std::map<std::string, std::string> before_map(before.begin(), before.end());
  const std::map<std::string, std::string> after_map(after.begin(), after.end());

  // Changed or removed keys in the running file's order, then keys only the new one has.
  std::vector<std::string> changed;
  for (const auto& [path, value] : before) {
    auto it = after_map.find(path);
    if (it == after_map.end() || it->second != value) changed.push_back(path);
  }
  for (const auto& [path, value] : after) {
    if (!before_map.count(path)) changed.push_back(path);
  }
  // An entry added or removed is named once, not with each of its keys.
  std::set<std::string> whole;
  for (const auto& path : changed) {
    if (before_map.count(path) != after_map.count(path)) whole.insert(path);
  }
  for (const auto& path : changed) {
    if (std::any_of(whole.begin(), whole.end(),
                    [&](const std::string& w) { return inside(path, w); })) {
      continue;
    }
    (live_key(path) ? d.live : d.restart).push_back(path);
  }

  // What changes live, section by section in the file's order.
  diff_named(
      running.profiles, next.profiles, [](const ProfileConfig& p) { return p.name; }, flat_profile,
      true, d.profiles_added, d.profiles_changed, d.profiles_removed);
  if (!d.profiles_added.empty() || !d.profiles_changed.empty() || !d.profiles_removed.empty())
    d.live.push_back("profiles");
  if (flatten([&](Flat& f) { flat_subscribers(f, running.subscribers); }) !=
      flatten([&](Flat& f) { flat_subscribers(f, next.subscribers); }))
    d.live.push_back("subscribers");
  diff_named(
      running.blocks, next.blocks, [](const BlockConfig& b) { return b.id; }, flat_block, false,
      d.blocks_added, d.blocks_changed, d.blocks_removed);
  if (!d.blocks_added.empty() || !d.blocks_changed.empty() || !d.blocks_removed.empty())
    d.live.push_back("blocks");
  if (running.log.level != next.log.level) d.live.push_back("log.level");
  return d;
}

namespace {

std::string joined(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string s;
  for (const auto& [path, value] : entries)
    s += t(path) + "=" + value + ";";
  return s;
}

}  // namespace

std::string profile_text(const ProfileConfig& profile) {
  return joined(flatten([&](Flat& f) { flat_profile(f, profile); }));
}

std::string subscribers_text(const std::vector<SubscriberConfig>& subscribers) {
  return joined(flatten([&](Flat& f) { flat_subscribers(f, subscribers); }));
}

std::string block_text(const BlockConfig& block) {
  return joined(flatten([&](Flat& f) { flat_block(f, block); }));
}

}  // namespace segx::config
