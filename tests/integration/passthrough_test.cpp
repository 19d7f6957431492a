// End-to-end runs of segx on virtual devices: packets in equal packets out, counts add
// up, every mbuf returns to the pool, and stopping by signal drains cleanly.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "support.hpp"

namespace segx::test {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// One segx run: a private directory, a private DPDK file prefix, and cleanup of both.
class SegxRun : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = unique_prefix(info->name());
  }
  void TearDown() override { remove_dpdk_runtime(prefix_); }

  std::string eal_section(const std::vector<std::string>& vdevs) const {
    std::string s =
        "eal:\n  lcores: \"0-1\"\n  memory: 512MiB\n  file_prefix: " + prefix_ + "\n  vdevs:\n";
    for (const auto& v : vdevs)
      s += "    - " + v + "\n";
    return s;
  }

  static std::string pipeline_section(const std::string& default_block,
                                      const std::string& mempool = "") {
    return "pipeline:\n  lcores:\n    - lcore: 1\n      roles: [rx, worker, tx]\n" + mempool +
           "  default:\n" + default_block;
  }

  // Writes a pcap-in, pcap-out configuration.
  fs::path pcap_config(const std::string& default_block, const std::string& port_extra = "",
                       const std::string& mempool = "") {
    const std::string text = eal_section({"net_pcap0,rx_pcap=" + (dir_ / "in.pcap").string(),
                                          "net_pcap1,tx_pcap=" + (dir_ / "out.pcap").string()}) +
                             "ports:\n  - name: in\n    device: net_pcap0\n" + port_extra +
                             "  - name: out\n    device: net_pcap1\n    rx_queues: 0\n" +
                             pipeline_section(default_block, mempool);
    write_file(dir_ / "segx.yaml", text);
    return dir_ / "segx.yaml";
  }

  void generate(int packets, int seed, bool jumbo) {
    std::vector<std::string> argv{"/usr/bin/python3",
                                  (source_root() / "scripts/gen-traffic.py").string(),
                                  "--out",
                                  (dir_ / "in.pcap").string(),
                                  "--packets",
                                  std::to_string(packets),
                                  "--seed",
                                  std::to_string(seed)};
    if (jumbo) argv.push_back("--jumbo");
    ASSERT_EQ(run(argv, dir_.path(), "gen"), 0) << read_file(dir_ / "gen.err");
  }

  nlohmann::json report() const { return nlohmann::json::parse(read_file(dir_ / "report.json")); }

  std::vector<std::string> segx(const fs::path& config, std::vector<std::string> extra) const {
    std::vector<std::string> argv{segx_binary().string(), "--config", config.string(), "--report",
                                  (dir_ / "report.json").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  TempDir dir_;
  std::string prefix_;
};

TEST_F(SegxRun, PcapInPcapOutKeepsEveryPacketByteForByteInOrder) {
  constexpr int packets = 3000;
  generate(packets, 11, /*jumbo=*/true);
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

  const auto r = report();
  EXPECT_EQ(r["received"], packets);
  EXPECT_EQ(r["transmitted"], packets);
  EXPECT_EQ(r["ports"][0]["rx_packets"], packets);
  EXPECT_EQ(r["ports"][1]["tx_packets"], packets);
  EXPECT_EQ(r["mempool"]["in_use"], 0);
  EXPECT_THAT(p.out(), HasSubstr("mempool: 0 of 8191 mbufs in use at exit (all returned)"));
}

TEST_F(SegxRun, DefaultDropCountsEveryPacketAndSendsNothing) {
  constexpr int packets = 500;
  generate(packets, 12, /*jumbo=*/false);
  const auto config = pcap_config("    action: drop\n");
  Process p(segx(config, {"--max-packets", std::to_string(packets), "--duration", "600"}),
            dir_.path(), "segx");
  ASSERT_EQ(p.wait(300s), 0) << p.out() << p.err();
  EXPECT_TRUE(read_pcap(dir_ / "out.pcap").empty());
  const auto r = report();
  EXPECT_EQ(r["received"], packets);
  EXPECT_EQ(r["default_drops"], packets);
  EXPECT_EQ(r["transmitted"], 0);
  EXPECT_EQ(r["mempool"]["in_use"], 0);
}

TEST_F(SegxRun, DefaultRoutesEachInputToItsOwnOutput) {
  // Two ports, each reading one capture and writing another: a -> b and b -> a.
  generate(400, 21, /*jumbo=*/false);
  fs::rename(dir_ / "in.pcap", dir_ / "a_in.pcap");
  generate(300, 22, /*jumbo=*/false);
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

uint64_t ring_drops(const nlohmann::json& r) {
  uint64_t n = 0;
  for (const auto& ring : r["rings"])
    n += ring["dropped_full"].get<uint64_t>();
  return n;
}

TEST_F(SegxRun, NullSourceToSinkCountsAddUp) {
  const auto config =
      null_config(dir_.path(), eal_section({"net_null0,size=64", "net_null1,no-rx=1"}));
  // 2M packets take well under a second here; the duration only bounds a broken run.
  Process p(segx(config, {"--max-packets", "2000000", "--duration", "120"}), dir_.path(), "segx");
  ASSERT_EQ(p.wait(180s), 0) << p.out() << p.err();
  const auto r = report();
  const uint64_t received = r["received"];
  EXPECT_GE(received, 2'000'000u);
  EXPECT_EQ(r["ports"][0]["rx_packets"], received);
  EXPECT_EQ(received, r["transmitted"].get<uint64_t>() + ring_drops(r) +
                          r["ports"][1]["tx_dropped"].get<uint64_t>());
  EXPECT_EQ(r["ports"][1]["tx_packets"], r["transmitted"]);
  EXPECT_EQ(r["mempool"]["in_use"], 0);
}

TEST_F(SegxRun, SigtermStopsReceivingDrainsAndExitsZero) {
  const auto config =
      null_config(dir_.path(), eal_section({"net_null0,size=64", "net_null1,no-rx=1"}));
  Process p(segx(config, {}), dir_.path(), "segx");
  ASSERT_TRUE(p.wait_for_output("running with", 120s)) << p.out() << p.err();
  p.signal(SIGTERM);
  ASSERT_EQ(p.wait(120s), 0) << p.out() << p.err();
  EXPECT_THAT(p.out(), HasSubstr("stopping (signal SIGTERM)"));
  EXPECT_THAT(p.out(), HasSubstr("all returned"));
  const auto r = report();
  const uint64_t received = r["received"];
  EXPECT_EQ(received, r["transmitted"].get<uint64_t>() + ring_drops(r) +
                          r["ports"][1]["tx_dropped"].get<uint64_t>());
  EXPECT_EQ(r["mempool"]["in_use"], 0);
}

TEST_F(SegxRun, SigintAlsoStopsCleanly) {
  const auto config = null_config(dir_.path(), eal_section({"net_null0", "net_null1,no-rx=1"}));
  Process p(segx(config, {}), dir_.path(), "segx");
  ASSERT_TRUE(p.wait_for_output("running with", 120s)) << p.out() << p.err();
  p.signal(SIGINT);
  ASSERT_EQ(p.wait(120s), 0) << p.out() << p.err();
  EXPECT_THAT(p.out(), HasSubstr("stopping (signal SIGINT)"));
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
