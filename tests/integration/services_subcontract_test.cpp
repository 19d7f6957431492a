// Subcontracting between two segx processes: A offers fingerprint, B
// offers dpi, and A's profile chain needs both. A sends each segment's packets to B inside
// GENEVE; B runs its DPI entry (providers.serve) and returns packets and result; A puts the
// packets back in their places and B's result in the segment's record.
//
// 1. A's output equals its input, in order; A's records hold B's DPI matches for exactly
//    the segments whose packets carry the patterns; both processes return every mbuf.
// 2. B is killed (SIGKILL) or stopped (SIGTERM) while A forwards an endless replay: A's
// subcontracts time out, the
//    fallback passes their packets, it is counted, A keeps forwarding, and A returns every
//    mbuf at exit.
//
// Test 1 joins A and B with net_memif, B as server and A as client: a memif server can send
// only into buffers its client has posted, which A does from its first poll, while B
// (started first, link_wait 0s) answers only what A sent. A stops first: DPDK 22.11's memif
// PMD unmaps the shared memory under the side that stays when its peer disconnects, so A
// says goodbye and B stops polling the link before A closes it (it crashed B in about 1 run
// in 25 before). Tests 2 stop B while A polls the link; they use net_af_packet on a veth pair
// the test makes and removes (a SIGKILLed peer says no goodbye).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "segx_run.hpp"
#include "support.hpp"

namespace segx::test {
namespace {

using namespace std::chrono_literals;

// B's DPI entry, served to peers: the patterns of tests/integration/services_check.py.
constexpr const char* serve_dpi = R"(  serve:
    - name: dpi
      patterns:
        - {id: split, regex: attack-signature}
        - {id: absent, regex: "never[- ]here"}
        - {id: copy, regex: mirror-me}
)";

class ServicesSubcontract : public SegxRun {
 protected:
  void SetUp() override {
    SegxRun::SetUp();
    prefix_b_ = prefix_ + "-b";  // unique_prefix() shortens the tag: suffix after it
  }
  void TearDown() override {
    // The veth pair goes even when the test failed (deleting one end deletes both).
    if (!veth_a_.empty()) run({"/usr/sbin/ip", "link", "del", veth_a_}, dir_.path(), "cleanup");
    SegxRun::TearDown();
    remove_dpdk_runtime(prefix_b_);
  }

  // The link: memif (B server, A client) by default, or af_packet on a veth pair.
  void use_memif() {
    const std::string socket =
        ",socket=" + (dir_ / "memif.sock").string() + ",socket-abstract=no,id=0";
    link_a_ = "net_memif0,role=client" + socket;
    link_b_ = "net_memif0,role=server" + socket;
    link_device_ = "net_memif0";
  }
  void use_veth() {
    // Interface names have at most 15 characters; the pid keeps parallel runs apart.
    const std::string id = std::to_string(getpid() % 100000);
    veth_a_ = "sx" + id + "la";
    const std::string veth_b = "sx" + id + "lb";
    ip({"link", "add", veth_a_, "type", "veth", "peer", "name", veth_b});
    for (const auto& dev : {veth_a_, veth_b}) {
      // No IPv6: its router and multicast chatter would only be dropped at both ends.
      ASSERT_EQ(run({"/usr/sbin/sysctl", "-qw", "net.ipv6.conf." + dev + ".disable_ipv6=1"},
                    dir_.path(), "ip"),
                0);
      ip({"link", "set", dev, "up"});
    }
    link_a_ = "net_af_packet0,iface=" + veth_a_;
    link_b_ = "net_af_packet0,iface=" + veth_b;
    link_device_ = "net_af_packet0";
  }
  void ip(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/sbin/ip"};
    argv.insert(argv.end(), args.begin(), args.end());
    ASSERT_EQ(run(argv, dir_.path(), "ip"), 0) << read_file(dir_ / "ip.err");
  }

