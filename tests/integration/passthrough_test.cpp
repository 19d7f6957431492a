// End-to-end runs of segx on virtual devices: packets in equal packets out, counts add
// up, every mbuf returns to the pool, and stopping by signal drains cleanly.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "segx_run.hpp"
#include "support.hpp"

namespace segx::test {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST_F(SegxRun, PcapInPcapOutKeepsEveryPacketByteForByteInOrder) {
  constexpr int packets = 3000;
  generate(packets, 11, {"--jumbo"});
  // Jumbo frames up to 8 KB: mbufs large enough to hold one whole.
  const auto config = pcap_config("    action: forward\n    output: out\n", "    mtu: 9000\n",
                                  "  mempool:\n    size: 8191\n    data_room: 10240\n");
  Process p(segx(config, {"--max-packets", std::to_string(packets), "--duration", "600"}),
            dir_.path(), "segx");
  ASSERT_EQ(p.wait(300s), 0) << p.out() << p.err();

  const auto in = read_pcap(dir_ / "in.pcap");
  const auto out = read_pcap(dir_ / "out.pcap");
  ASSERT_EQ(in.size(), static_cast<size_t>(packets));
  EXPECT_EQ(packet_difference(out, in), "");
  size_t larger_than_one_mbuf = 0;
  for (const auto& pkt : in)
    larger_than_one_mbuf += pkt.size() > 2048;
  EXPECT_GT(larger_than_one_mbuf, 0u) << "the capture should hold jumbo frames";

