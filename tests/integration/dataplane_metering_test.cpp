// Time-block metering end to end: a block with a minimum and a maximum rate becomes active
// while segx runs, and ends without a restart. Traffic is offered far above the maximum
// (a capture replayed from memory); the profile's unmetered action is drop, so the output
// capture holds exactly what the block let through. Its rate, measured from the capture's
// timestamps, must not exceed the maximum (tolerance below), and nothing passes before the
// block or after it.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <httplib.h>

#include <csignal>
#include <cstdio>
#include <regex>
#include <thread>

#include "segx_run.hpp"
#include "support.hpp"

namespace segx::test {
namespace {

using namespace std::chrono_literals;

// The block's maximum: 8 Mbit/s is 1,000,000 bytes per second.
constexpr double max_bytes_per_second = 1'000'000;
// Allowed excess over the maximum: the meter's bucket (10 ms at the rate) over a 2 s
// window is 0.5%; the rest covers timestamping.
constexpr double tolerance = 0.10;

class DataplaneMetering : public SegxRun {};

TEST_F(DataplaneMetering, ABlockCutsTrafficToItsMaximumWhileActiveAndOnlyThen) {
  generate(2000, 51);
  const std::string text =
      eal_section({"net_pcap0,rx_pcap=" + (dir_ / "in.pcap").string() + ",infinite_rx=1",
                   "net_pcap1,tx_pcap=" + (dir_ / "out.pcap").string()},
                  "768MiB") +
      "ports:\n  - {name: in, device: net_pcap0}\n  - {name: out, device: net_pcap1, rx_queues: "
      "0}\n" +
      pipeline_section("    action: forward\n    output: out\n") +
      R"(profiles:
  - name: all
    metered: true
    unmetered: drop
    segment: {packets: 64}
    output: out
blocks:
  - id: b1
    profile: all
    start: 1s
    duration: 2s
    min_rate: 2Mbit/s
    max_rate: 8Mbit/s
    members:
      - {ip: 10.0.0.0/8}
      - {ip: 192.0.2.0/24}
      - {ip: "2001:db8::/32"}
)";
  write_file(dir_ / "segx.yaml", text);
  Process p(segx(dir_ / "segx.yaml", {"--duration", "4"}), dir_.path(), "segx");
  ASSERT_EQ(p.wait(300s), 0) << p.out() << p.err();
  EXPECT_THAT(p.err(), ::testing::HasSubstr("segx: block b1 active for 2s (profile all)"));
  EXPECT_THAT(p.err(), ::testing::HasSubstr("segx: block b1 ended"));

  auto r = report();
  ASSERT_EQ(r["blocks"].size(), 1u);
  const auto& b = r["blocks"][0];
  // How long the block really was active: the control loop starts and ends it, a few
  // milliseconds late when the machine is busy.
  const double active = (b["end_ns"].get<int64_t>() - b["start_ns"].get<int64_t>()) / 1e9;
  EXPECT_GT(active, 1.99);
  EXPECT_LT(active, 3.0);

  const auto out = read_pcap_records(dir_ / "out.pcap");
  ASSERT_GT(out.size(), 100u) << "the block let nothing through";
  double bytes = 0;
  for (const auto& rec : out)
    bytes += static_cast<double>(rec.data.size());
  const double span = out.back().time - out.front().time;
  // Only while the block is active (give or take a little queueing before transmission).
  EXPECT_GT(span, active - 0.2);
  EXPECT_LT(span, active + 0.2) << "packets passed outside the block";
  const double rate = bytes / active;
  std::printf(
      "metering: %zu packets, %.0f bytes in %.3f s (block active %.3f s): %.0f bytes/s "
      "for a maximum of %.0f\n",
      out.size(), bytes, span, active, rate, max_bytes_per_second);
  EXPECT_LT(rate, max_bytes_per_second * (1 + tolerance)) << "above the maximum rate";
  EXPECT_GT(rate, max_bytes_per_second * 0.5)
      << "far below the maximum: offered traffic not served";