  // A: `input` on port in, the second stream to out, the link to B; B runs dpi.
  void write_a(const std::string& input, const std::string& output, const std::string& peer,
               const std::string& results) {
    // A's data-plane lcore is CPU 1, B's CPU 0: two busy-polling processes, one CPU each.
    const std::string text =
        "eal:\n  lcores: \"0-1\"\n  memory: 512MiB\n  file_prefix: " + prefix_ +
        "\n  vdevs:\n    - " + input + "\n    - " + output + "\n    - " + link_a_ +
        "\nmetrics: {listen: \"127.0.0.1:0\"}\nmarket: {enabled: false}\n"
        "ports:\n  - {name: in, device: net_pcap0}\n"
        "  - {name: out, device: " +
        output.substr(0, output.find(',')) +
        ", rx_queues: 0}\n"
        "  - {name: link, device: " +
        link_device_ +
        "}\n"
        "pipeline:\n  lcores: [{lcore: 1, roles: [rx, worker, tx]}]\n"
        "  default: {action: forward, output: out, by_input: {link: drop}}\n"
        "providers:\n  id: a\n  offers: [fingerprint]\n  address: 10.99.0.1\n  peers:\n"
        "    - {id: b, port: link, address: 10.99.0.2, offers: [dpi], " +
        peer +
        "}\n"
        "profiles:\n  - name: all\n    segment: {packets: 4, time: 1h, idle: 1h}\n"
        "    output: out\n    services: [fingerprint, dpi]\n" +
        results;
    write_file(dir_ / "a.yaml", text);
  }

  void write_b() {
    const std::string text =
        "eal:\n  lcores: \"0-1\"\n  main_lcore: 1\n  memory: 512MiB\n  file_prefix: " + prefix_b_ +
        "\n  vdevs:\n    - " + link_b_ +
        "\nmetrics: {listen: \"127.0.0.1:0\"}\nmarket: {enabled: false}\n"
        "ports:\n  - {name: link, device: " +
        link_device_ +
        ", link_wait: 0s}\n"
        "pipeline:\n  lcores: [{lcore: 0, roles: [rx, worker, tx]}]\n"
        "  default: {action: drop}\n"
        "providers:\n  id: b\n  offers: [dpi]\n  address: 10.99.0.2\n  peers:\n"
        "    - {id: a, port: link, address: 10.99.0.1, offers: [fingerprint]}\n" +
        std::string(serve_dpi);
    write_file(dir_ / "b.yaml", text);
  }

  void check_configs() {
    for (const char* name : {"a.yaml", "b.yaml"}) {
      ASSERT_EQ(run({segx_binary().string(), "--check-config", (dir_ / name).string()}, dir_.path(),
                    "check"),
                0)
          << name << ": " << read_file(dir_ / "check.err");
    }
  }

  // Starts a segx over net_af_packet and waits for `ready` in its output. DPDK 22.11's
  // af_packet PMD names its PACKET_FANOUT group (pid ^ ifindex) & 0xffff, and group ids are
  // shared by all af_packet sockets of the network namespace: a process whose pid and
  // ifindex differ from another's (a test side by side) by the same bits gets EINVAL and
  // exits. A new process has a new pid, so such a start is tried again; any other failure
  // to start fails the test.
  std::unique_ptr<Process> start_on_af_packet(const std::vector<std::string>& argv,
                                              const std::string& name, const std::string& ready) {
    for (int attempt = 1;; ++attempt) {
      auto p = std::make_unique<Process>(argv, dir_.path(), name);
      if (p->wait_for_output(ready, 120s, /*stderr=*/true)) return p;
      const bool fanout = p->err().find("could not set PACKET_FANOUT") != std::string::npos;
      if (!fanout || attempt == 3) {
        ADD_FAILURE() << name << " did not start:\n" << p->out() << p->err();
        return nullptr;
      }
      p->wait(60s);
      std::printf("%s: the af_packet PMD's fanout group id was taken; starting it again\n",
                  name.c_str());
    }
  }

  std::vector<std::string> segx_b() const {
    return {segx_binary().string(), "--config", (dir_ / "b.yaml").string(), "--report",
            (dir_ / "b.json").string()};
  }

  static uint16_t metrics_port(const Process& p) {
    std::smatch m;
    const std::string out = p.err();
    if (!std::regex_search(out, m, std::regex("metrics: http://127\\.0\\.0\\.1:([0-9]+)/metrics")))
      return 0;
    return static_cast<uint16_t>(std::stoi(m[1]));
  }

