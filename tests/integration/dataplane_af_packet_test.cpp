// segx between two network namespaces on net_af_packet over veth pairs: traffic sent by
// scapy in one namespace is classified and segmented, and arrives unchanged and in order
// in the other; the segment records are the ones the oracle of docs/dataplane.md predicts.
// The test makes the namespaces and veth pairs and removes them, even when it fails.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>

#include <set>
#include <sstream>

#include "support.hpp"

namespace segx::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class AfPacket : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces";
    // Interface names have at most 15 characters; the pid keeps parallel runs apart.
    const std::string id = std::to_string(getpid() % 100000);
    ns_a_ = "segx-t-" + id + "-a";
    ns_b_ = "segx-t-" + id + "-b";
    in_ = "sx" + id + "i";
    out_ = "sx" + id + "o";
    prefix_ = unique_prefix("afpacket");
    veth_a_ = std::make_unique<VethNamespace>(ns_a_, in_, "peer-a", dir_.path());
    ASSERT_EQ(veth_a_->error(), "");
    veth_b_ = std::make_unique<VethNamespace>(ns_b_, out_, "peer-b", dir_.path());
    ASSERT_EQ(veth_b_->error(), "");
  }

  void TearDown() override {
    veth_b_.reset();
    veth_a_.reset();
    remove_dpdk_runtime(prefix_);
  }

  std::vector<std::string> traffic(const std::string& ns, std::vector<std::string> args) const {
    std::vector<std::string> argv{"/usr/sbin/ip",
                                  "netns",
                                  "exec",
                                  ns,
                                  "/usr/bin/python3",
                                  (source_root() / "tests/integration/veth_traffic.py").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  TempDir dir_;
  std::string ns_a_, ns_b_, in_, out_, prefix_;
  std::unique_ptr<VethNamespace> veth_a_, veth_b_;
};

TEST_F(AfPacket, PacketsCrossFromOneNamespaceToTheOtherUnchanged) {
  constexpr int packets = 300;
  ASSERT_EQ(
      run({"/usr/bin/python3", (source_root() / "scripts/gen-traffic.py").string(), "--out",
           (dir_ / "sent.pcap").string(), "--packets", std::to_string(packets), "--seed", "31",
           // The kernel strips the outer VLAN tag and DPDK 22.11's af_packet PMD puts it
           // back with TPID 0x8100, whatever it was: QinQ frames would not come out as sent.
           "--no-qinq"},
          dir_.path(), "gen"),
      0);
  write_file(dir_ / "segx.yaml",
             "eal:\n  lcores: \"0-1\"\n  memory: 512MiB\n  file_prefix: " + prefix_ +
                 "\n  vdevs:\n    - net_af_packet0,iface=" + in_ +
                 "\n    - net_af_packet1,iface=" + out_ +
                 "\nports:\n  - {name: in, device: net_af_packet0}\n"
                 "  - {name: out, device: net_af_packet1, rx_queues: 0}\n"
                 "pipeline:\n  lcores: [{lcore: 1, roles: [rx, worker, tx]}]\n"
                 "  default: {action: forward, output: out}\n"
                 "metrics: {listen: \"127.0.0.1:0\"}\n"
                 "profiles:\n"
                 "  - {name: web, match: {protocol: tcp}, segment: {packets: 4,"
                 " time: 1h, idle: 1h}, services: [count], output: out}\n"
                 "  - {name: udp, match: {protocol: udp}, segment: {bytes: 3000,"
                 " time: 1h, idle: 1h}, services: [count], output: out}\n"
                 "results: {file: " +
                 (dir_ / "segments.jsonl").string() + "}\n");
  Process segx({segx_binary().string(), "--config", (dir_ / "segx.yaml").string(), "--report",
                (dir_ / "report.json").string()},
               dir_.path(), "segx");
  ASSERT_TRUE(segx.wait_for_output("running with", 120s, /*stderr=*/true))
      << segx.out() << segx.err();

  // tcpdump exits after the expected count; -U writes each packet as it comes.
  Process sniff(
      {"/usr/sbin/ip", "netns", "exec", ns_b_, "/usr/bin/tcpdump", "-i", "peer-b", "-n", "-U", "-B",
       "8192", "-c", std::to_string(packets), "-w", (dir_ / "received.pcap").string()},
      dir_.path(), "sniff");
  ASSERT_TRUE(sniff.wait_for_output("listening on", 120s, /*stderr=*/true)) << sniff.err();
  Process send(traffic(ns_a_, {"send", "peer-a", (dir_ / "sent.pcap").string()}), dir_.path(),
               "send");
  ASSERT_EQ(send.wait(120s), 0) << send.err();
  ASSERT_EQ(sniff.wait(180s), 0) << sniff.err();
  EXPECT_THAT(sniff.err(), ::testing::HasSubstr(std::to_string(packets) + " packets captured"));

  segx.signal(SIGTERM);
  ASSERT_EQ(segx.wait(120s), 0) << segx.out() << segx.err();
  EXPECT_EQ(packet_difference(read_pcap(dir_ / "received.pcap"), read_pcap(dir_ / "sent.pcap")),
            "");

  // The records are the segments the rules make of what was sent.
  ASSERT_EQ(
      run({"/usr/bin/python3", (source_root() / "tests/integration/segment_oracle.py").string(),
           "--config", (dir_ / "segx.yaml").string(), "--pcap", (dir_ / "sent.pcap").string(),
           "--port", "in", "--out", (dir_ / "expected.json").string()},
          dir_.path(), "oracle"),
      0)
      << read_file(dir_ / "oracle.err");
  const auto expected = nlohmann::json::parse(read_file(dir_ / "expected.json"));
  const auto key = [](const nlohmann::json& r) {
    return r["profile"].get<std::string>() + r["flow"].dump() +
           std::to_string(r["first_seq"].get<int>()) + "/" +
           std::to_string(r["packets"].get<int>()) + "/" + std::to_string(r["bytes"].get<int>()) +
           "/" + r["close"].get<std::string>();
  };
  std::multiset<std::string> want, got;
  for (const auto& rec : expected["records"])
    want.insert(key(rec));
  std::istringstream lines(read_file(dir_ / "segments.jsonl"));
  for (std::string line; std::getline(lines, line);)
    got.insert(key(nlohmann::json::parse(line)));
  EXPECT_GT(want.size(), 20u);
  EXPECT_EQ(got, want);
  auto r = nlohmann::json::parse(read_file(dir_ / "report.json"));
  EXPECT_EQ(r["ports"][0]["rx_packets"], packets) << r.dump();
  EXPECT_EQ(r["ports"][1]["tx_packets"], packets);
  EXPECT_EQ(r["mempool"]["in_use"], 0);
}

}  // namespace
}  // namespace segx::test