  EXPECT_EQ(b["id"], "b1");
  const uint64_t passed = b["total"]["green"]["packets"].get<uint64_t>() +
                          b["total"]["yellow"]["packets"].get<uint64_t>();
  EXPECT_EQ(passed, out.size()) << "what the meter passed is what came out";
  EXPECT_EQ(b["total"]["red"]["packets"], r["drops"]["meter_red"]);
  EXPECT_GT(r["drops"]["meter_red"].get<uint64_t>(), passed) << "offered far above the maximum";
  EXPECT_GT(r["drops"]["unmetered"].get<uint64_t>(), 0u) << "before and after the block";
  // Up to the minimum is green: about a quarter of what passed at these rates.
  const double green = b["total"]["green"]["bytes"].get<double>();
  EXPECT_GT(green / bytes, 0.15);
  EXPECT_LT(green / bytes, 0.35);
  EXPECT_EQ(b["members"].size(), 3u);
  EXPECT_EQ(r["mempool"]["in_use"], 0);
  EXPECT_EQ(r["segments_in_use"], 0);
}

// An ended block stays in /metrics for keep_ended, so the scrapes after its end see its final
// counts, and then goes: a long run metering many blocks must not grow without bound.
TEST_F(DataplaneMetering, AnEndedBlockLeavesTheStatisticsAfterKeepEnded) {
  generate(500, 52);
  const std::string text =
      eal_section({"net_pcap0,rx_pcap=" + (dir_ / "in.pcap").string() + ",infinite_rx=1",
                   "net_null1,no-rx=1"}) +
      "ports:\n  - {name: in, device: net_pcap0}\n  - {name: out, device: net_null1, rx_queues: "
      "0}\n" +
      pipeline_section("    action: forward\n    output: out\n", "  metering: {keep_ended: 3s}\n") +
      R"(profiles:
  - name: all
    metered: true
    unmetered: drop
    output: out
blocks:
  - {id: b1, profile: all, start: 0s, duration: 1s, max_rate: 8Mbit/s,
     members: [{ip: 10.0.0.0/8}, {ip: 192.0.2.0/24}, {ip: "2001:db8::/32"}]}
)";
  write_file(dir_ / "segx.yaml", text);
  Process p(segx(dir_ / "segx.yaml", {"--duration", "600"}), dir_.path(), "segx");
  ASSERT_TRUE(p.wait_for_output("metrics: http://", 120s, /*stderr=*/true)) << p.out() << p.err();
  std::smatch m;
  const std::string started = p.err();
  ASSERT_TRUE(
      std::regex_search(started, m, std::regex("metrics: http://127\\.0\\.0\\.1:([0-9]+)/")));
  httplib::Client client("127.0.0.1", std::stoi(m[1]));

  // Ended with its series still there, then without them and counted as expired.
  bool ended_and_listed = false, gone = false;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (!gone && std::chrono::steady_clock::now() < deadline) {
    if (auto res = client.Get("/metrics"); res && res->status == 200) {
      const std::string& body = res->body;
      const bool listed = body.find("segx_block_packets_total{block=\"b1\"") != std::string::npos;
      const bool ended = p.err().find("segx: block b1 ended") != std::string::npos;
      if (listed && ended && body.find("\nsegx_blocks_expired_total 0\n") != std::string::npos)
        ended_and_listed = true;
      gone = ended_and_listed && !listed &&
             body.find("\nsegx_blocks_expired_total 1\n") != std::string::npos;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(ended_and_listed) << "the ended block's final counts were never scraped";
  EXPECT_TRUE(gone) << "the ended block stayed in /metrics past keep_ended";
  // The end's log line keeps its totals.
  EXPECT_THAT(p.err(), ::testing::ContainsRegex("segx: block b1 ended: green [0-9]+ packets"));

  p.signal(SIGTERM);
  ASSERT_EQ(p.wait(300s), 0) << p.out() << p.err();
  auto r = report();
  EXPECT_EQ(r["blocks"].size(), 0u) << r["blocks"].dump();
  EXPECT_EQ(r["blocks_expired"], 1);
  EXPECT_EQ(r["mempool"]["in_use"], 0);
}

}  // namespace
}  // namespace segx::test