  // A sample of A's /metrics ("name{labels}"), or -1 when it cannot be read.
  static double sample(uint16_t port, const std::string& series) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(5);
    client.set_read_timeout(10);
    auto res = client.Get("/metrics");
    if (!res || res->status != 200) return -1;
    std::istringstream in(res->body);
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
    }
    return -1;
  }

  // Waits (generously) until the series reaches at least `value`.
  static bool wait_for_sample(uint16_t port, const std::string& series, double value) {
    const auto end = std::chrono::steady_clock::now() + 180s;
    while (std::chrono::steady_clock::now() < end) {
      if (sample(port, series) >= value) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  // Starts B and A (A replaying endlessly), stops B with `sig` once A has had results back,
  // and checks that A times out, falls back, keeps forwarding and leaks nothing.
  void stop_peer_midway(int sig);

  std::string prefix_b_;
  std::string link_a_, link_b_, link_device_, veth_a_;
};

TEST_F(ServicesSubcontract, PeerRunsDpiAndTheStreamKeepsItsOrder) {
  const std::string script = (source_root() / "tests/integration/services_check.py").string();
  ASSERT_EQ(
      run({"/usr/bin/python3", script, "gen", (dir_ / "in.pcap").string()}, dir_.path(), "gen"), 0)
      << read_file(dir_ / "gen.err");
  use_memif();
  const auto sent = read_pcap(dir_ / "in.pcap");
  write_a("net_pcap0,rx_pcap=" + (dir_ / "in.pcap").string(),
          "net_pcap1,tx_pcap=" + (dir_ / "out.pcap").string(),
          "timeout: 10s, fallback: drop",  // a fallback would show as missing packets
          "results: {file: " + (dir_ / "a.jsonl").string() + "}\n");
  write_b();
  check_configs();

  Process b(segx_b(), dir_.path(), "b");
  ASSERT_TRUE(b.wait_for_output("running with", 120s, /*stderr=*/true)) << b.out() << b.err();
  Process a(
      segx(dir_ / "a.yaml", {"--max-packets", std::to_string(sent.size()), "--duration", "300"}),
      dir_.path(), "a");
  ASSERT_EQ(a.wait(300s), 0) << a.out() << a.err();
  b.signal(SIGTERM);
  ASSERT_EQ(b.wait(120s), 0) << b.out() << b.err();

  // The second stream is the first, packet for packet, in order.
  EXPECT_EQ(packet_difference(read_pcap(dir_ / "out.pcap"), sent), "");

  // B's DPI result is in the record of each segment, with matches exactly where the
  // patterns are: "attack-sig|nature" split across packets 1 and 2 of flow 10.1.0.1:40001
  // (its first segment), "mirror-me" in packet 5 of flow 10.1.0.2:40002 (its second).
  const auto records = read_jsonl(dir_ / "a.jsonl");
  ASSERT_EQ(records.size(), 18u) << "6 flows of 10 packets in segments of 4, 4 and 2";
  int split = 0, copy = 0;
  for (const auto& rec : records) {
    ASSERT_TRUE(rec["services"].contains("fingerprint")) << rec.dump();
    ASSERT_TRUE(rec["services"].contains("dpi")) << rec.dump();
    const auto& dpi = rec["services"]["dpi"];
    EXPECT_EQ(dpi["peer"], "b") << rec.dump();
    EXPECT_FALSE(dpi.contains("status")) << "the result came from b: " << rec.dump();
    const auto& patterns = dpi["patterns"];
    EXPECT_FALSE(patterns.contains("absent")) << rec.dump();
    const bool split_here = rec["flow"]["sport"] == 40001 && rec["first_seq"] == 0;
    const bool copy_here = rec["flow"]["sport"] == 40002 && rec["first_seq"] == 4;
    EXPECT_EQ(patterns.value("split", 0), split_here ? 1 : 0) << rec.dump();
    EXPECT_EQ(patterns.value("copy", 0), copy_here ? 1 : 0) << rec.dump();
    EXPECT_EQ(dpi["matches"], (split_here || copy_here) ? 1 : 0) << rec.dump();
    split += patterns.value("split", 0);
    copy += patterns.value("copy", 0);
  }
  EXPECT_EQ(split, 1);
  EXPECT_EQ(copy, 1);

  const auto ra = nlohmann::json::parse(read_file(dir_ / "report.json"));
  ASSERT_EQ(ra["peers"].size(), 1u) << ra.dump();
  const auto& pa = ra["peers"][0];
  std::printf("A's figures for peer b: %s\n", pa.dump().c_str());  // for the log
  EXPECT_EQ(pa["id"], "b");
  EXPECT_EQ(pa["segments"]["sent"], 18) << pa.dump();
  EXPECT_EQ(pa["segments"]["returned"], 18) << pa.dump();
  EXPECT_EQ(pa["segments"]["timed_out"], 0) << pa.dump();
  EXPECT_EQ(pa["packets"]["sent"], sent.size()) << pa.dump();
  EXPECT_EQ(pa["packets"]["returned"], sent.size()) << pa.dump();
  EXPECT_EQ(pa["packets"]["fallback"], 0) << pa.dump();
  EXPECT_EQ(pa["round_trip"]["packets"], sent.size()) << pa.dump();
  EXPECT_EQ(ra["mempool"]["in_use"], 0) << ra.dump();
  EXPECT_EQ(ra["segments_in_use"], 0) << ra.dump();

  const auto rb = nlohmann::json::parse(read_file(dir_ / "b.json"));
  ASSERT_EQ(rb["peers"].size(), 1u) << rb.dump();
  EXPECT_EQ(rb["peers"][0]["served"]["segments"], 18) << rb.dump();
  EXPECT_EQ(rb["peers"][0]["served"]["packets"], sent.size()) << rb.dump();
  EXPECT_EQ(rb["peers"][0]["served"]["refused"], 0) << rb.dump();
  EXPECT_EQ(rb["events"].value("peer_goodbye", 0), 1) << "A said goodbye before it closed the link";
  EXPECT_EQ(rb["mempool"]["in_use"], 0) << rb.dump();
  EXPECT_EQ(rb["segments_in_use"], 0) << rb.dump();
}

void ServicesSubcontract::stop_peer_midway(int sig) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for a veth pair";
  use_veth();
  if (HasFatalFailure()) return;
  const std::string script = (source_root() / "tests/integration/services_check.py").string();
  ASSERT_EQ(
      run({"/usr/bin/python3", script, "gen", (dir_ / "in.pcap").string()}, dir_.path(), "gen"), 0)
      << read_file(dir_ / "gen.err");
  // An endless replay into a sink: A is forwarding whenever B goes away.
  write_a("net_pcap0,rx_pcap=" + (dir_ / "in.pcap").string() + ",infinite_rx=1",
          "net_null0,no-rx=1", "timeout: 200ms, fallback: pass", "");
  write_b();
  check_configs();

  auto started_b = start_on_af_packet(segx_b(), "b", "running with");
  ASSERT_TRUE(started_b);
  auto started_a =
      start_on_af_packet(segx(dir_ / "a.yaml", {"--duration", "600"}), "a", "metrics: http://");
  ASSERT_TRUE(started_a);
  Process &a = *started_a, &b = *started_b;
  const uint16_t port = metrics_port(a);
  ASSERT_NE(port, 0) << a.out();
  const std::string returned = "segx_peer_segments_total{peer=\"b\",outcome=\"returned\"}";
  const std::string timed_out = "segx_peer_segments_total{peer=\"b\",outcome=\"timed_out\"}";
  ASSERT_TRUE(wait_for_sample(port, returned, 20)) << a.out() << a.err();

  b.signal(sig);
  const auto b_exit = b.wait(120s);
  ASSERT_TRUE(b_exit.has_value());
  // Killed, it dies of the signal; told to stop, it drains and exits 0.
  EXPECT_EQ(*b_exit, sig == SIGKILL ? 128 + SIGKILL : 0) << b.out() << b.err();
  ASSERT_TRUE(wait_for_sample(port, timed_out, 5)) << a.out() << a.err();
  // Forwarding goes on after the peer is gone.
  const double forwarded = sample(port, "segx_transmitted_packets_total");
  ASSERT_GT(forwarded, 0);
  EXPECT_TRUE(wait_for_sample(port, "segx_transmitted_packets_total", forwarded + 1000)) << a.out();

  a.signal(SIGTERM);
  ASSERT_EQ(a.wait(120s), 0) << "exit 4 would mean mbufs not returned\n" << a.out() << a.err();
  const auto r = report();
  ASSERT_EQ(r["peers"].size(), 1u) << r.dump();
  const auto& pa = r["peers"][0];
  std::printf("A's figures for peer b: %s\n", pa.dump().c_str());  // for the log
  EXPECT_GE(pa["segments"]["returned"].get<int>(), 20) << pa.dump();
  EXPECT_GE(pa["segments"]["timed_out"].get<int>(), 5) << pa.dump();
  EXPECT_GT(pa["packets"]["fallback"].get<int>(), 0) << pa.dump();
  EXPECT_EQ(r["mempool"]["in_use"], 0) << r.dump();
  EXPECT_EQ(r["segments_in_use"], 0) << r.dump();
  EXPECT_EQ(r["reorder_stranded"], 0) << r.dump();
  EXPECT_EQ(r.value("drops", nlohmann::json::object()).value("reorder_window", 0), 0) << r.dump();
}