  auto r = report();  // not const: a missing key must fail the test, not abort it
  EXPECT_EQ(r["received"], packets);
  EXPECT_EQ(r["transmitted"], packets);
  EXPECT_EQ(r["ports"][0]["rx_packets"], packets);
  EXPECT_EQ(r["ports"][1]["tx_packets"], packets);
  EXPECT_EQ(r["mempool"]["in_use"], 0);
  EXPECT_THAT(p.out(), HasSubstr("mempool: 0 of 8191 mbufs in use at exit (all returned)"));
}

TEST_F(SegxRun, DefaultDropCountsEveryPacketAndSendsNothing) {
  constexpr int packets = 500;
  generate(packets, 12);
  const auto config = pcap_config("    action: drop\n");
  Process p(segx(config, {"--max-packets", std::to_string(packets), "--duration", "600"}),
            dir_.path(), "segx");
  ASSERT_EQ(p.wait(300s), 0) << p.out() << p.err();
  EXPECT_TRUE(read_pcap(dir_ / "out.pcap").empty());
  auto r = report();  // not const: a missing key must fail the test, not abort it
  EXPECT_EQ(r["received"], packets);
  EXPECT_EQ(r["drops"]["no_profile"], packets);
  EXPECT_EQ(r["transmitted"], 0);
  EXPECT_EQ(r["mempool"]["in_use"], 0);
}

TEST_F(SegxRun, DefaultRoutesEachInputToItsOwnOutput) {
  // Two ports, each reading one capture and writing another: a -> b and b -> a.
  generate(400, 21);
  fs::rename(dir_ / "in.pcap", dir_ / "a_in.pcap");
  generate(300, 22);
  fs::rename(dir_ / "in.pcap", dir_ / "b_in.pcap");
  const std::string text =
      eal_section({"net_pcap0,rx_pcap=" + (dir_ / "a_in.pcap").string() +
                       ",tx_pcap=" + (dir_ / "a_out.pcap").string(),
                   "net_pcap1,rx_pcap=" + (dir_ / "b_in.pcap").string() +
                       ",tx_pcap=" + (dir_ / "b_out.pcap").string()}) +
      "ports:\n  - {name: a, device: net_pcap0}\n  - {name: b, device: net_pcap1}\n" +
      pipeline_section("    action: forward\n    by_input: {a: b, b: a}\n");
  write_file(dir_ / "segx.yaml", text);
  Process p(segx(dir_ / "segx.yaml", {"--max-packets", "700", "--duration", "600"}), dir_.path(),
            "segx");
  ASSERT_EQ(p.wait(300s), 0) << p.out() << p.err();
  EXPECT_EQ(packet_difference(read_pcap(dir_ / "b_out.pcap"), read_pcap(dir_ / "a_in.pcap")), "");
  EXPECT_EQ(packet_difference(read_pcap(dir_ / "a_out.pcap"), read_pcap(dir_ / "b_in.pcap")), "");
  EXPECT_EQ(report()["mempool"]["in_use"], 0);
}

// net_null makes packets as fast as it is polled; every one must be accounted for.
fs::path null_config(const fs::path& dir, const std::string& eal) {
  const std::string text = eal +
                           "ports:\n  - name: source\n    device: net_null0\n"
                           "  - name: sink\n    device: net_null1\n    rx_queues: 0\n"
                           "pipeline:\n  lcores:\n    - lcore: 1\n      roles: [rx, worker, tx]\n"
                           "  ring_size: 1024\n  default:\n    action: forward\n    output: sink\n";
  write_file(dir / "null.yaml", text);
  return dir / "null.yaml";
}

// Every packet dropped anywhere in the pipeline, whatever the reason.
uint64_t all_drops(const nlohmann::json& r) {
  uint64_t n = 0;
  for (const auto& [reason, count] : r["drops"].items())
    n += count.get<uint64_t>();
  return n;
}

TEST_F(SegxRun, NullSourceToSinkCountsAddUp) {
  const auto config =
      null_config(dir_.path(), eal_section({"net_null0,size=64", "net_null1,no-rx=1"}));
  // 2M packets take well under a second here; the duration only bounds a broken run.
  Process p(segx(config, {"--max-packets", "2000000", "--duration", "120"}), dir_.path(), "segx");
  ASSERT_EQ(p.wait(180s), 0) << p.out() << p.err();
  auto r = report();  // not const: a missing key must fail the test, not abort it
  const uint64_t received = r["received"];
  EXPECT_GE(received, 2'000'000u);
  EXPECT_EQ(r["ports"][0]["rx_packets"], received);
  EXPECT_EQ(received, r["transmitted"].get<uint64_t>() + all_drops(r) +
                          r["ports"][1]["tx_dropped"].get<uint64_t>());
  EXPECT_EQ(r["ports"][1]["tx_packets"], r["transmitted"]);
  EXPECT_EQ(r["mempool"]["in_use"], 0);
}

TEST_F(SegxRun, SigtermStopsReceivingDrainsAndExitsZero) {
  const auto config =
      null_config(dir_.path(), eal_section({"net_null0,size=64", "net_null1,no-rx=1"}));
  Process p(segx(config, {}), dir_.path(), "segx");
  ASSERT_TRUE(p.wait_for_output("running with", 120s, /*stderr=*/true)) << p.out() << p.err();
  p.signal(SIGTERM);
  ASSERT_EQ(p.wait(120s), 0) << p.out() << p.err();
  EXPECT_THAT(p.err(), HasSubstr("stopping (signal SIGTERM)"));
  EXPECT_THAT(p.out(), HasSubstr("all returned"));
  auto r = report();  // not const: a missing key must fail the test, not abort it
  const uint64_t received = r["received"];
  EXPECT_EQ(received, r["transmitted"].get<uint64_t>() + all_drops(r) +
                          r["ports"][1]["tx_dropped"].get<uint64_t>());
  EXPECT_EQ(r["mempool"]["in_use"], 0);
}

TEST_F(SegxRun, SigintAlsoStopsCleanly) {
  const auto config = null_config(dir_.path(), eal_section({"net_null0", "net_null1,no-rx=1"}));
  Process p(segx(config, {}), dir_.path(), "segx");
  ASSERT_TRUE(p.wait_for_output("running with", 120s, /*stderr=*/true)) << p.out() << p.err();
  p.signal(SIGINT);
  ASSERT_EQ(p.wait(120s), 0) << p.out() << p.err();
  EXPECT_THAT(p.err(), HasSubstr("stopping (signal SIGINT)"));
  EXPECT_EQ(report()["mempool"]["in_use"], 0);
}

TEST_F(SegxRun, MissingCaptureFileIsAClearStartupError) {
  // No in.pcap: the pcap vdev cannot open it, so the port's device never appears.
  const auto config = pcap_config("    action: forward\n    output: out\n");
  Process p(segx(config, {"--duration", "600"}), dir_.path(), "segx");
  EXPECT_EQ(p.wait(120s), 3) << p.out() << p.err();
  EXPECT_THAT(p.err(), HasSubstr("port 'in' (net_pcap0): no such DPDK device"));
}

}  // namespace
}  // namespace segx::test
