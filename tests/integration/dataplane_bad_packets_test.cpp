// The bad-packet corpus (tests/integration/bad_packets.py) through segx with every service
// in the chains: frames with each malformed-header reason of docs/dataplane.md, zero-length
// and runt frames, oversize frames that arrive as mbuf chains, random bytes under IP
// EtherTypes, and well-formed frames with their headers scribbled on. Every frame is
// counted (sent, or dropped under a reason), each malformed reason at least as often as the
// corpus holds it, the canaries between the bad frames all come out in order, oversize
// frames leave whole, and every mbuf and segment returns. In the sanitizer build (suite
// sanitize) the same run checks that no frame makes the parser or a service read or write
// out of bounds.

#include <gtest/gtest.h>

#include <map>

#include "segx_run.hpp"
#include "support.hpp"

namespace segx::test {
namespace {

using namespace std::chrono_literals;

class BadPackets : public SegxRun {};

TEST_F(BadPackets, EveryFrameIsCountedAndNoneHurtsTheOthers) {
  ASSERT_EQ(run({"/usr/bin/python3", (source_root() / "tests/integration/bad_packets.py").string(),
                 "--out", (dir_ / "in.pcap").string(), "--manifest",
                 (dir_ / "manifest.json").string(), "--seed", "7"},
                dir_.path(), "corpus"),
            0)
      << read_file(dir_ / "corpus.err");
  const auto manifest = nlohmann::json::parse(read_file(dir_ / "manifest.json"));
  const uint64_t packets = manifest["packets"];

  // GTP-U decapsulation on, so its reasons apply; services that walk payloads and rewrite
  // headers see whatever of the corpus parses (rewriting only TCP: the oversize frames and
  // canaries are UDP and must leave as they came).
  const auto cfg = pcap_config("    action: forward\n    output: out\n", "    gtpu: true\n",
                               "  flow_table: {size: 4096, idle_timeout: 1h}\n");
  std::string text = read_file(cfg) + R"(providers:
  offers: [count, fingerprint, dpi, compress, anonymize]
profiles:
  - name: canary
    match: {protocol: udp, dst_port: 9999}
    segment: {packets: 8, time: 1h, idle: 1h}
    services: [count, {name: fingerprint, algorithm: sha256}]
    output: out
  - name: tcp
    match: {protocol: tcp}
    segment: {packets: 4, time: 1h, idle: 1h}
    services:
      - name: dpi
        patterns: [{id: any, regex: "\\x00\\x01"}, {id: word, regex: "canary|GET /"}]
      - {name: compress, verify: true}
      - {name: anonymize, key: "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202"}
    output: out
  - name: other
    segment: {packets: 4, time: 1h, idle: 1h}
    services: [fingerprint, {name: compress, level: 1}]
    output: out
results: {file: )" + (dir_ / "segments.jsonl").string() +
                     "}\n";
  write_file(cfg, text);

  Process p(segx(cfg, {"--max-packets", std::to_string(packets), "--duration", "600"}), dir_.path(),
            "segx");
  ASSERT_EQ(p.wait(300s), 0) << p.out() << p.err();
  auto r = report();  // not const: a missing key must fail the test, not abort it

  // Every frame counted: received, then either sent or dropped under a reason.
  EXPECT_EQ(r["received"].get<uint64_t>(), packets);
  uint64_t dropped = 0;
  for (const auto& [reason, count] : r["drops"].items())
    dropped += count.get<uint64_t>();
  EXPECT_EQ(r["transmitted"].get<uint64_t>() + dropped, packets) << r["drops"].dump();

  // Each malformed reason at least as often as the corpus holds it (random frames may
  // add to any reason, never take away).
  for (const auto& [reason, count] : manifest["reasons"].items())
    EXPECT_GE(r["drops"].value(reason, uint64_t{0}), count.get<uint64_t>()) << reason;
  // Nothing but malformed frames is dropped: no ring, service or segment loss.
  for (const char* reason : {"ring_full", "service_drop", "reorder_window", "reorder_full"})
    EXPECT_EQ(r["drops"].value(reason, uint64_t{0}), 0u) << reason;
  // And not every random frame is dropped: the corpus must reach the services too.
  const uint64_t random = manifest["categories"]["garbage"].get<uint64_t>() +
                          manifest["categories"]["mutant"].get<uint64_t>();
  uint64_t malformed = 0;
  for (const auto& [reason, count] : manifest["reasons"].items())
    malformed += count.get<uint64_t>();
  EXPECT_LT(dropped, malformed + random) << "some garbage and mutants must parse";

  // The canaries, one between every two bad frames, all come out in input order.
  const auto in = read_pcap_records(dir_ / "in.pcap");
  const auto out = read_pcap_records(dir_ / "out.pcap");
  std::vector<std::vector<uint8_t>> want, got;
  for (const auto& index : manifest["canaries"])
    want.push_back(in[index.get<size_t>()].data);
  const std::string marker = "canary ";
  for (const auto& rec : out) {
    const std::string bytes(rec.data.begin(), rec.data.end());
    const auto at = bytes.find(marker);
    if (at != std::string::npos && at + marker.size() + 8 == bytes.size()) got.push_back(rec.data);
  }
  EXPECT_EQ(packet_difference(got, want), "");

  // Oversize frames (mbuf chains) leave whole: the wire length is the frame's, and what
  // net_pcap writes of it (at most 16128 bytes of a chain) is its start.
  size_t oversize_in = 0, oversize_out = 0;
  std::map<uint32_t, std::vector<std::vector<uint8_t>>> by_length;
  for (const auto& rec : in) {
    if (rec.length > 9000) {
      ++oversize_in;
      by_length[rec.length].push_back(rec.data);
    }
  }
  for (const auto& rec : out) {
    if (rec.length <= 9000) continue;
    ++oversize_out;
    bool prefix = false;
    for (const auto& frame : by_length[rec.length])
      prefix = prefix || std::equal(rec.data.begin(), rec.data.end(), frame.begin());
    EXPECT_TRUE(prefix) << "an oversize frame of " << rec.length << " bytes changed";
  }
  EXPECT_EQ(oversize_in, manifest["categories"]["oversize"].get<size_t>());
  EXPECT_EQ(oversize_out, oversize_in);

  // The canaries' records add up to the canaries.
  uint64_t canary_packets = 0;
  for (const auto& rec : read_jsonl(dir_ / "segments.jsonl")) {
    if (rec["profile"] == "canary") canary_packets += rec["packets"].get<uint64_t>();
  }
  EXPECT_EQ(canary_packets, manifest["canaries"].size());

  EXPECT_EQ(r["mempool"]["in_use"], 0);
  EXPECT_EQ(r["segments_in_use"], 0);
  EXPECT_EQ(r["reorder_stranded"], 0);
}

}  // namespace
}  // namespace segx::test
