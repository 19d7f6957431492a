// The service interface: the built-in count service's per-segment result, result output
// that does not fit, and option checking at configuration load (with positions).

#include "dataplane/service.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rte_cycles.h>

#include "config/loader.hpp"
#include "eal_environment.hpp"

namespace segx::dataplane {
namespace {

using ::testing::HasSubstr;

TEST(CountService, CountsPacketsBytesAndDuration) {
  const ServiceFactory* f = ServiceRegistry::instance().find("count");
  ASSERT_NE(f, nullptr);
  auto service = f->create(config::ServiceConfig{"count", {}, "x"}, config::Config{});
  ASSERT_TRUE(service.ok());
  Segment seg{};
  alignas(16) uint8_t state[64];
  ASSERT_LE(service.value()->state_size(), sizeof state);
  service.value()->open(seg, state);
  rte_mbuf* pkts[3];
  for (int i = 0; i < 3; ++i) {
    pkts[i] = rte_pktmbuf_alloc(segx::test::EalEnvironment::pool());
    ASSERT_NE(rte_pktmbuf_append(pkts[i], static_cast<uint16_t>(100 * (i + 1))), nullptr);
  }
  uint8_t drop[3] = {};
  service.value()->process(seg, state, pkts, 2, drop);
  service.value()->process(seg, state, pkts + 2, 1, drop);
  seg.first_tsc = 0;
  seg.last_tsc = rte_get_tsc_hz() / 1000;  // 1 ms
  ResultWriter out(seg);
  service.value()->close(seg, state, out);
  const std::string result(seg.result, seg.result_len);
  EXPECT_THAT(result, HasSubstr("\"count\": {\"packets\": 3, \"bytes\": 600, \"duration_ns\": "));
  const auto ns = std::stoull(result.substr(result.find("duration_ns\": ") + 14));
  EXPECT_NEAR(static_cast<double>(ns), 1e6, 1e3);
  EXPECT_EQ(drop[0] | drop[1] | drop[2], 0) << "count drops nothing";
  for (rte_mbuf* m : pkts)
    rte_pktmbuf_free(m);
}

TEST(ResultWriter, JoinsServicesAndCutsWhatDoesNotFit) {
  Segment seg{};
  ResultWriter w(seg);
  w.begin("a");
  w.field("n", uint64_t{1});
  w.field("s", "x");
  w.end();
  w.begin("b");
  w.end();
  EXPECT_EQ(std::string(seg.result, seg.result_len), "\"a\": {\"n\": 1, \"s\": \"x\"}, \"b\": {}");
  for (int i = 0; i < 100; ++i)
    w.field("long_key_name", uint64_t{123456789});
  EXPECT_EQ(seg.result_len, segment_result_bytes) << "full: the record writer marks it truncated";
}

TEST(ServiceOptions, CheckedAtLoadWithPositions) {
  const std::string text = R"(eal: {vdevs: [net_null0, net_null1]}
ports:
  - {name: a, device: net_null0}
  - {name: b, device: net_null1, rx_queues: 0}
pipeline:
  lcores: [{lcore: 1, roles: [rx, worker, tx]}]
  default: {action: forward, output: b}
providers:
  offers: [count, pass, magic]
  address: 192.0.2.1
  peers: [{id: peer, port: b, address: 192.0.2.2, offers: [dpi]}]
profiles:
  - name: p
    services:
      - {name: count, window: 5}
      - {name: dpi, patterns: []}
      - dpi
    output: b
)";
  auto r = config::load_string(text, "s.yaml", load_options());
  std::vector<std::string> errors;
  for (const auto& d : r.diagnostics)
    errors.push_back(config::format(d));
  ASSERT_EQ(errors.size(), 3u) << ::testing::PrintToString(errors);
  EXPECT_THAT(errors[0], HasSubstr("s.yaml:9:25: error: providers.offers[2]: service 'magic' is "
                                   "offered here but this build has no such service (available: "
                                   "count, pass)"));
  EXPECT_THAT(errors[1], HasSubstr("s.yaml:15:23: error: profiles[0].services[0].window: unknown "
                                   "key 'window': service 'count' takes no options"));
  // A subcontracted entry is fine bare; with options it is refused (the peer has its own).
  EXPECT_THAT(errors[2], HasSubstr("s.yaml:16:9: error: profiles[0].services[1]: service 'dpi' is "
                                   "offered only by peers, which run it with their own options"));
}

}  // namespace
}  // namespace segx::dataplane
