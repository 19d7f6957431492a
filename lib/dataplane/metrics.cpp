#include "dataplane/metrics.hpp"

#include <deque>
#include <iterator>

namespace segx::dataplane {

using metrics::FamilySnapshot;
using metrics::HistogramValue;
using metrics::Labels;
using metrics::Type;

namespace {

constexpr const char* colours[3] = {"green", "yellow", "red"};

// A deque: references to families stay valid while more are added.
FamilySnapshot& family(std::deque<FamilySnapshot>& out, const char* name, Type type,
                       const char* help) {
  return out.emplace_back(FamilySnapshot{name, help, type, {}});
}

double d(uint64_t v) {
  return static_cast<double>(v);
}

}  // namespace

std::vector<FamilySnapshot> metric_families(const Stats& s) {
  std::deque<FamilySnapshot> out;
  family(out, "segx_dataplane_running", Type::gauge,
         "1 while the data-plane lcores run; 0 once stopped (the counters are then final)")
      .add({}, s.running ? 1 : 0);
  family(out, "segx_received_packets_total", Type::counter,
         "Packets taken from rx queues by segx, all ports")
      .add({}, d(s.received));
  family(out, "segx_transmitted_packets_total", Type::counter,
         "Packets the devices accepted for transmission, all ports")
      .add({}, d(s.transmitted));

  // Ports: the device's own statistics, then segx's tx drops, then driver-specific xstats.
  struct PortField {
    const char* name;
    const char* help;
    uint64_t PortReport::*field;
  };
  static const PortField port_fields[] = {
      {"segx_port_rx_packets_total", "Packets received by the port (device statistics)",
       &PortReport::rx_packets},
      {"segx_port_rx_bytes_total", "Bytes received by the port (device statistics)",
       &PortReport::rx_bytes},
      {"segx_port_rx_errors_total", "Erroneous packets received by the port",
       &PortReport::rx_errors},
      {"segx_port_rx_missed_packets_total",
       "Packets the device dropped for want of a free rx descriptor (segx too slow)",
       &PortReport::rx_missed},
      {"segx_port_rx_nombuf_total", "Receive failures for want of an mbuf", &PortReport::rx_nombuf},
      {"segx_port_tx_packets_total", "Packets transmitted by the port (device statistics)",
       &PortReport::tx_packets},
      {"segx_port_tx_bytes_total", "Bytes transmitted by the port (device statistics)",
       &PortReport::tx_bytes},
      {"segx_port_tx_errors_total", "Packets the port failed to transmit", &PortReport::tx_errors},
      {"segx_port_tx_dropped_packets_total",
       "Packets handed to the port that it did not take (tx queue full), freed by segx",
       &PortReport::tx_dropped},
  };
  for (const PortField& pf : port_fields) {
    FamilySnapshot& f = family(out, pf.name, Type::counter, pf.help);
    for (const auto& p : s.ports)
      f.add({{"port", p.counters.name}, {"device", p.counters.device}}, d(p.counters.*pf.field));
  }
  FamilySnapshot& xstats = family(out, "segx_port_xstat_total", Type::counter,
                                  "Extended statistics of the port's driver, by DPDK xstat name");
  for (const auto& p : s.ports) {
    for (const auto& [name, value] : p.xstats)
      xstats.add({{"port", p.counters.name}, {"name", name}}, d(value));
  }

  FamilySnapshot& ring_entries = family(out, "segx_ring_entries", Type::gauge,
                                        "Entries (packets and segment close events) in the ring");
  FamilySnapshot& ring_capacity =
      family(out, "segx_ring_capacity_entries", Type::gauge, "Entries the ring can hold");
  FamilySnapshot& ring_enqueued =
      family(out, "segx_ring_enqueued_total", Type::counter, "Entries put into the ring");
  FamilySnapshot& ring_dropped =
      family(out, "segx_ring_dropped_packets_total", Type::counter,
             "Packets dropped because the ring had no room (drop reason ring_full)");
  for (const auto& r : s.rings) {
    const Labels l{{"ring", r.name}};
    ring_entries.add(l, r.entries);
    ring_capacity.add(l, r.capacity);
    ring_enqueued.add(l, d(r.enqueued));
    ring_dropped.add(l, d(r.dropped));
  }

  FamilySnapshot& prof_packets = family(out, "segx_profile_packets_total", Type::counter,
                                        "Packets classified into the profile and admitted");
  FamilySnapshot& prof_bytes = family(out, "segx_profile_bytes_total", Type::counter,
                                      "Frame bytes of the profile's packets");
  FamilySnapshot& prof_segments = family(out, "segx_profile_segments_total", Type::counter,
                                         "Segments of the profile closed, by close reason");
  for (const auto& p : s.profiles) {
    prof_packets.add({{"profile", p.name}}, d(p.packets));
    prof_bytes.add({{"profile", p.name}}, d(p.bytes));
    for (const auto& [reason, n] : p.closed_by)
      prof_segments.add({{"profile", p.name}, {"reason", reason}}, d(n));
  }

  FamilySnapshot& svc_calls = family(out, "segx_service_calls_total", Type::counter,
                                     "Calls of the service on runs of packets of one segment");
  FamilySnapshot& svc_packets =
      family(out, "segx_service_packets_total", Type::counter, "Packets the service processed");
  FamilySnapshot& svc_segments =
      family(out, "segx_service_segments_total", Type::counter, "Segments the service finished");
  for (const auto& sv : s.services) {
    const Labels l{{"profile", sv.profile}, {"service", sv.service}};
    svc_calls.add(l, d(sv.calls));
    svc_packets.add(l, d(sv.packets));
    svc_segments.add(l, d(sv.segments));
  }

  FamilySnapshot& drops = family(out, "segx_dropped_packets_total", Type::counter,
                                 "Packets dropped by segx, by reason (docs/dataplane.md)");
  for (const auto& [reason, n] : s.drops)
    drops.add({{"reason", reason}}, d(n));
  FamilySnapshot& events = family(out, "segx_events_total", Type::counter,
                                  "Data-plane events that are not drops, by kind");
  for (const auto& [event, n] : s.events)
    events.add({{"event", event}}, d(n));

  FamilySnapshot& flows =
      family(out, "segx_flows_active", Type::gauge, "Flows in the rx lcore's flow table");
  FamilySnapshot& flow_capacity = family(out, "segx_flow_table_capacity_flows", Type::gauge,
                                         "Flows the rx lcore's flow table can hold");
  for (const auto& f : s.flows) {
    const Labels l{{"lcore", std::to_string(f.lcore)}};
    flows.add(l, d(f.active));
    flow_capacity.add(l, d(f.capacity));
  }

  FamilySnapshot& block_packets = family(out, "segx_block_packets_total", Type::counter,
                                         "Packets of the time block's members by meter colour "
                                         "(red ones were dropped)");
  FamilySnapshot& block_bytes = family(out, "segx_block_bytes_total", Type::counter,
                                       "Frame bytes of the time block's members by meter colour");
  size_t active_blocks = 0;
  for (const auto& b : s.blocks) {
    active_blocks += b.end_ns == 0;
    for (size_t c = 0; c < 3; ++c) {
      const Labels l{{"block", b.id}, {"colour", colours[c]}};
      block_packets.add(l, d(b.total.packets[c]));
      block_bytes.add(l, d(b.total.bytes[c]));
    }
  }
  family(out, "segx_blocks_active", Type::gauge, "Time blocks active now")
      .add({}, d(active_blocks));
  family(out, "segx_blocks_expired_total", Type::counter,
         "Ended time blocks whose series were removed after pipeline.metering.keep_ended")
      .add({}, d(s.blocks_expired));

  HistogramValue latency{s.latency.bounds, s.latency.counts, s.latency.sum};
  family(out, "segx_segment_latency_seconds", Type::histogram,
         "Time a packet spends in the segment pipeline, from the rx burst that received it to "
         "the tx burst that sent it")
      .add({}, std::move(latency));

  // Subcontracting: per peer, what this provider handed over and got back (evidence for
  // rating the peer), and what it served for the peer. Only with peers configured.
  if (!s.peers.empty()) {
    FamilySnapshot& peer_segments =
        family(out, "segx_peer_segments_total", Type::counter,
               "Segments subcontracted to the peer, by outcome: sent (handed over in full), "
               "returned (result in time), timed_out, refused");
    FamilySnapshot& peer_packets =
        family(out, "segx_peer_packets_total", Type::counter,
               "Packets subcontracted to the peer: sent, returned in time, decided by the "
               "fallback");
    FamilySnapshot& peer_replies =
        family(out, "segx_peer_replies_total", Type::counter,
               "Replies from the peer that were not used: late (after a timeout) or bad");
    FamilySnapshot& peer_served =
        family(out, "segx_peer_served_packets_total", Type::counter,
               "Packets the peer subcontracted here: processed, or refused (returned as sent)");
    FamilySnapshot& peer_served_segments =
        family(out, "segx_peer_served_segments_total", Type::counter,
               "Segments the peer subcontracted here whose result went back");
    FamilySnapshot& peer_rtt =
        family(out, "segx_peer_round_trip_seconds", Type::histogram,
               "Time from sending a packet to the peer to receiving it back");
    // Each counter of SEGX_PEER_COUNTERS names its family and label.
    const auto peer_family = [&](std::string_view metric) -> FamilySnapshot& {
      if (metric == "segx_peer_segments_total") return peer_segments;
      if (metric == "segx_peer_packets_total") return peer_packets;
      if (metric == "segx_peer_replies_total") return peer_replies;
      if (metric == "segx_peer_served_packets_total") return peer_served;
      return peer_served_segments;
    };
    for (const auto& pr : s.peers) {
      const auto add = [&](std::string_view metric, std::string label, std::string value,
                           uint64_t n) {
        Labels labels{{"peer", pr.id}};
        if (!label.empty()) labels.emplace_back(std::move(label), std::move(value));
        peer_family(metric).add(std::move(labels), d(n));
      };
#define SEGX_PEER_METRIC(field, group, key, metric, label, value) \
  add(metric, label, value, pr.field);
      SEGX_PEER_COUNTERS(SEGX_PEER_METRIC)
#undef SEGX_PEER_METRIC
      peer_rtt.add({{"peer", pr.id}},
                   HistogramValue{pr.round_trip.bounds, pr.round_trip.counts, pr.round_trip.sum});
    }
  }

  family(out, "segx_mbufs_in_use", Type::gauge,
         "Packet buffers (mbufs) taken from the pool: in queues, rings and reorder buffers")
      .add({}, s.mempool_in_use);
  family(out, "segx_mbufs_capacity", Type::gauge, "Packet buffers (mbufs) in the pool")
      .add({}, s.mempool_size);
  family(out, "segx_segment_descriptors_in_use", Type::gauge,
         "Segment descriptors taken from their pool: open segments and records not yet written")
      .add({}, s.segments_in_use);
  family(out, "segx_segment_descriptors_capacity", Type::gauge, "Segment descriptors in their pool")
      .add({}, s.segment_pool_size);
  return {std::make_move_iterator(out.begin()), std::make_move_iterator(out.end())};
}

void add_metrics_collector(metrics::Registry& registry, StatsSource source) {
  registry.add_collector([source = std::move(source)](std::vector<FamilySnapshot>& out) {
    auto stats = source();
    if (!stats) return;
    for (auto& f : metric_families(*stats))
      out.push_back(std::move(f));
  });
}

}  // namespace segx::dataplane
