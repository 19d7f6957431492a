// Counters for readers: the per-lcore counters summed (relaxed loads), ports, rings and
// pools read, by the main lcore only (Dataplane::stats, StatsExchange).

#include <rte_cycles.h>
#include <rte_ethdev.h>

#include "dataplane/dataplane_impl.hpp"

namespace segx::dataplane {

std::shared_ptr<const Stats> Dataplane::stats(std::chrono::milliseconds wait) const {
  return impl_->exchange->get(wait);
}

Stats Dataplane::Impl::collect() {
  Stats s;
  s.running = launched && !stopped;
  if (xstat_names.empty()) {
    for (uint16_t id : port_ids) {
      std::vector<std::string> names;
      const int n = rte_eth_xstats_get_names(id, nullptr, 0);
      if (n > 0) {
        std::vector<rte_eth_xstat_name> raw(static_cast<size_t>(n));
        const int got = rte_eth_xstats_get_names(id, raw.data(), static_cast<unsigned>(n));
        for (int i = 0; i < got && i < n; ++i)
          names.emplace_back(raw[static_cast<size_t>(i)].name);
      }
      xstat_names.push_back(std::move(names));
    }
  }
  for (size_t i = 0; i < port_ids.size(); ++i) {
    PortStats ps;
    PortReport& pr = ps.counters;
    pr.name = config.ports[i].name;
    pr.device = config.ports[i].device;
    rte_eth_stats st{};
    if (port_open[i] && rte_eth_stats_get(port_ids[i], &st) == 0) {
      pr.rx_packets = st.ipackets;
      pr.rx_bytes = st.ibytes;
      pr.rx_missed = st.imissed;
      pr.rx_errors = st.ierrors;
      pr.rx_nombuf = st.rx_nombuf;
      pr.tx_packets = st.opackets;
      pr.tx_bytes = st.obytes;
      pr.tx_errors = st.oerrors;
    }
    for (const auto& plan : plans)
      pr.tx_dropped += plan->counters.tx_dropped[i].get();
    const auto& names = xstat_names[i];
    if (port_open[i] && !names.empty()) {
      std::vector<rte_eth_xstat> values(names.size());
      const int n =
          rte_eth_xstats_get(port_ids[i], values.data(), static_cast<unsigned>(names.size()));
      for (int k = 0; k < n && static_cast<size_t>(k) < values.size(); ++k) {
        if (values[static_cast<size_t>(k)].id < names.size()) {
          ps.xstats.emplace_back(names[values[static_cast<size_t>(k)].id],
                                 values[static_cast<size_t>(k)].value);
        }
      }
    }
    s.ports.push_back(std::move(ps));
  }
  for (size_t k = 0; k < rings.size(); ++k) {
    RingStats rs;
    rs.name = ring_names[k];
    rs.capacity = rte_ring_get_capacity(rings[k]);
    rs.entries = rte_ring_count(rings[k]);
    for (const auto& plan : plans) {
      rs.enqueued += plan->counters.ring_enqueued[k].get();
      rs.dropped += plan->counters.ring_dropped[k].get();
    }
    s.rings.push_back(rs);
  }
  // A profile's counters: those of its running version, of earlier versions still draining
  // (reload.cpp), and of versions gone; services by name within the profile.
  // (live_slots is shorter than the profiles only when create() failed halfway.)
  for (size_t p = 0; p < config.profiles.size() && p < live_slots.size(); ++p) {
    ProfileReport pr;
    pr.name = config.profiles[p].name;
    for (size_t reason = 1; reason < static_cast<size_t>(CloseReason::count_); ++reason)
      pr.closed_by[std::string(close_reason_name(static_cast<CloseReason>(reason)))] = 0;
    if (auto it = profile_carry.find(pr.name); it != profile_carry.end()) {
      pr.packets = it->second.packets;
      pr.bytes = it->second.bytes;
      pr.segments = it->second.segments;
      for (const auto& [reason, n] : it->second.closed_by)
        pr.closed_by[reason] += n;
    }
    const uint32_t live = live_slots[p];
    std::vector<ServiceStats> services;
    for (const auto& e : config.profiles[p].services) {
      ServiceStats ss{pr.name, e.name};
      const bool first = std::none_of(services.begin(), services.end(),
                                      [&](const ServiceStats& x) { return x.service == e.name; });
      if (auto it = service_carry.find({pr.name, e.name}); first && it != service_carry.end()) {
        ss.calls = it->second.calls;  // earlier versions' count, at its first place in the chain
        ss.packets = it->second.packets;
        ss.segments = it->second.segments;
      }
      services.push_back(ss);
    }
    for (uint32_t slot = 0; slot < slots.size(); ++slot) {
      if (slots[slot].state == ProfileSlot::State::free || slots[slot].name != pr.name) continue;
      if (slot != live && slots[slot].state != ProfileSlot::State::retiring) continue;
      for (const auto& plan : plans) {
        const ProfileCounters& pc = plan->counters.profiles[slot];
        add_counters(pr, pc);
      }
      for (size_t i = 0; i < slots[slot].services.size(); ++i) {
        // The running version by place, an earlier one by name.
        auto to = slot == live
                      ? services.begin() + static_cast<ptrdiff_t>(i)
                      : std::find_if(services.begin(), services.end(), [&](const ServiceStats& x) {
                          return x.service == slots[slot].services[i];
                        });
        if (to == services.end()) continue;  // a service the profile no longer runs
        for (const LcorePlan* w : shared.worker_lcores) {
          if (i >= w->counters.services[slot].size()) continue;
          const ServiceCounters& sc = w->counters.services[slot][i];
          to->calls += sc.calls.get();
          to->packets += sc.packets.get();
          to->segments += sc.segments.get();
        }
      }
    }
    s.profiles.push_back(pr);
    for (ServiceStats& ss : services)
      s.services.push_back(std::move(ss));
  }
  for (size_t e = 1; e < static_cast<size_t>(ParseError::count_); ++e)
    s.drops[std::string(parse_error_name(static_cast<ParseError>(e)))] = 0;
  for (size_t e = 0; e < static_cast<size_t>(Drop::count_); ++e)
    s.drops[std::string(drop_name(static_cast<Drop>(e)))] = 0;
  for (size_t e = 0; e < static_cast<size_t>(Event::count_); ++e)
    s.events[std::string(event_name(static_cast<Event>(e)))] = 0;
  s.latency.bounds.assign(latency_bounds.begin(), latency_bounds.end());
  s.latency.counts.assign(latency_bounds.size() + 1, 0);
  uint64_t latency_tsc = 0;
  for (const auto& plan : plans) {
    const LcoreCounters& c = plan->counters;
    s.received += c.rx_packets.get();
    for (size_t e = 1; e < c.parse.size(); ++e)
      s.drops[std::string(parse_error_name(static_cast<ParseError>(e)))] += c.parse[e].get();
    for (size_t e = 0; e < c.drops.size(); ++e)
      s.drops[std::string(drop_name(static_cast<Drop>(e)))] += c.drops[e].get();
    for (size_t e = 0; e < c.events.size(); ++e)
      s.events[std::string(event_name(static_cast<Event>(e)))] += c.events[e].get();
    for (size_t i = 0; i < port_ids.size(); ++i)
      s.transmitted += c.tx_packets[i].get();
    for (size_t b = 0; b < c.latency.size(); ++b)
      s.latency.counts[b] += c.latency[b].get();
    latency_tsc += c.latency_tsc.get();
    if (plan->roles & config::role_rx) {
      FlowTableStats f;
      f.lcore = plan->lcore;
      f.capacity = config.pipeline.flow_table.size;
      f.created = c.events[static_cast<size_t>(Event::flows_created)].get();
      f.evicted = c.events[static_cast<size_t>(Event::flows_evicted)].get();
      // Two relaxed loads taken apart: an eviction may be seen without its creation.
      f.active = f.created > f.evicted ? f.created - f.evicted : 0;
      s.flows.push_back(f);
    }
  }
  s.latency.sum = static_cast<double>(latency_tsc) / static_cast<double>(rte_get_tsc_hz());
  // Tunnel messages refused at rx, by what was wrong with them.
  for (size_t e = 1; e < static_cast<size_t>(geneve::Error::count_); ++e) {
    uint64_t n = 0;
    for (const auto& plan : plans)
      n += plan->counters.tunnel[e].get();
    s.drops["tunnel_" + std::string(geneve::error_name(static_cast<geneve::Error>(e)))] = n;
  }
  for (size_t i = 0; i < config.providers.peers.size(); ++i) {
    PeerStats ps;
    ps.id = config.providers.peers[i].id;
    ps.round_trip.bounds.assign(latency_bounds.begin(), latency_bounds.end());
    ps.round_trip.counts.assign(latency_bounds.size() + 1, 0);
    uint64_t rtt_tsc = 0;
    for (const auto& plan : plans) {
      const PeerCounters& c = plan->counters.peers[i];
#define SEGX_PEER_SUM(field, ...) ps.field += c.field.get();
      SEGX_PEER_COUNTERS(SEGX_PEER_SUM)
#undef SEGX_PEER_SUM
      for (size_t b = 0; b < c.round_trip.size(); ++b)
        ps.round_trip.counts[b] += c.round_trip[b].get();
      rtt_tsc += c.round_trip_tsc.get();
    }
    ps.round_trip.sum = static_cast<double>(rtt_tsc) / static_cast<double>(rte_get_tsc_hz());
    s.peers.push_back(std::move(ps));
  }
  s.blocks = block_usage;
  s.blocks_expired = blocks_expired;
  if (metering) {
    for (const std::string& id : metering->active()) {
      if (auto u = metering->usage(id)) s.blocks.push_back(u.value());
    }
  }
  if (pool != nullptr) {
    s.mempool_size = pool->size;
    s.mempool_in_use = rte_mempool_in_use_count(pool);
  }
  if (segments != nullptr) {
    s.segment_pool_size = segments->size;
    s.segments_in_use = rte_mempool_in_use_count(segments);
  }
  return s;
}

uint64_t Dataplane::received() const {
  uint64_t n = 0;
  for (const auto& plan : impl_->plans)
    n += plan->counters.rx_packets.get();
  return n;
}

}  // namespace segx::dataplane
