// Several rx queues, one lcore each, end to end: segx receives from a veth pair through
// net_af_packet with two queue pairs (the kernel's PACKET_FANOUT_HASH spreads packets over
// the two sockets by flow, as a NIC's RSS spreads them over queues) and two lcores that each
// hold rx, worker and tx, so each runs to completion with its own flow table and tx queue.
// Both queues must receive, no flow may appear on two lcores, each lcore's output must be
// in arrival order, and the segment records must be exactly those the rules make of what was
// sent (the oracle of docs/dataplane.md): a flow split over two lcores would break them.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "support.hpp"

namespace segx::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class Rss : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace";
    // Interface names have at most 15 characters; the pid keeps parallel runs apart.
    const std::string id = std::to_string(getpid() % 100000);
    ns_ = "segx-t-" + id + "-r";
    in_ = "sx" + id + "r";
    prefix_ = unique_prefix("rss");
    veth_ = std::make_unique<VethNamespace>(ns_, in_, "peer-r", dir_.path());
    ASSERT_EQ(veth_->error(), "");
  }

  void TearDown() override {
    veth_.reset();
    remove_dpdk_runtime(prefix_);
  }

  TempDir dir_;
  std::string ns_, in_, prefix_;
  std::unique_ptr<VethNamespace> veth_;
};