// Tunnel messages that are malformed, from a stranger, or late arrive on A's link (a pcap)
// among its traffic; no peer ever answers. Each bad message is dropped and counted by
// reason, every segment times out and passes by the fallback, and the output still equals
// the input in order.
constexpr const char* bad_messages = R"(
import struct, sys
from scapy.all import Ether, IP, UDP, Raw, wrpcap
def geneve(options, payload=b"", first=None, flags=0x40):
    first = len(options) // 4 if first is None else first
    return bytes([first, flags]) + struct.pack("!H", 0x6558) + bytes(4) + options + payload
def segx(kind=0, handle=0, generation=77, reply=True):
    return struct.pack("!HBB", 0xFF53, 0x82 if reply else 0x81, 9) + struct.pack(
        "!QIIIIII", 7, 0, 0, 0, handle, 5, generation) + bytes([kind, 0, 0, 0])
inner = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP() / UDP())
def msg(body, src="10.99.0.2"):
    return Ether(src="02:00:00:00:00:0b") / IP(src=src, dst="10.99.0.1") / UDP(
        sport=49152, dport=6081) / Raw(body)
wrpcap(sys.argv[1], [
    msg(geneve(segx(), inner, first=0x40 | 10)),              # tunnel_bad_version
    msg(geneve(b"", inner)),                                  # tunnel_no_option
    msg(geneve(struct.pack("!HBB", 0x0101, 0x80, 0), inner)), # tunnel_unknown_critical
    msg(geneve(segx())[:20]),                                 # tunnel_truncated
    msg(geneve(segx(), inner), src="10.99.0.9"),              # tunnel_stranger
    msg(geneve(segx(), inner)),                               # a late reply
])
)";

