// DPDK telemetry commands under /segx/, answered from the same counters as /metrics
// (dpdk-telemetry.py -f PREFIX, then /segx/stats). Callbacks run on DPDK's telemetry
// threads; they read a published Stats, never the lcores' state directly.
//
// DPDK 22.11 nests containers one level deep: every reply is a dictionary whose values are
// numbers, strings, or dictionaries of those. It also silently drops an entry whose name has
// anything but letters, digits and '_': names made of an operator's words (ports, profiles,
// blocks) are keyed by a cleaned copy and carry the real one in a "name" member.

#include <rte_telemetry.h>

#include <cstring>
#include <functional>
#include <mutex>
#include <string_view>

#include "dataplane/stats.hpp"

namespace segx::dataplane {

namespace {

// A telemetry command waits this long for the main lcore to gather fresh counters.
constexpr std::chrono::milliseconds fresh_wait{500};
// DPDK's limit on dictionary entries (RTE_TEL_MAX_DICT_ENTRIES) with room to say more.
constexpr size_t max_entries = 240;

std::mutex source_mutex;
std::shared_ptr<StatsExchange> source;
std::vector<ProfileInfo> profile_info;

// The counters now, or null without a data plane.
std::shared_ptr<const Stats> current(std::vector<ProfileInfo>* profiles = nullptr) {
  std::shared_ptr<StatsExchange> ex;
  {
    std::lock_guard lock(source_mutex);
    ex = source;
    if (profiles) *profiles = profile_info;
  }
  return ex ? ex->get(fresh_wait) : nullptr;
}

// A dictionary key DPDK accepts: letters, digits and '_'.
std::string key(std::string_view prefix, std::string_view name) {
  std::string k(prefix);
  for (char ch : name) {
    const bool ok =
        (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    k += ok ? ch : '_';
  }
  return k;
}

void add_u64(rte_tel_data* d, const std::string& name, uint64_t v) {
  rte_tel_data_add_dict_u64(d, name.c_str(), v);
}

// Adds a dictionary of numbers under `name`; the parent keeps it.
rte_tel_data* add_dict(rte_tel_data* d, const std::string& name,
                       const std::function<void(rte_tel_data*)>& fill) {
  rte_tel_data* child = rte_tel_data_alloc();
  if (child == nullptr) return nullptr;
  rte_tel_data_start_dict(child);
  fill(child);
  if (rte_tel_data_add_dict_container(d, name.c_str(), child, 0) != 0) rte_tel_data_free(child);
  return child;
}

int no_dataplane(rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_string(d, "error", "no data plane is running");
  return 0;
}

int cmd_stats(const char*, const char*, rte_tel_data* d) {
  auto s = current();
  if (!s) return no_dataplane(d);
  rte_tel_data_start_dict(d);
  add_u64(d, "running", s->running);
  add_u64(d, "received", s->received);
  add_u64(d, "transmitted", s->transmitted);
  uint64_t dropped = 0;
  for (const auto& [reason, n] : s->drops)
    dropped += n;
  add_u64(d, "dropped", dropped);
  add_u64(d, "mempool_size", s->mempool_size);
  add_u64(d, "mempool_in_use", s->mempool_in_use);
  add_u64(d, "segments_in_use", s->segments_in_use);
  add_dict(d, "drops", [&](rte_tel_data* c) {
    for (const auto& [reason, n] : s->drops)
      add_u64(c, reason, n);
  });
  add_dict(d, "events", [&](rte_tel_data* c) {
    for (const auto& [event, n] : s->events)
      add_u64(c, event, n);
  });
  for (size_t i = 0; i < s->ports.size() && i < max_entries / 2; ++i) {
    const PortReport& p = s->ports[i].counters;
    add_dict(d, key("port_", p.name), [&](rte_tel_data* c) {
      rte_tel_data_add_dict_string(c, "name", p.name.c_str());
      rte_tel_data_add_dict_string(c, "device", p.device.c_str());
      add_u64(c, "rx_packets", p.rx_packets);
      add_u64(c, "rx_bytes", p.rx_bytes);
      add_u64(c, "rx_missed", p.rx_missed);
      add_u64(c, "rx_errors", p.rx_errors);
      add_u64(c, "rx_nombuf", p.rx_nombuf);
      add_u64(c, "tx_packets", p.tx_packets);
      add_u64(c, "tx_bytes", p.tx_bytes);
      add_u64(c, "tx_errors", p.tx_errors);
      add_u64(c, "tx_dropped", p.tx_dropped);
    });
  }
  for (const RingStats& r : s->rings) {
    add_dict(d, key("ring_", r.name), [&](rte_tel_data* c) {
      rte_tel_data_add_dict_string(c, "name", r.name.c_str());
      add_u64(c, "capacity", r.capacity);
      add_u64(c, "entries", r.entries);
      add_u64(c, "enqueued", r.enqueued);
      add_u64(c, "dropped", r.dropped);
    });
  }
  return 0;
}

int cmd_profiles(const char*, const char*, rte_tel_data* d) {
  std::vector<ProfileInfo> info;
  auto s = current(&info);
  if (!s) return no_dataplane(d);
  rte_tel_data_start_dict(d);
  for (size_t i = 0; i < s->profiles.size() && i < max_entries; ++i) {
    const ProfileReport& p = s->profiles[i];
    add_dict(d, key("", p.name), [&](rte_tel_data* c) {
      rte_tel_data_add_dict_string(c, "name", p.name.c_str());
      if (i < info.size()) {
        rte_tel_data_add_dict_string(c, "output", info[i].output.c_str());
        rte_tel_data_add_dict_string(c, "services", info[i].services.c_str());
        add_u64(c, "metered", info[i].metered);
      }
      add_u64(c, "packets", p.packets);
      add_u64(c, "bytes", p.bytes);
      add_u64(c, "segments", p.segments);
      for (const auto& [reason, n] : p.closed_by)
        add_u64(c, "closed_" + reason, n);
    });
  }
  return 0;
}

int cmd_blocks(const char*, const char*, rte_tel_data* d) {
  auto s = current();
  if (!s) return no_dataplane(d);
  rte_tel_data_start_dict(d);
  static constexpr const char* colours[3] = {"green", "yellow", "red"};
  // Most recent last in Stats; show the newest when there are too many.
  const size_t first = s->blocks.size() > max_entries ? s->blocks.size() - max_entries : 0;
  for (size_t i = first; i < s->blocks.size(); ++i) {
    const BlockUsage& b = s->blocks[i];
    add_dict(d, key("", b.id), [&](rte_tel_data* c) {
      rte_tel_data_add_dict_string(c, "name", b.id.c_str());
      add_u64(c, "active", b.end_ns == 0);
      add_u64(c, "start_ns", static_cast<uint64_t>(b.start_ns));
      add_u64(c, "end_ns", static_cast<uint64_t>(b.end_ns));
      add_u64(c, "members", b.members.size());
      for (size_t k = 0; k < 3; ++k) {
        add_u64(c, std::string(colours[k]) + "_packets", b.total.packets[k]);
        add_u64(c, std::string(colours[k]) + "_bytes", b.total.bytes[k]);
      }
    });
  }
  return 0;
}

int cmd_flows(const char*, const char*, rte_tel_data* d) {
  auto s = current();
  if (!s) return no_dataplane(d);
  rte_tel_data_start_dict(d);
  uint64_t active = 0, capacity = 0;
  for (const FlowTableStats& f : s->flows) {
    active += f.active;
    capacity += f.capacity;
    add_dict(d, "lcore_" + std::to_string(f.lcore), [&](rte_tel_data* c) {
      add_u64(c, "capacity", f.capacity);
      add_u64(c, "active", f.active);
      add_u64(c, "created", f.created);
      add_u64(c, "evicted", f.evicted);
    });
  }
  add_u64(d, "active", active);
  add_u64(d, "capacity", capacity);
  add_u64(d, "table_full",
          s->events.count("flow_table_full") ? s->events.at("flow_table_full") : 0);
  return 0;
}

}  // namespace

void telemetry_attach(std::shared_ptr<StatsExchange> exchange, std::vector<ProfileInfo> profiles) {
  static std::once_flag registered;
  std::call_once(registered, [] {
    rte_telemetry_register_cmd("/segx/stats", cmd_stats,
                               "segx totals, drops by reason, events, ports and rings");
    rte_telemetry_register_cmd("/segx/profiles", cmd_profiles,
                               "segx profiles: packets, bytes, segments by close reason");
    rte_telemetry_register_cmd("/segx/blocks", cmd_blocks,
                               "segx time blocks: packets and bytes by meter colour");
    rte_telemetry_register_cmd("/segx/flows", cmd_flows,
                               "segx flow tables: active flows per rx lcore");
  });
  std::lock_guard lock(source_mutex);
  source = std::move(exchange);
  profile_info = std::move(profiles);
}

void telemetry_profiles(std::vector<ProfileInfo> profiles) {
  std::lock_guard lock(source_mutex);
  profile_info = std::move(profiles);
}

void telemetry_detach() {
  std::lock_guard lock(source_mutex);
  source.reset();
  profile_info.clear();
}

}  // namespace segx::dataplane
