// The data plane's families from a hand-made Stats: names, labels, values, one group per
// family, and docs/observability.md listing every family.

#include "dataplane/metrics.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "support.hpp"

namespace segx::dataplane {
namespace {

using metrics::add_process_info;
using metrics::Registry;
using metrics::serialize;
using metrics::Type;

using ::testing::HasSubstr;

dataplane::Stats sample_stats() {
  dataplane::Stats s;
  s.running = true;
  dataplane::PortStats port;
  port.counters.name = "in";
  port.counters.device = "net_pcap0";
  port.counters.rx_packets = 10;
  port.counters.rx_bytes = 1000;
  port.xstats = {{"rx_q0_packets", 10}};
  s.ports.push_back(port);
  s.rings.push_back({"rx1>w1", 4096, 3, 12, 1});
  dataplane::ProfileReport web;
  web.name = "web";
  web.packets = 9;
  web.bytes = 900;
  web.segments = 2;
  web.closed_by = {{"packets", 2}, {"idle", 0}};
  s.profiles.push_back(web);
  s.services.push_back({"web", "count", 4, 9, 2});
  s.flows.push_back({1, 65536, 5, 6, 1});
  s.drops = {{"no_profile", 1}, {"meter_red", 0}};
  s.events = {{"flows_created", 6}};
  dataplane::BlockUsage b;
  b.id = "lot-7";
  b.total.packets = {5, 2, 1};
  b.total.bytes = {500, 200, 100};
  s.blocks.push_back(b);
  s.latency = {{1e-6, 1e-3}, {0, 8, 1}, 0.004};
  s.received = 10;
  s.transmitted = 8;
  s.mempool_size = 8191;
  s.mempool_in_use = 17;
  s.segment_pool_size = 4096;
  s.segments_in_use = 2;
  return s;
}

TEST(DataplaneMetrics, EveryCounterWithItsLabels) {
  const std::string text = serialize(metric_families(sample_stats()));
  for (const char* line : {
           "segx_received_packets_total 10\n",
           "segx_transmitted_packets_total 8\n",
           "segx_port_rx_packets_total{port=\"in\",device=\"net_pcap0\"} 10\n",
           "segx_port_rx_bytes_total{port=\"in\",device=\"net_pcap0\"} 1000\n",
           "segx_port_xstat_total{port=\"in\",name=\"rx_q0_packets\"} 10\n",
           "segx_ring_entries{ring=\"rx1>w1\"} 3\n",
           "segx_ring_capacity_entries{ring=\"rx1>w1\"} 4096\n",
           "segx_ring_enqueued_total{ring=\"rx1>w1\"} 12\n",
           "segx_ring_dropped_packets_total{ring=\"rx1>w1\"} 1\n",
           "segx_profile_packets_total{profile=\"web\"} 9\n",
           "segx_profile_bytes_total{profile=\"web\"} 900\n",
           "segx_profile_segments_total{profile=\"web\",reason=\"packets\"} 2\n",
           "segx_profile_segments_total{profile=\"web\",reason=\"idle\"} 0\n",
           "segx_service_calls_total{profile=\"web\",service=\"count\"} 4\n",
           "segx_service_packets_total{profile=\"web\",service=\"count\"} 9\n",
           "segx_service_segments_total{profile=\"web\",service=\"count\"} 2\n",
           "segx_dropped_packets_total{reason=\"no_profile\"} 1\n",
           "segx_dropped_packets_total{reason=\"meter_red\"} 0\n",
           "segx_events_total{event=\"flows_created\"} 6\n",
           "segx_flows_active{lcore=\"1\"} 5\n",
           "segx_flow_table_capacity_flows{lcore=\"1\"} 65536\n",
           "segx_block_packets_total{block=\"lot-7\",colour=\"green\"} 5\n",
           "segx_block_packets_total{block=\"lot-7\",colour=\"red\"} 1\n",
           "segx_block_bytes_total{block=\"lot-7\",colour=\"yellow\"} 200\n",
           "segx_blocks_active 1\n",
           "segx_segment_latency_seconds_bucket{le=\"0.001\"} 8\n",
           "segx_segment_latency_seconds_bucket{le=\"+Inf\"} 9\n",
           "segx_segment_latency_seconds_sum 0.004\n",
           "segx_segment_latency_seconds_count 9\n",
           "segx_mbufs_in_use 17\n",
           "segx_mbufs_capacity 8191\n",
           "segx_segment_descriptors_in_use 2\n",
           "segx_segment_descriptors_capacity 4096\n",
           "segx_dataplane_running 1\n",
       }) {
    EXPECT_THAT(text, HasSubstr(line));
  }
}

TEST(DataplaneMetrics, EmptyStatsStillGiveEveryFamilyOnce) {
  const auto full = metric_families(sample_stats());
  const auto empty = metric_families(dataplane::Stats{});
  ASSERT_EQ(full.size(), empty.size());
  std::set<std::string> names;
  for (const auto& f : full) {
    EXPECT_TRUE(names.insert(f.name).second) << f.name << " twice";
    if (f.type == Type::counter) {
      EXPECT_TRUE(f.name.ends_with("_total")) << f.name;
    }
  }
}

TEST(DataplaneMetrics, TheCollectorCallsItsSourceAtEachScrape) {
  Registry r;
  int calls = 0;
  add_metrics_collector(r, [&calls] {
    ++calls;
    return std::make_shared<const dataplane::Stats>(sample_stats());
  });
  EXPECT_THAT(r.expose(), HasSubstr("segx_received_packets_total 10\n"));
  (void)r.expose();
  EXPECT_EQ(calls, 2);
  Registry none;
  add_metrics_collector(none, [] { return std::shared_ptr<const dataplane::Stats>(); });
  EXPECT_EQ(none.expose(), "");
}

// Subcontracting families appear with peers only, and are documented like the others.
TEST(DataplaneMetrics, PeerFiguresWithPeersOnly) {
  auto s = sample_stats();
  const size_t without = metric_families(s).size();
  dataplane::PeerStats p;
  p.id = "b";
  p.segments_sent = 3;
  p.segments_returned = 2;
  p.segments_timed_out = 1;
  p.packets_fallback = 4;
  p.replies_late = 1;
  p.served_packets = 7;
  p.round_trip = {{1e-6, 1e-3}, {0, 2, 0}, 0.0005};
  s.peers.push_back(p);
  const auto families = metric_families(s);
  EXPECT_EQ(families.size(), without + 6);
  const std::string text = serialize(families);
  for (const char* line : {
           "segx_peer_segments_total{peer=\"b\",outcome=\"sent\"} 3\n",
           "segx_peer_segments_total{peer=\"b\",outcome=\"timed_out\"} 1\n",
           "segx_peer_packets_total{peer=\"b\",outcome=\"fallback\"} 4\n",
           "segx_peer_replies_total{peer=\"b\",kind=\"late\"} 1\n",
           "segx_peer_served_packets_total{peer=\"b\",outcome=\"processed\"} 7\n",
           "segx_peer_round_trip_seconds_count{peer=\"b\"} 2\n",
       })
    EXPECT_THAT(text, HasSubstr(line));
  const std::string doc = test::read_file(test::source_root() / "docs/observability.md");
  for (const auto& f : families)
    EXPECT_THAT(doc, HasSubstr("`" + f.name + "`")) << "docs/observability.md lacks " << f.name;
}

// One list: every family a scrape can show is documented.
TEST(DataplaneMetrics, ObservabilityDocListsEveryFamily) {
  const std::string doc = test::read_file(test::source_root() / "docs/observability.md");
  Registry r;
  add_process_info(r, "1.0", "DPDK 22.11", 0);
  auto families = r.collect();
  for (auto& f : metric_families(sample_stats()))
    families.push_back(f);
  for (const auto& f : families)
    EXPECT_THAT(doc, HasSubstr("`" + f.name + "`")) << "docs/observability.md lacks " << f.name;
}

}  // namespace
}  // namespace segx::dataplane
