#include "config/loader.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace segx::config {
namespace {

// DPDK's RTE_MAX_LCORE in Debian's build.
constexpr unsigned max_lcores = 128;
constexpr uint32_t max_burst = 256;

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items)
    out += (out.empty() ? "" : ", ") + s;
  return out;
}

// A parser for values or ranges within [lo, hi].
std::function<Result<Range>(std::string_view)> range_parser(uint32_t lo, uint32_t hi) {
  return [lo, hi](std::string_view text) -> Result<Range> {
    auto r = parse_range(text, hi);
    if (r && r.value().lo < lo) {
      return Error{"expected a value or a range lo-hi within " + std::to_string(lo) + ".." +
                   std::to_string(hi) + ", got '" + std::string(text) + "'"};
    }
    return r;
  };
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

struct ProtocolName {
  std::string_view name;
  uint8_t number;
  bool has_ports;
};
constexpr ProtocolName protocol_names[] = {
    {"icmp", 1, false}, {"tcp", 6, true},  {"udp", 17, true},     {"gre", 47, false},
    {"esp", 50, false}, {"ah", 51, false}, {"icmpv6", 58, false}, {"sctp", 132, true},
};

// Reads the sections in dependency order: a section that others refer to (ports,
// providers, subscribers) is read before those that refer to it.
class Loader {
 public:
  Loader(Diagnostics& diag, Config& config, const LoadOptions& options)
      : diag_(diag), c_(config), options_(options) {}

  void load(const Value& root) {
    MapReader top(root);
    if (!top.valid()) return;
    auto eal_v = top.get("eal");
    read_eal(eal_v ? *eal_v : section_default("eal", root), c_.eal);
    if (auto v = top.require("ports")) read_ports(*v);
    if (auto v = top.get("providers")) read_providers(*v);
    if (auto v = top.get("subscribers")) read_subscribers(*v);
    if (auto v = top.require("pipeline")) read_pipeline(*v);
    // Served entries are checked like chain entries: with ports, pipeline and providers read.
    if (serve_v_) read_serve(*serve_v_);
    if (auto v = top.get("profiles")) read_profiles(*v);
    if (auto v = top.get("market")) read_market(*v);
    if (auto v = top.get("metrics")) read_metrics(*v);
    if (auto v = top.get("results")) {
      MapReader rm(*v);
      rm.read("file", c_.results.file);
      rm.read("socket", c_.results.socket);
      if (rm.valid() && c_.results.file.empty() && c_.results.socket.empty())
        v->error("results needs a file, a socket, or both");
      if (c_.results.socket.size() >= 108)
        v->error("results.socket: a Unix socket path is at most 107 bytes");
    }
    if (auto v = top.get("blocks")) read_blocks(*v);
    check_listeners(root);
    check_tx_queues();
  }

 private:
  Value section_default(const std::string& name, const Value& root) {
    return Value(YAML::Node(), name, root.mark(), diag_);
  }

  // ---- eal ----------------------------------------------------------------------------
  void read_eal(const Value& v, EalConfig& eal) {
    MapReader m(v);
    if (auto lc = m.get("lcores")) {
      std::optional<std::vector<unsigned>> ids;
      if (lc->is_list()) {
        ids.emplace();
        for (const Value& item : lc->list()) {
          // An entry is an lcore id, or "lcore@cpu" to run that lcore on another CPU.
          std::optional<int64_t> n;
          std::optional<unsigned> cpu;
          const auto text = item.is_scalar() ? item.yaml().Scalar() : std::string();
          if (const size_t at = text.find('@'); at != std::string::npos) {
            auto lcore = parse_range(std::string_view(text).substr(0, at), max_lcores - 1);
            auto c = parse_range(std::string_view(text).substr(at + 1), 1023);
            if (!lcore || !c || lcore.value().lo != lcore.value().hi ||
                c.value().lo != c.value().hi) {
              item.error("expected an lcore id or lcore@cpu such as 2@1, got '" + text + "'");
              continue;
            }
            n = lcore.value().lo;
            cpu = c.value().lo;
          } else {
            n = item.as_int(0, max_lcores - 1);
          }
          if (!n) continue;
          if (std::find(ids->begin(), ids->end(), *n) != ids->end()) {
            item.error("lcore " + std::to_string(*n) + " is listed twice");
          }
          ids->push_back(static_cast<unsigned>(*n));
          if (cpu) eal.cpus[static_cast<unsigned>(*n)] = *cpu;
        }
        std::sort(ids->begin(), ids->end());
      } else {
        ids = lc->as_parsed<std::vector<unsigned>>(
            [](std::string_view s) { return parse_id_list(s, max_lcores); });
      }
      if (ids && ids->empty()) lc->error("at least one lcore is needed");
      if (ids && !ids->empty()) eal.lcores = *ids;
    }
    eal.main_lcore = eal.lcores.front();
    if (auto ml = m.get("main_lcore")) {
      if (auto n = ml->as_int(0, max_lcores - 1)) {
        eal.main_lcore = static_cast<unsigned>(*n);
        if (std::find(eal.lcores.begin(), eal.lcores.end(), eal.main_lcore) == eal.lcores.end()) {
          ml->error("main lcore " + std::to_string(*n) + " is not in eal.lcores");
        }
      }
    }
    if (auto mem = m.get("memory")) {
      if (auto n = mem->as_size(64ull << 20, 1ull << 40)) {
        if (*n % (1ull << 20) != 0) {
          mem->error("must be a whole number of MiB (EAL reserves memory in MiB)");
        } else {
          eal.memory_bytes = *n;
        }
      }
    }
    m.read("hugepages", eal.hugepages);
    m.read_name("file_prefix", eal.file_prefix);
    if (auto vd = m.get("vdevs")) {
      for (const Value& item : vd->list()) {
        auto s = item.as_string();
        if (!s) continue;
        const std::string name = s->substr(0, s->find(','));
        if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
            })) {
          item.error(
              "expected a vdev such as net_pcap0,rx_pcap=in.pcap (driver name and "
              "number, then comma-separated arguments), got '" +
              *s + "'");
          continue;
        }
        if (vdev_names_.count(name)) {
          item.error("vdev '" + name + "' is declared twice");
          continue;
        }
        vdev_names_.insert(name);
        vdev_values_.emplace(name, item);
        eal.vdevs.push_back(*s);
      }
    }
    if (auto pci = m.get("pci_allow")) {
      for (const Value& item : pci->list(true)) {
        auto s = item.as_string();
        if (!s) continue;
        const size_t comma = s->find(',');
        auto addr = parse_pci_address(std::string_view(*s).substr(0, std::min(comma, s->size())));
        if (!addr) {
          item.error(addr.error());
          continue;
        }
        if (pci_addresses_.count(addr.value())) {
          item.error("PCI device " + addr.value() + " is listed twice");
          continue;
        }
        pci_addresses_.insert(addr.value());
        eal.pci_allow.push_back(addr.value() +
                                (comma == std::string::npos ? "" : s->substr(comma)));
      }
    }
    m.read_choice(
        "log_level", eal.log_level,
        {"emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"});
    if (auto ex = m.get("extra_args")) {
      for (const Value& item : ex->list()) {
        if (auto s = item.as_string()) eal.extra_args.push_back(*s);
      }
    }
  }

  // ---- ports --------------------------------------------------------------------------
  void read_ports(const Value& v) {
    auto items = v.items();
    if (!items) return;
    if (items->empty()) v.error("at least one port is needed");
    std::map<std::string, std::string> device_owner;
    for (const Value& item : *items) {
      MapReader m(item);
      if (!m.valid()) continue;
      PortConfig p;
      m.read_name("name", p.name, true);
      if (auto dev = m.require("device")) {
        if (auto s = dev->as_string()) {
          p.device = *s;
          check_device(*dev, p.device);
          if (device_owner.count(p.device)) {
            dev->error("device '" + p.device + "' is already port '" + device_owner[p.device] +
                       "'");
          }
          device_owner[p.device] = p.name;
        }
      }
      m.read("rx_queues", p.rx_queues, 0, 64);
      m.read("tx_queues", p.tx_queues, 1, 64);
      m.read("rx_descriptors", p.rx_descriptors, 32, 32768);
      m.read("tx_descriptors", p.tx_descriptors, 32, 32768);
      m.read("mtu", p.mtu, 68, 16000);
      m.read("promiscuous", p.promiscuous);
      m.read("link_wait", p.link_wait, Duration(0), Duration(5min));
      m.read("gtpu", p.gtpu);
      if (p.name.empty()) continue;
      if (p.name == "drop") {
        item.error("'drop' is reserved (pipeline.default.by_input uses it); choose another name");
        continue;
      }
      if (port_values_.count(p.name)) {
        item.error("port name '" + p.name + "' is used twice");
        continue;
      }
      port_values_.emplace(p.name, item);
      c_.ports.push_back(p);
    }
    // Only an ethdev vdev (net_*, or one of DPDK's eth_* aliases) can be a port; vdevs of
    // other classes (compress_zlib0 for the compress service, say) are for services.
    for (const auto& [vdev, value] : vdev_values_) {
      const bool ethdev = vdev.rfind("net_", 0) == 0 || vdev.rfind("eth_", 0) == 0;
      if (ethdev && !device_owner.count(vdev)) {
        value.warning("vdev '" + vdev + "' is not used by any port; it is created but not polled");
      }
    }
  }

  void check_device(const Value& v, const std::string& device) {
    if (auto pci = parse_pci_address(device)) {
      if (!pci_addresses_.count(pci.value())) {
        v.error("PCI device " + pci.value() + " is not in eal.pci_allow");
      }
      return;
    }
    if (vdev_names_.count(device)) return;
    std::vector<std::string> known(vdev_names_.begin(), vdev_names_.end());
    v.error("device '" + device + "' is neither a vdev in eal.vdevs (" +
            (known.empty() ? std::string("none") : join(known)) +
            ") nor a PCI address in eal.pci_allow");
  }

  bool check_port_ref(const Value& v, const std::string& name) {
    if (port_values_.count(name)) return true;
    std::vector<std::string> names;
    for (const auto& p : c_.ports)
      names.push_back(p.name);
    v.error("no port named '" + name + "' (ports: " + join(names) + ")");
    return false;
  }

  // ---- providers ----------------------------------------------------------------------
  void read_providers(const Value& v) {
    ProvidersConfig& pr = c_.providers;
    MapReader m(v);
    m.read_name("id", pr.id);
    m.read_names("offers", pr.offers);
    if (options_.service_known) {
      if (auto offers = m.get("offers")) {
        for (const Value& item : offers->list(true)) {
          auto name = item.as_string();
          if (name && !options_.service_known(*name)) {
            item.error("service '" + *name +
                       "' is offered here but this build has no such "
                       "service (available: " +
                       options_.services_available + ")");
          }
        }
      }
    }
    std::optional<Value> addr_v = m.get("address");
    if (addr_v) pr.address = addr_v->as_parsed<IpAddress>(parse_ip_address);
    m.read("hold", pr.hold, 16u, 1u << 20);
    serve_v_ = m.get("serve");
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
          check_port_ref(*port, *s);
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

  // ---- subscribers --------------------------------------------------------------------
  void read_subscribers(const Value& v) {
    std::map<std::string, std::string> owner_of;  // identifier -> device id, for duplicates
    std::set<std::string> device_ids;
    const auto claim = [&](const Value& at, const std::string& key, const std::string& device) {
      auto [it, fresh] = owner_of.emplace(key, device);
      if (!fresh) at.error(key + " already belongs to device '" + it->second + "'");
    };
    for (const Value& item : v.list()) {
      MapReader m(item);
      if (!m.valid()) continue;
      SubscriberConfig s;
      m.read_name("id", s.id, true);
      if (!s.id.empty() && !subscriber_ids_.insert(s.id).second) {
        item.error("subscriber id '" + s.id + "' is used twice");
      }
      auto devices = m.require("devices");
      if (!devices) continue;
      for (const Value& dv : devices->list()) {
        MapReader dm(dv);
        if (!dm.valid()) continue;
        DeviceConfig d;
        dm.read_name("id", d.id, true);
        if (!d.id.empty()) device_ids_.insert(d.id);
        if (!d.id.empty() && !device_ids.insert(d.id).second) {
          dv.error("device id '" + d.id + "' is used twice");
        }
        dm.read_each<IpPrefix>("ip", parse_ip_prefix, [&](const Value& x, IpPrefix p) {
          d.ips.push_back(p);
          claim(x, "address " + format_prefix(p), d.id);
        });
        dm.read_each<MacAddress>("mac", parse_mac, [&](const Value& x, MacAddress mac) {
          d.macs.push_back(mac);
          claim(x, "MAC " + format_mac(mac), d.id);
        });
        dm.read_each<std::string>("phone", parse_phone, [&](const Value& x, std::string phone) {
          claim(x, "telephone number " + phone, d.id);
          d.phones.push_back(std::move(phone));
        });
        dm.read_each<Range>("vlan", range_parser(1, 4094), [&](const Value&, Range r) {
          for (uint32_t id = r.lo; id <= r.hi; ++id)
            d.vlans.push_back(static_cast<uint16_t>(id));
        });
        if (d.ips.empty() && d.macs.empty() && d.phones.empty() && d.vlans.empty()) {
          dv.error("a device needs at least one identifier (ip, mac, phone or vlan)");
        }
        s.devices.push_back(d);
      }
      c_.subscribers.push_back(s);
    }
  }

  // ---- pipeline -----------------------------------------------------------------------
  void read_pipeline(const Value& v) {
    PipelineConfig& pl = c_.pipeline;
    MapReader m(v);
    if (!m.valid()) return;
    auto lcores_v = m.require("lcores");
    unsigned rx = 0, workers = 0, tx = 0;
    if (lcores_v) {
      std::set<unsigned> seen;
      const int errors_before = diag_.error_count();
      const auto items = lcores_v->items();
      for (const Value& item : items.value_or(std::vector<Value>{})) {
        MapReader lm(item);
        if (!lm.valid()) continue;
        LcoreConfig lc;
        if (auto id = lm.require("lcore")) {
          if (auto n = id->as_int(0, max_lcores - 1)) {
            lc.lcore = static_cast<unsigned>(*n);
            const auto& eal = c_.eal.lcores;
            if (std::find(eal.begin(), eal.end(), lc.lcore) == eal.end()) {
              id->error("lcore " + std::to_string(*n) + " is not started by EAL (eal.lcores)");
            } else if (lc.lcore == c_.eal.main_lcore) {
              id->error("lcore " + std::to_string(*n) +
                        " is the main lcore, which runs the control plane; give data-plane roles "
                        "to other lcores");
            } else if (!seen.insert(lc.lcore).second) {
              id->error("lcore " + std::to_string(*n) +
                        " is listed twice; give one entry all "
                        "its roles");
            }
          }
        }
        if (auto roles = lm.require("roles")) {
          for (const Value& r : roles->list(true)) {
            auto name = r.as_choice({"rx", "worker", "tx"});
            if (!name) continue;
            const uint8_t bit = *name == "rx" ? role_rx : *name == "worker" ? role_worker : role_tx;
            if (lc.roles & bit) r.error("role '" + *name + "' is listed twice");
            lc.roles |= bit;
          }
          if (lc.roles == 0) roles->error("at least one role (rx, worker, tx) is needed");
        }
        rx += (lc.roles & role_rx) != 0;
        workers += (lc.roles & role_worker) != 0;
        tx += (lc.roles & role_tx) != 0;
        pl.lcores.push_back(lc);
      }
      // Counting roles is only meaningful when every entry was read without error.
      if (diag_.error_count() == errors_before && !pl.lcores.empty() &&
          (rx == 0 || workers == 0 || tx == 0)) {
        lcores_v->error("every role needs at least one lcore; rx: " + std::to_string(rx) +
                        ", worker: " + std::to_string(workers) + ", tx: " + std::to_string(tx));
      }
      if (items && pl.lcores.empty()) lcores_v->error("at least one data-plane lcore is needed");
    }
    m.read("burst", pl.burst, 1, max_burst);
    if (auto ft = m.get("flow_table")) {
      MapReader fm(*ft);
      fm.read("size", pl.flow_table.size, 64, 1 << 24);
      fm.read("idle_timeout", pl.flow_table.idle_timeout, Duration(1s), Duration(24h));
    }
    m.read("segment_pool", pl.segment_pool, 64, 1 << 24);
    if (auto mt = m.get("metering")) {
      MapReader mm(*mt);
      mm.read("blocks", pl.metering.blocks, 1, 65536);
      mm.read("members", pl.metering.members, 1, 1 << 20);
      mm.read("burst", pl.metering.burst, Duration(1ms), Duration(10s));
      mm.read("keep_ended", pl.metering.keep_ended, Duration(0s), Duration(24h * 7));
    }
    if (auto rs = m.get("ring_size")) {
      if (auto n = rs->as_int(2, 1 << 20)) {
        if (static_cast<uint32_t>(*n) < pl.burst) {
          rs->error("must hold at least one burst (" + std::to_string(pl.burst) + ")");
        } else {
          pl.ring_size = static_cast<uint32_t>(*n);
        }
      }
    }
    if (auto mp = m.get("mempool")) {
      MapReader mm(*mp);
      mm.read("size", pl.mempool.size, 64, 1 << 26);
      if (auto cache = mm.get("cache")) {
        // DPDK refuses caches above RTE_MEMPOOL_CACHE_MAX_SIZE or above size / 1.5.
        if (auto n = cache->as_int(0, 512)) {
          if (*n * 3 / 2 > pl.mempool.size) {
            cache->error("cache of " + std::to_string(*n) + " is too large for " +
                         std::to_string(pl.mempool.size) + " mbufs (at most size / 1.5)");
          } else {
            pl.mempool.cache = static_cast<uint32_t>(*n);
          }
        }
      }
      uint64_t data_room = pl.mempool.data_room;
      mm.read_size("data_room", data_room, 128 + 64, 65535);
      pl.mempool.data_room = static_cast<uint32_t>(data_room);
    }
    if (auto d = m.get("default")) {
      MapReader dm(*d);
      std::string action = "forward";
      dm.read_choice("action", action, {"forward", "drop"});
      pl.default_action = action == "forward" ? DefaultAction::forward : DefaultAction::drop;
      // Inputs whose output was given, valid or not: an invalid one is reported already.
      std::set<std::string> routed;
      if (auto out = dm.get("output")) {
        if (auto s = out->as_name(); s && check_port_ref(*out, *s)) pl.default_output = *s;
        for (const PortConfig& p : c_.ports)
          routed.insert(p.name);
      }
      if (auto by = dm.get("by_input")) read_by_input(*by, pl.default_by_input, routed);
      if (pl.default_action == DefaultAction::forward && dm.valid())
        check_default_routes(*d, routed);
    } else {
      v.error("missing required key 'default' (what to do with packets no profile matches)");
    }
    check_queues(v, rx, tx);
  }

  // pipeline.default.by_input: a mapping of input port names to output port names.
  void read_by_input(const Value& v, std::map<std::string, std::string>& out,
                     std::set<std::string>& routed) {
    if (v.is_null()) return;
    if (!v.is_map()) {
      v.error("expected a mapping of input port to output port, such as {in: out, out: in}");
      return;
    }
    for (auto it = v.yaml().begin(); it != v.yaml().end(); ++it) {
      const std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
      Value in(it->first, v.path() + "." + key, to_mark(it->first.Mark()), diag_);
      Value to(it->second, v.path() + "." + key, to_mark(it->second.Mark()), diag_);
      auto in_name = in.as_name();
      auto to_name = to.as_name();
      if (in_name) routed.insert(*in_name);
      if (!in_name || !to_name || !check_port_ref(in, *in_name) ||
          (*to_name != "drop" && !check_port_ref(to, *to_name))) {
        continue;
      }
      if (!out.emplace(*in_name, *to_name).second)
        in.error("input port '" + *in_name + "' is given twice");
    }
  }

  // Every port that receives needs somewhere to send what no profile takes; sending it
  // back out of the port it came from reflects traffic onto the wire, which is rarely meant.
  void check_default_routes(const Value& d, const std::set<std::string>& routed) {
    const PipelineConfig& pl = c_.pipeline;
    for (const PortConfig& p : c_.ports) {
      if (p.rx_queues == 0) continue;
      auto by = pl.default_by_input.find(p.name);
      const std::string& out = by != pl.default_by_input.end() ? by->second : pl.default_output;
      if (out.empty() && !routed.count(p.name)) {
        d.error("default action 'forward' needs an output for packets from port '" + p.name +
                "' (output, or by_input)");
      } else if (out.empty() || out == "drop") {
        continue;
      } else if (out == p.name) {
        d.warning("packets received on port '" + p.name +
                  "' that no profile takes are sent back "
                  "out of it; make the port transmit-only (rx_queues: 0) or route it in by_input");
      }
    }
  }

  // Every port packets can leave by (a default route, a profile's output, a peer's link)
  // needs a tx queue for each tx lcore: they never share one. Other ports need none.
  void check_tx_queues() {
    std::set<std::string> outputs;
    const PipelineConfig& pl = c_.pipeline;
    if (pl.default_action == DefaultAction::forward) {
      if (!pl.default_output.empty()) outputs.insert(pl.default_output);
      for (const auto& [in, out] : pl.default_by_input) {
        if (out != "drop") outputs.insert(out);
      }
    }
    for (const auto& p : c_.profiles)
      outputs.insert(p.output);
    for (const auto& peer : c_.providers.peers)
      outputs.insert(peer.port);
    for (const PortConfig& p : c_.ports) {
      if (!outputs.count(p.name) || tx_lcores_ <= p.tx_queues) continue;
      port_values_.at(p.name).error("port '" + p.name + "' has " + std::to_string(p.tx_queues) +
                                    " tx queue(s) but the pipeline has " +
                                    std::to_string(tx_lcores_) +
                                    " tx lcores; each tx lcore needs its own queue on every "
                                    "port it sends to (tx_queues)");
    }
  }

  // Checks that the ports have something to receive from, and enough mbufs to fill every
  // descriptor and lcore cache.
  void check_queues(const Value& pipeline_v, unsigned rx_lcores, unsigned tx_lcores) {
    unsigned rx_queues = 0;
    uint64_t descriptors = 0;
    for (const PortConfig& p : c_.ports) {
      rx_queues += p.rx_queues;
      descriptors +=
          uint64_t(p.rx_queues) * p.rx_descriptors + uint64_t(p.tx_queues) * p.tx_descriptors;
    }
    tx_lcores_ = tx_lcores;
    if (c_.ports.empty()) return;
    if (rx_queues == 0) {
      pipeline_v.error("no port has rx queues: nothing would be received");
    } else if (rx_lcores > rx_queues) {
      pipeline_v.warning(std::to_string(rx_lcores) + " rx lcores share " +
                         std::to_string(rx_queues) + " rx queues; some rx lcores will be idle");
    }
    const MempoolConfig& mp = c_.pipeline.mempool;
    const uint64_t lcores = c_.pipeline.lcores.size() + 1;  // data plane + main
    const uint64_t needed = descriptors + lcores * (mp.cache + c_.pipeline.burst);
    if (mp.size < needed) {
      pipeline_v.error("pipeline.mempool.size of " + std::to_string(mp.size) +
                       " mbufs cannot fill the " + std::to_string(descriptors) +
                       " port descriptors and " + std::to_string(lcores) +
                       " lcore caches and bursts; it needs at least " + std::to_string(needed));
    }
  }

  // ---- profiles -----------------------------------------------------------------------
  void read_profiles(const Value& v) {
    std::set<std::string> names;
    for (const Value& item : v.list()) {
      MapReader m(item);
      if (!m.valid()) continue;
      ProfileConfig p;
      m.read_name("name", p.name, true);
      if (!p.name.empty() && !names.insert(p.name).second) {
        item.error("profile name '" + p.name + "' is used twice");
      }
      if (auto match = m.get("match")) read_match(*match, p.match);
      if (auto seg = m.get("segment")) read_segment(*seg, p.segment);
      if (auto services = m.get("services")) read_services(*services, p.services);
      if (auto out = m.require("output")) {
        if (auto s = out->as_name(); s && check_port_ref(*out, *s)) p.output = *s;
      }
      m.read("metered", p.metered);
      std::string unmetered = "best_effort";
      m.read_choice("unmetered", unmetered, {"best_effort", "drop"});
      p.unmetered = unmetered == "drop" ? Unmetered::drop : Unmetered::best_effort;
      c_.profiles.push_back(p);
    }
  }

  void read_match(const Value& v, MatchConfig& match) {
    MapReader m(v);
    if (auto ports = m.get("input_ports")) {
      for (const Value& item : ports->list(true)) {
        if (auto s = item.as_name(); s && check_port_ref(item, *s)) match.ports.push_back(*s);
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

  // providers.serve: entries like a chain's, each offered here, one per service.
  void read_serve(const Value& v) {
    std::set<std::string> names;
    for (const Value& item : v.list()) {
      ServiceConfig s;
      s.path = item.path();
      std::optional<Value> name_v;
      if (!entry_name(item, s, name_v)) continue;
      if (!contains(c_.providers.offers, s.name)) {
        name_v->error("service '" + s.name +
                      "' is served to peers but not offered here (providers.offers: " +
                      join(c_.providers.offers) + ")");
        continue;
      }
      if (!names.insert(s.name).second) {
        name_v->error("service '" + s.name + "' is served twice; one entry per service");
        continue;
      }
      if (options_.check_service) options_.check_service(s, true, item, c_);
      c_.providers.serve.push_back(s);
    }
  }

  // A chain entry's name and options: a bare name, or a mapping with `name`. False when
  // the entry has no usable name (reported).
  bool entry_name(const Value& item, ServiceConfig& s, std::optional<Value>& name_v) {
    if (item.is_map()) {
      // Options are the service's own; only the name is checked here.
      YAML::Node options(YAML::NodeType::Map);
      for (auto it = item.yaml().begin(); it != item.yaml().end(); ++it) {
        if (it->first.IsScalar() && it->first.Scalar() == "name") {
          name_v.emplace(it->second, item.path() + ".name", to_mark(it->second.Mark()), diag_);
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

  void read_services(const Value& v, std::vector<ServiceConfig>& out) {
    for (const Value& item : v.list()) {
      ServiceConfig s;
      s.path = item.path();
      std::optional<Value> name_v;
      if (!entry_name(item, s, name_v)) continue;
      bool offered = contains(c_.providers.offers, s.name);
      for (const auto& peer : c_.providers.peers)
        offered = offered || contains(peer.offers, s.name);
      if (!offered) {
        name_v->error("service '" + s.name + "' is offered neither here (providers.offers: " +
                      join(c_.providers.offers) + ") nor by any peer");
      } else if (options_.check_service) {
        options_.check_service(s, contains(c_.providers.offers, s.name), item, c_);
      }
      out.push_back(s);
    }
  }

  // ---- blocks -------------------------------------------------------------------------
  void read_blocks(const Value& v) {
    std::set<std::string> ids;
    for (const Value& item : v.list()) {
      MapReader m(item);
      if (!m.valid()) continue;
      BlockConfig b;
      m.read_name("id", b.id, true);
      if (!b.id.empty() && !ids.insert(b.id).second)
        item.error("block id '" + b.id + "' is used twice");
      if (auto p = m.require("profile")) {
        if (auto name = p->as_name()) {
          const int i = c_.profile_index(*name);
          if (i < 0) {
            p->error("no profile named '" + *name + "'");
          } else if (!c_.profiles[static_cast<size_t>(i)].metered) {
            p->error("profile '" + *name +
                     "' is not metered (metered: true), so a block would "
                     "change nothing");
          } else {
            b.profile = *name;
          }
        }
      }
      if (auto s = m.get("start")) {
        // A duration counts from segx's start; anything else must be an RFC 3339 time.
        auto text = s->as_string();
        if (text && parse_duration(*text)) {
          b.start_after = parse_duration(*text).value();
        } else if (text) {
          b.start_at = s->as_parsed<int64_t>(parse_timestamp);
        }
      }
      m.read("duration", b.duration, Duration(1ms), Duration(std::chrono::hours(24 * 366)));
      if (b.duration == Duration(0) && m.valid()) item.error("missing required key 'duration'");
      if (auto r = m.get("min_rate")) {
        if (auto n = r->as_parsed<uint64_t>(parse_rate)) b.min_rate = *n;
      }
      if (auto r = m.get("max_rate")) {
        if (auto n = r->as_parsed<uint64_t>(parse_rate)) b.max_rate = *n;
      }
      if (b.min_rate > 0 && b.max_rate > 0 && b.min_rate > b.max_rate) {
        item.error("min_rate " + format_rate(b.min_rate) + " is above max_rate " +
                   format_rate(b.max_rate));
      }
      if (auto members = m.require("members")) {
        for (const Value& mv : members->list()) {
          if (auto member = read_member(mv)) b.members.push_back(*member);
        }
        if (members->list().empty()) members->error("a block needs at least one member");
      }
      c_.blocks.push_back(b);
    }
  }

  // A member is a mapping with exactly one key naming what identifies it.
  std::optional<MemberConfig> read_member(const Value& v) {
    if (!v.is_map() || v.yaml().size() != 1) {
      v.error(
          "expected one of {ip: PREFIX}, {mac: MAC}, {vlan: ID}, {phone: NUMBER}, "
          "{device: ID}, {subscriber: ID}");
      return std::nullopt;
    }
    MapReader m(v);
    MemberConfig mc;
    if (auto x = m.get("ip")) {
      mc.kind = MemberConfig::Kind::ip;
      auto p = x->as_parsed<IpPrefix>(parse_ip_prefix);
      if (!p) return std::nullopt;
      if (p->length == 0) {
        // The data plane's LPM tables hold prefixes of length 1 and up.
        x->error("a member prefix of length 0 would match every address; split it in two (" +
                 std::string(p->address.family == 4 ? "0.0.0.0/1 and 128.0.0.0/1"
                                                    : "::/1 and 8000::/1") +
                 ")");
        return std::nullopt;
      }
      mc.ip = *p;
    } else if (auto x = m.get("mac")) {
      mc.kind = MemberConfig::Kind::mac;
      auto mac = x->as_parsed<MacAddress>(parse_mac);
      if (!mac) return std::nullopt;
      mc.mac = *mac;
    } else if (auto x = m.get("vlan")) {
      mc.kind = MemberConfig::Kind::vlan;
      auto n = x->as_int(1, 4094);
      if (!n) return std::nullopt;
      mc.vlan = static_cast<uint16_t>(*n);
    } else if (auto x = m.get("phone")) {
      mc.kind = MemberConfig::Kind::phone;
      auto ph = x->as_parsed<std::string>(parse_phone);
      if (!ph) return std::nullopt;
      mc.name = *ph;
      if (!phone_has_address(mc.name)) {
        x->error("telephone number " + mc.name +
                 " belongs to no subscriber device with an ip "
                 "(subscribers), so its traffic cannot be recognised");
        return std::nullopt;
      }
    } else if (auto x = m.get("device")) {
      mc.kind = MemberConfig::Kind::device;
      auto id = x->as_name();
      if (!id) return std::nullopt;
      if (!device_ids_.count(*id)) {
        x->error("no subscriber device named '" + *id + "'");
        return std::nullopt;
      }
      mc.name = *id;
    } else if (auto x = m.get("subscriber")) {
      mc.kind = MemberConfig::Kind::subscriber;
      auto id = x->as_name();
      if (!id) return std::nullopt;
      if (!subscriber_ids_.count(*id)) {
        x->error("no subscriber named '" + *id + "'");
        return std::nullopt;
      }
      mc.name = *id;
    } else {
      return std::nullopt;  // the reader reports the unknown key
    }
    return mc;
  }

  bool phone_has_address(const std::string& phone) const {
    for (const auto& s : c_.subscribers) {
      for (const auto& d : s.devices) {
        if (!d.ips.empty() && contains(d.phones, phone)) return true;
      }
    }
    return false;
  }

  // ---- market -------------------------------------------------------------------------
  void read_market(const Value& v) {
    MarketConfig& mk = c_.market;
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
      if (auto s = l->as_string()) {
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
    if (auto a = m.get("api")) read_api(*a, mk.api);
  }

  void read_api(const Value& v, ApiConfig& api) {
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
        if (t.owner.empty())
          item.error("a device token needs an owner (the recipient it acts for)");
        devices.emplace_back(item, t);
      }
      api.tokens.push_back(t);
    }
    for (const auto& [item, t] : devices) {
      if (!t.owner.empty() && !recipients.count(t.owner) && !subscriber_ids_.count(t.owner)) {
        item.error("owner '" + t.owner + "' is neither a recipient token nor a subscriber");
      }
    }
  }

  // max_connections and max_connections_per_address of a listener (market.api, metrics).
  void read_connection_caps(MapReader& m, uint32_t& total, uint32_t& per_address) {
    m.read("max_connections", total, 1, 100'000);
    m.read("max_connections_per_address", per_address, 1, 100'000);
    if (per_address > total) {
      if (auto v = m.get("max_connections_per_address"); v)
        v->error("more than max_connections (" + std::to_string(total) + ")");
      else
        per_address = total;
    }
  }

  // ---- metrics ------------------------------------------------------------------------
  void read_metrics(const Value& v) {
    MapReader m(v);
    m.read("enabled", c_.metrics.enabled);
    if (auto l = m.get("listen")) {
      if (auto e = l->as_parsed<Endpoint>(parse_endpoint)) c_.metrics.listen = *e;
      metrics_listen_ = l;
    }
    read_connection_caps(m, c_.metrics.max_connections, c_.metrics.max_connections_per_address);
  }

  void check_listeners(const Value& root) {
    const Endpoint& a = c_.market.api.listen;
    const Endpoint& b = c_.metrics.listen;
    if (c_.market.enabled && c_.metrics.enabled && a.port == b.port && a.port != 0 &&
        (a.host == b.host || a.host == "0.0.0.0" || b.host == "0.0.0.0")) {
      (metrics_listen_ ? *metrics_listen_ : root)
          .error("metrics.listen and market.api.listen are the same port (" +
                 std::to_string(a.port) + ")");
    }
  }

  Diagnostics& diag_;
  Config& c_;
  const LoadOptions& options_;
  std::optional<Value> serve_v_;  // providers.serve, read once pipeline is known
  std::set<std::string> vdev_names_;
  std::map<std::string, Value> vdev_values_;
  std::set<std::string> pci_addresses_;
  std::map<std::string, Value> port_values_;
  std::set<std::string> subscriber_ids_;
  std::set<std::string> device_ids_;
  unsigned tx_lcores_ = 0;
  std::optional<Value> metrics_listen_;
};

LoadResult finish(Diagnostics& diag, Config&& config) {
  LoadResult r;
  r.diagnostics = diag.sorted();
  if (!diag.has_errors()) r.config = std::move(config);
  return r;
}

}  // namespace

LoadResult load_string(std::string_view text, const std::string& name, const LoadOptions& options) {
  Diagnostics diag(name);
  Config config;
  config.source = name;
  const bool blank = std::all_of(
      text.begin(), text.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    diag.error(to_mark(e.mark), "", "not valid YAML: " + e.msg);
    return finish(diag, std::move(config));
  }
  if (blank || root.IsNull()) {
    diag.error({1, 1}, "", "the file is empty; a configuration needs at least ports and pipeline");
    return finish(diag, std::move(config));
  }
  if (!root.IsMap()) {
    diag.error(to_mark(root.Mark()), "",
               "expected a mapping of sections (eal, ports, pipeline, ...) at the top level");
    return finish(diag, std::move(config));
  }
  Loader(diag, config, options).load(Value(root, "", to_mark(root.Mark()), diag));
  return finish(diag, std::move(config));
}

LoadResult load_file(const std::string& path, const LoadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Diagnostics diag(path);
    diag.error({}, "", std::string("cannot read the file: ") + std::strerror(errno));
    LoadResult r;
    r.diagnostics = diag.sorted();
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return load_string(ss.str(), path, options);
}

}  // namespace segx::config