TEST_F(Rss, TwoQueuesTwoLcoresEachFlowOnOneLcoreInOrder) {
  constexpr int packets = 2000;
  // No QinQ (the PMD gives an 802.1ad tag back as 802.1Q) and no fragments (the fanout
  // reassembles them: PACKET_FANOUT_FLAG_DEFRAG).
  ASSERT_EQ(run({"/usr/bin/python3", (source_root() / "scripts/gen-traffic.py").string(), "--out",
                 (dir_ / "sent.pcap").string(), "--packets", std::to_string(packets), "--seed",
                 "37", "--no-qinq"},
                dir_.path(), "gen"),
            0);
  // framecnt 4096 per queue holds the whole test's traffic: the fanout never rolls a packet
  // over to the other socket for want of room (PACKET_FANOUT_FLAG_ROLLOVER), which would put
  // a flow on both queues. Lcore 2 shares CPU 0 with the main lcore, which mostly sleeps.
  write_file(dir_ / "segx.yaml",
             "eal:\n  lcores: [0, 1, \"2@0\"]\n  memory: 512MiB\n  file_prefix: " + prefix_ +
                 "\n  vdevs:\n    - net_af_packet0,iface=" + in_ +
                 ",qpairs=2,framecnt=4096\n    - net_pcap1,tx_pcap=" + (dir_ / "o1.pcap").string() +
                 ",tx_pcap=" + (dir_ / "o2.pcap").string() +
                 "\nports:\n  - {name: in, device: net_af_packet0, rx_queues: 2, tx_queues: 2}\n"
                 "  - {name: out, device: net_pcap1, rx_queues: 0, tx_queues: 2}\n"
                 "pipeline:\n  lcores:\n    - {lcore: 1, roles: [rx, worker, tx]}\n"
                 "    - {lcore: 2, roles: [rx, worker, tx]}\n"
                 "  default: {action: forward, output: out}\n"
                 "metrics: {listen: \"127.0.0.1:0\"}\nmarket: {enabled: false}\n"
                 "providers: {offers: [count]}\n"
                 "profiles:\n"
                 "  - {name: web, match: {protocol: tcp}, segment: {packets: 4,"
                 " time: 1h, idle: 1h}, services: [count], output: out}\n"
                 "  - {name: udp, match: {protocol: udp}, segment: {bytes: 3000,"
                 " time: 1h, idle: 1h}, services: [count], output: out}\n"
                 "results: {file: " +
                 (dir_ / "segments.jsonl").string() + "}\n");
  // DPDK 22.11's af_packet PMD names its fanout group (pid ^ ifindex) & 0xffff, shared by the
  // network namespace: a process that meets another's group exits at start (EINVAL). A new
  // process has a new pid: such a start is tried again.
  std::unique_ptr<Process> started;
  for (int attempt = 1; attempt <= 3 && !started; ++attempt) {
    auto p = std::make_unique<Process>(
        std::vector<std::string>{segx_binary().string(), "--config", (dir_ / "segx.yaml").string(),
                                 "--report", (dir_ / "report.json").string(), "--max-packets",
                                 std::to_string(packets), "--duration", "300"},
        dir_.path(), "segx");
    if (p->wait_for_output("running with", 120s, /*stderr=*/true)) {
      started = std::move(p);
    } else {
      ASSERT_THAT(p->err(), ::testing::HasSubstr("could not set PACKET_FANOUT")) << p->out();
      p->wait(60s);
    }
  }
  ASSERT_TRUE(started) << "segx did not start";
  Process& segx = *started;
  // The start-up banner is logged (stderr).
  EXPECT_THAT(segx.err(),
              ::testing::HasSubstr("lcore 1: rx worker tx (run to completion), polls in/0"));
  EXPECT_THAT(segx.err(),
              ::testing::HasSubstr("lcore 2: rx worker tx (run to completion), polls in/1"));
  ASSERT_EQ(run({"/usr/sbin/ip", "netns", "exec", ns_, "/usr/bin/python3",
                 (source_root() / "tests/integration/veth_traffic.py").string(), "send", "peer-r",
                 (dir_ / "sent.pcap").string()},
                dir_.path(), "send"),
            0)
      << read_file(dir_ / "send.err");
  ASSERT_EQ(segx.wait(180s), 0) << segx.out() << segx.err();
  auto r = nlohmann::json::parse(read_file(dir_ / "report.json"));
  ASSERT_EQ(r["received"], packets) << r.dump();
  EXPECT_FALSE(r.contains("rings")) << "each lcore runs to completion: no rings";
  ASSERT_EQ(r["lcores"].size(), 2u) << r.dump();
  for (const auto& l : r["lcores"])
    EXPECT_GT(l["received"].get<uint64_t>(), 100u) << "both queues must receive: " << l.dump();

  // Each lcore sent on its own tx queue what its rx queue took, in arrival order: together
  // they are what was sent, each a subsequence of it.
  const auto sent = read_pcap(dir_ / "sent.pcap");
  const auto o1 = read_pcap(dir_ / "o1.pcap"), o2 = read_pcap(dir_ / "o2.pcap");
  EXPECT_GT(o1.size(), 100u) << "both queues must receive";
  EXPECT_GT(o2.size(), 100u) << "both queues must receive";
  EXPECT_EQ(o1.size() + o2.size(), sent.size());
  std::vector<bool> used(sent.size(), false);
  EXPECT_TRUE(in_order_within(o1, sent, used)) << "lcore 1's output is out of order";
  EXPECT_TRUE(in_order_within(o2, sent, used)) << "lcore 2's output is out of order";

  // A segment id carries its rx lcore in its top byte: no flow has segments on two lcores,
  // and both lcores made segments.
  std::map<std::string, std::set<uint64_t>> lcores_of_flow;
  std::set<uint64_t> lcores;
  std::istringstream lines(read_file(dir_ / "segments.jsonl"));
  std::multiset<std::string> got;
  const auto key = [](const nlohmann::json& rec) {
    return rec["profile"].get<std::string>() + rec["flow"].dump() + " " +
           std::to_string(rec["first_seq"].get<int>()) + "/" +
           std::to_string(rec["packets"].get<int>()) + "/" +
           std::to_string(rec["bytes"].get<int>()) + "/" + rec["close"].get<std::string>();
  };
  for (std::string line; std::getline(lines, line);) {
    const auto rec = nlohmann::json::parse(line);
    const uint64_t lcore = rec["segment"].get<uint64_t>() >> 56;
    lcores_of_flow[rec["flow"].dump()].insert(lcore);
    lcores.insert(lcore);
    got.insert(key(rec));
  }
  EXPECT_EQ(lcores.size(), 2u);
  std::printf("queue 0: %zu packets, queue 1: %zu packets; %zu flows with segments\n", o1.size(),
              o2.size(), lcores_of_flow.size());  // for the log
  for (const auto& [flow, on] : lcores_of_flow)
    EXPECT_EQ(on.size(), 1u) << "flow " << flow << " on " << on.size() << " lcores";

  // The records are exactly the segments the rules make of what was sent.
  ASSERT_EQ(
      run({"/usr/bin/python3", (source_root() / "tests/integration/segment_oracle.py").string(),
           "--config", (dir_ / "segx.yaml").string(), "--pcap", (dir_ / "sent.pcap").string(),
           "--port", "in", "--out", (dir_ / "expected.json").string()},
          dir_.path(), "oracle"),
      0)
      << read_file(dir_ / "oracle.err");
  const auto expected = nlohmann::json::parse(read_file(dir_ / "expected.json"));
  std::multiset<std::string> want;
  for (const auto& rec : expected["records"])
    want.insert(key(rec));
  EXPECT_GT(want.size(), 100u);
  EXPECT_EQ(got, want);
  uint64_t in_records = 0, in_profiles = 0;
  for (const auto& rec : expected["records"])
    in_records += rec["packets"].get<uint64_t>();
  for (const auto& prof : r["profiles"])
    in_profiles += prof["packets"].get<uint64_t>();
  EXPECT_EQ(in_records, in_profiles) << "every packet of a profile is in one record";
  EXPECT_EQ(r["mempool"]["in_use"], 0);
  EXPECT_EQ(r["segments_in_use"], 0);
}

}  // namespace
}  // namespace segx::test