TEST_F(ServicesSubcontract, BadTunnelMessagesAreCountedAndSilentPeersTimeOut) {
  const std::string script = (source_root() / "tests/integration/services_check.py").string();
  ASSERT_EQ(
      run({"/usr/bin/python3", script, "gen", (dir_ / "in.pcap").string()}, dir_.path(), "gen"), 0)
      << read_file(dir_ / "gen.err");
  ASSERT_EQ(run({"/usr/bin/python3", "-c", bad_messages, (dir_ / "bad.pcap").string()}, dir_.path(),
                "bad"),
            0)
      << read_file(dir_ / "bad.err");
  const auto sent = read_pcap(dir_ / "in.pcap");
  const size_t bad = read_pcap(dir_ / "bad.pcap").size();
  link_a_ = "net_pcap2,rx_pcap=" + (dir_ / "bad.pcap").string() +
            ",tx_pcap=" + (dir_ / "link.pcap").string();
  link_device_ = "net_pcap2";
  write_a("net_pcap0,rx_pcap=" + (dir_ / "in.pcap").string(),
          "net_pcap1,tx_pcap=" + (dir_ / "out.pcap").string(), "timeout: 50ms, fallback: pass",
          "results: {file: " + (dir_ / "a.jsonl").string() + "}\n");
  Process a(segx(dir_ / "a.yaml",
                 {"--max-packets", std::to_string(sent.size() + bad), "--duration", "300"}),
            dir_.path(), "a");
  ASSERT_EQ(a.wait(300s), 0) << a.out() << a.err();

  EXPECT_EQ(packet_difference(read_pcap(dir_ / "out.pcap"), sent), "");
  EXPECT_EQ(read_pcap(dir_ / "link.pcap").size(), 60u + 18u) << "every packet and end message";
  const auto r = report();
  for (const char* reason : {"tunnel_bad_version", "tunnel_no_option", "tunnel_unknown_critical",
                             "tunnel_truncated", "tunnel_stranger"})
    EXPECT_EQ(r["drops"].value(reason, 0), 1) << reason << " " << r["drops"].dump();
  const auto& pa = r["peers"][0];
  EXPECT_EQ(pa["replies"]["late"], 1) << pa.dump();
  EXPECT_EQ(pa["segments"]["timed_out"], 18) << pa.dump();
  EXPECT_EQ(pa["packets"]["fallback"], sent.size()) << pa.dump();
  for (const auto& rec : read_jsonl(dir_ / "a.jsonl")) {
    EXPECT_EQ(rec["services"]["dpi"]["status"], "timeout") << rec.dump();
    EXPECT_EQ(rec["services"]["dpi"]["fallback"], "pass") << rec.dump();
  }
  EXPECT_EQ(r["mempool"]["in_use"], 0) << r.dump();
  EXPECT_EQ(r["segments_in_use"], 0) << r.dump();
}

TEST_F(ServicesSubcontract, PeerKilledMidwayTimesOutFallsBackAndForwardingGoesOn) {
  stop_peer_midway(SIGKILL);
}

TEST_F(ServicesSubcontract, PeerStoppedMidwayTimesOutFallsBackAndForwardingGoesOn) {
  stop_peer_midway(SIGTERM);
}

}  // namespace
}  // namespace segx::test
