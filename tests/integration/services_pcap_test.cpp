// The four services in one profile chain on net_pcap: segx's records and output are checked
// by tests/integration/services_check.py against independent computations (hashlib for
// the fingerprint, the traffic's own bytes for where the DPI pattern is, scapy for the
// checksums of anonymized packets); the mirror port gets exactly the packet DPI mirrored;
// nothing leaks. Then `compress` on DPDK compressdevs (the zlib and ISA-L software PMDs as
// vdevs): packets leave unchanged and the records carry what Python's zlib computes.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "segx_run.hpp"
#include "support.hpp"

namespace segx::test {
namespace {

using namespace std::chrono_literals;

class ServicesPcap : public SegxRun {};

TEST_F(ServicesPcap, FourServicesInOneChain) {
  const std::string script = (source_root() / "tests/integration/services_check.py").string();
  ASSERT_EQ(
      run({"/usr/bin/python3", script, "gen", (dir_ / "in.pcap").string()}, dir_.path(), "gen"), 0)
      << read_file(dir_ / "gen.err");
  const size_t packets = read_pcap(dir_ / "in.pcap").size();
  const std::string text = eal_section({"net_pcap0,rx_pcap=" + (dir_ / "in.pcap").string(),
                                        "net_pcap1,tx_pcap=" + (dir_ / "out.pcap").string(),
                                        "net_pcap2,tx_pcap=" + (dir_ / "tap.pcap").string()}) +
                           "ports:\n  - {name: in, device: net_pcap0}\n"
                           "  - {name: out, device: net_pcap1, rx_queues: 0}\n"
                           "  - {name: tap, device: net_pcap2, rx_queues: 0}\n" +
                           pipeline_section("    action: forward\n    output: out\n",
                                            "  mempool:\n    size: 8191\n    data_room: 10240\n") +
                           R"(providers:
  offers: [fingerprint, dpi, compress, anonymize]
profiles:
  - name: all
    segment: {packets: 4, time: 1h, idle: 1h}
    output: out
    services:
      - fingerprint
      - name: dpi
        mirror: tap
        patterns:
          - {id: split, regex: attack-signature}
          - {id: absent, regex: "never[- ]here"}
          - {id: copy, regex: mirror-me, action: mirror}
      - {name: compress, verify: true}
      - {name: anonymize, key: "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202"}
results: {file: )" + (dir_ / "segments.jsonl").string() +
                           "}\n";
  write_file(dir_ / "segx.yaml", text);
  ASSERT_EQ(run({segx_binary().string(), "--check-config", (dir_ / "segx.yaml").string()},
                dir_.path(), "check"),
            0)
      << read_file(dir_ / "check.err");

  Process p(
      segx(dir_ / "segx.yaml", {"--max-packets", std::to_string(packets), "--duration", "300"}),
      dir_.path(), "segx");
  ASSERT_EQ(p.wait(300s), 0) << p.out() << p.err();

  const int rc = run({"/usr/bin/python3", script, "check", "--in", (dir_ / "in.pcap").string(),
                      "--out", (dir_ / "out.pcap").string(), "--tap", (dir_ / "tap.pcap").string(),
                      "--records", (dir_ / "segments.jsonl").string()},
                     dir_.path(), "verify");
  EXPECT_EQ(rc, 0) << read_file(dir_ / "verify.out") << read_file(dir_ / "verify.err");
  EXPECT_THAT(read_file(dir_ / "verify.out"), ::testing::HasSubstr(": ok"));

  auto r = report();
  const auto records = read_jsonl(dir_ / "segments.jsonl");
  EXPECT_EQ(records.size(), r["records"].get<size_t>());
  EXPECT_EQ(records.size(), 18u) << "6 flows of 10 packets in segments of 4, 4 and 2";
  for (const auto& rec : records) {
    for (const char* s : {"fingerprint", "dpi", "compress", "anonymize"})
      EXPECT_TRUE(rec["services"].contains(s)) << rec.dump();
    EXPECT_FALSE(rec.contains("services_truncated")) << rec.dump();
  }
  EXPECT_EQ(r["mempool"]["in_use"], 0) << r.dump();
}

TEST_F(ServicesPcap, CompressOnCompressdevs) {
  const std::string script = (source_root() / "tests/integration/services_check.py").string();
  ASSERT_EQ(run({"/usr/bin/python3", script, "gen", (dir_ / "in.pcap").string(), "--bulk"},
                dir_.path(), "gen"),
            0)
      << read_file(dir_ / "gen.err");
  const auto in = read_pcap(dir_ / "in.pcap");
  size_t jumbo = 0;
  for (const auto& pkt : in)
    jumbo += pkt.size() > 2048;
  ASSERT_EQ(jumbo, 1u) << "one frame of a 6000-byte payload";
  // Two entries on compress_zlib0 (two queue pairs: one per entry on the one worker), one on
  // compress_isal0. net_pcap cannot scatter: mbufs hold a whole jumbo frame (chained
  // payloads are the unit test's).
  const std::string text = eal_section({"net_pcap0,rx_pcap=" + (dir_ / "in.pcap").string(),
                                        "net_pcap1,tx_pcap=" + (dir_ / "out.pcap").string(),
                                        "compress_zlib0", "compress_isal0"}) +
                           "ports:\n  - {name: in, device: net_pcap0, mtu: 9000}\n"
                           "  - {name: out, device: net_pcap1, rx_queues: 0, mtu: 9000}\n" +
                           pipeline_section("    action: forward\n    output: out\n",
                                            "  mempool:\n    size: 8191\n    data_room: 10240\n") +
                           R"(providers:
  offers: [compress]
profiles:
  - name: web80
    match: {protocol: tcp, dst_port: 80}
    segment: {packets: 4, time: 1h, idle: 1h}
    output: out
    services:
      - {name: compress, engine: compressdev, device: compress_zlib0, level: 6, verify: true}
  - name: web443
    match: {protocol: tcp, dst_port: 443}
    segment: {packets: 4, time: 1h, idle: 1h}
    output: out
    services:
      - {name: compress, engine: compressdev, device: compress_zlib0, level: 1}
  - name: udp
    match: {protocol: udp}
    segment: {packets: 4, time: 1h, idle: 1h}
    output: out
    services:
      - {name: compress, engine: compressdev, device: compress_isal0, verify: true}
results: {file: )" + (dir_ / "segments.jsonl").string() +
                           "}\n";
  write_file(dir_ / "segx.yaml", text);
  ASSERT_EQ(run({segx_binary().string(), "--check-config", (dir_ / "segx.yaml").string()},
                dir_.path(), "check"),
            0)
      << read_file(dir_ / "check.err");
  EXPECT_THAT(read_file(dir_ / "check.out") + read_file(dir_ / "check.err"),
              ::testing::Not(::testing::HasSubstr("warning")))
      << "compressdev vdevs are not unused ports";

  Process p(
      segx(dir_ / "segx.yaml", {"--max-packets", std::to_string(in.size()), "--duration", "300"}),
      dir_.path(), "segx");
  ASSERT_EQ(p.wait(300s), 0) << p.out() << p.err();

  const int rc = run({"/usr/bin/python3", script, "compress", "--in", (dir_ / "in.pcap").string(),
                      "--out", (dir_ / "out.pcap").string(), "--records",
                      (dir_ / "segments.jsonl").string(), "--profile", "web80=compress_zlib0:6",
                      "--profile", "web443=compress_zlib0:1", "--profile", "udp=compress_isal0:6"},
                     dir_.path(), "verify");
  EXPECT_EQ(rc, 0) << read_file(dir_ / "verify.out") << read_file(dir_ / "verify.err");
  EXPECT_THAT(read_file(dir_ / "verify.out"), ::testing::HasSubstr(": ok"));

  auto r = report();
  const auto records = read_jsonl(dir_ / "segments.jsonl");
  EXPECT_EQ(records.size(), r["records"].get<size_t>());
  EXPECT_EQ(records.size(), 21u) << "7 flows of 10 packets in segments of 4, 4 and 2";
  uint64_t in_bytes = 0, out_bytes = 0;
  for (const auto& rec : records) {
    in_bytes += rec["services"]["compress"]["in_bytes"].get<uint64_t>();
    out_bytes += rec["services"]["compress"]["out_bytes"].get<uint64_t>();
  }
  EXPECT_GT(in_bytes, 2 * out_bytes) << "the log text compresses";
  EXPECT_EQ(r["transmitted"], in.size());
  EXPECT_EQ(r["mempool"]["in_use"], 0) << r.dump();
}

}  // namespace
}  // namespace segx::test
