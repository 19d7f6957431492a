// The data plane on net_pcap, checked against the independent oracle of docs/dataplane.md:
// a capture of many interleaved flows (IPv4 and IPv6, VLAN and QinQ, fragments, GTP-U, and
// malformed frames of every kind) goes through profiles with segment rules and services.
// Every well-formed packet comes out of its port in input order, the segment records are
// exactly the ones the rules make, every malformed frame is counted under its reason, and
// nothing leaks. Then the same capture, replayed past a million packets, must still add up.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "segx_run.hpp"
#include "support.hpp"

namespace segx::test {
namespace {

using namespace std::chrono_literals;

// Profiles whose rules the oracle can predict (time and idle never expire in a test run).
const std::string profiles = R"(providers:
  offers: [count, pass]
profiles:
  - name: web
    match: {protocol: tcp, dst_port: [80, 443, 8080]}
    segment: {packets: 8, bytes: 6000, time: 1h, idle: 1h}
    services: [count]
    output: out
  - name: voice
    match: {protocol: udp, dst_port: "5060-5061"}
    segment: {packets: 5, time: 1h, idle: 1h}
    services: [count, pass]
    output: voice
  - name: tagged
    match: {vlan: "100-104"}
    segment: {packets: 4, tcp_close: false, time: 1h, idle: 1h}
    services: [pass]
    output: out
)";

// The comparable part of a record: what the rules decide (not ids or times).
std::string record_key(const nlohmann::json& r) {
  return r["profile"].get<std::string>() + " " + r["flow"].dump() +
         " first_seq=" + std::to_string(r["first_seq"].get<uint64_t>()) +
         " packets=" + std::to_string(r["packets"].get<uint64_t>()) +
         " bytes=" + std::to_string(r["bytes"].get<uint64_t>()) +
         " close=" + r["close"].get<std::string>();
}

class DataplanePcap : public SegxRun {
 protected:
  // A configuration reading `input` (replayed forever if `replay`) on port `in`, with GTP-U
  // decapsulation on, and writing to two captures or, for a soak, to sinks.
  fs::path config(const std::string& input, bool replay) {
    const std::string in =
        "net_pcap0,rx_pcap=" + (dir_ / input).string() + (replay ? ",infinite_rx=1" : "");
    const std::string out =
        replay ? "net_null1,no-rx=1" : "net_pcap1,tx_pcap=" + (dir_ / "out.pcap").string();
    const std::string voice =
        replay ? "net_null2,no-rx=1" : "net_pcap2,tx_pcap=" + (dir_ / "voice.pcap").string();
    const std::string text = eal_section({in, out, voice}) +
                             "ports:\n  - {name: in, device: net_pcap0, gtpu: true}\n"
                             "  - {name: out, device: " +
                             out.substr(0, out.find(',')) +
                             ", rx_queues: 0}\n"
                             "  - {name: voice, device: " +
                             voice.substr(0, voice.find(',')) + ", rx_queues: 0}\n" +
                             pipeline_section("    action: forward\n    output: out\n",
                                              "  flow_table: {size: 65536, idle_timeout: 1h}\n") +
                             profiles + "results: {file: " + (dir_ / "segments.jsonl").string() +
                             "}\n";
    write_file(dir_ / "segx.yaml", text);
    return dir_ / "segx.yaml";
  }
};

TEST_F(DataplanePcap, OutputsRecordsAndDropsAreExactlyWhatTheRulesSay) {
  constexpr int packets = 6000;
  generate(packets, 41,
           {"--fragments", "--gtpu", "--malformed", "80", "--manifest",
            (dir_ / "manifest.json").string()});
  const auto cfg = config("in.pcap", false);
  const auto expected = oracle(cfg, dir_ / "in.pcap", "in",
                               {"--manifest", (dir_ / "manifest.json").string(), "--gtpu"});
  Process p(segx(cfg, {"--max-packets", std::to_string(packets), "--duration", "600"}), dir_.path(),
            "segx");
  ASSERT_EQ(p.wait(300s), 0) << p.out() << p.err();
  auto r = report();  // not const: a missing key must fail the test, not abort it

  // Outputs: every well-formed packet out of its port, in input order (one worker).
  const auto in = read_pcap(dir_ / "in.pcap");
  for (const std::string port : {"out", "voice"}) {
    std::vector<std::vector<uint8_t>> want;
    for (const auto& index : expected["outputs"][port])
      want.push_back(in[index.get<size_t>()]);
    EXPECT_EQ(packet_difference(read_pcap(dir_ / (port + ".pcap")), want), "") << "port " << port;
  }
  ASSERT_GT(expected["outputs"]["voice"].size(), 10u) << "the capture should exercise each profile";

  // Records: the same segments, closed for the same reasons.
  const auto records = read_jsonl(dir_ / "segments.jsonl");
  std::multiset<std::string> got, want;
  for (const auto& rec : records)
    got.insert(record_key(rec));
  for (const auto& rec : expected["records"])
    want.insert(record_key(rec));
  EXPECT_EQ(got.size(), want.size());
  std::vector<std::string> missing, extra;
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(),
                      std::back_inserter(missing));
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(extra));
  EXPECT_TRUE(missing.empty()) << missing.size() << " records missing, e.g. "
                               << (missing.empty() ? "" : missing[0]);
  EXPECT_TRUE(extra.empty()) << extra.size() << " records not expected, e.g. "
                             << (extra.empty() ? "" : extra[0]);
  std::set<uint64_t> ids;
  std::map<std::string, int> closes;
  for (const auto& rec : records) {
    ids.insert(rec["segment"].get<uint64_t>());
    ++closes[rec["close"].get<std::string>()];
    if (rec["profile"] != "tagged") {
      EXPECT_EQ(rec["services"]["count"]["packets"], rec["packets"]) << rec.dump();
      EXPECT_EQ(rec["services"]["count"]["bytes"], rec["bytes"]) << rec.dump();
    }
  }
  EXPECT_EQ(ids.size(), records.size()) << "segment ids are unique";
  for (const char* reason : {"packets", "bytes", "tcp_fin", "shutdown"}) {
    EXPECT_GT(closes[reason], 0) << "no segment closed by " << reason;
  }
  EXPECT_EQ(r["records"], records.size());

  // Drops: every malformed frame under its reason, nothing else dropped.
  const auto manifest = nlohmann::json::parse(read_file(dir_ / "manifest.json"));
  ASSERT_GE(manifest["malformed"].size(), 16u);
  for (const auto& [reason, count] : manifest["malformed"].items()) {
    EXPECT_EQ(r["drops"].value(reason, 0), count.get<uint64_t>()) << reason;
  }
  EXPECT_EQ(r["drops"].size(), manifest["malformed"].size()) << r["drops"].dump();
  EXPECT_EQ(r["received"], packets);
  EXPECT_EQ(r["mempool"]["in_use"], 0);
  EXPECT_EQ(r["segments_in_use"], 0);
  EXPECT_EQ(r["reorder_stranded"], 0);
}

// Two workers on a shared CPU (lcore 2 runs on CPU 1 with lcore 1: slow, but every path of
// a multi-worker pipeline runs), with one tx lcore or two.
class DataplaneWorkers : public DataplanePcap {
 protected:
  // Runs the capture through two workers and `tx_lcores` tx lcores; the output port writes
  // one capture per tx queue (o1.pcap, o2.pcap). Returns the packets the oracle expects out.
  std::vector<std::vector<uint8_t>> run_two_workers(int tx_lcores) {
    constexpr int packets = 4000;
    generate(packets, 47,
             {"--fragments", "--malformed", "20", "--manifest", (dir_ / "manifest.json").string()});
    std::string outputs = "net_pcap1,tx_pcap=" + (dir_ / "o1.pcap").string();
    if (tx_lcores == 2) outputs += ",tx_pcap=" + (dir_ / "o2.pcap").string();
    std::string text = eal_section({"net_pcap0,rx_pcap=" + (dir_ / "in.pcap").string(), outputs});
    const std::string two_cpus = "lcores: \"0-1\"";
    text.replace(text.find(two_cpus), two_cpus.size(), "lcores: [0, 1, \"2@1\"]");
    text +=
        "ports:\n  - {name: in, device: net_pcap0}\n"
        "  - {name: out, device: net_pcap1, rx_queues: 0, tx_queues: " +
        std::to_string(tx_lcores) +
        "}\n"
        "pipeline:\n  lcores:\n    - {lcore: 1, roles: [rx, worker, tx]}\n"
        "    - {lcore: 2, roles: [worker" +
        std::string(tx_lcores == 2 ? ", tx" : "") +
        "]}\n"
        "  default: {action: forward, output: out}\n";
    std::string prof = profiles;
    prof.replace(prof.find("output: voice"), 13, "output: out  ");
    text += prof + "results: {file: " + (dir_ / "segments.jsonl").string() + "}\n";
    write_file(dir_ / "segx.yaml", text);
    const auto expected = oracle(dir_ / "segx.yaml", dir_ / "in.pcap", "in",
                                 {"--manifest", (dir_ / "manifest.json").string()});
    Process p(
        segx(dir_ / "segx.yaml", {"--max-packets", std::to_string(packets), "--duration", "600"}),
        dir_.path(), "segx");
    EXPECT_EQ(p.wait(300s), 0) << p.out() << p.err();
    EXPECT_THAT(p.err(), ::testing::HasSubstr("lcore 2: worker"));

    std::multiset<std::string> got, wanted;
    for (const auto& rec : read_jsonl(dir_ / "segments.jsonl"))
      got.insert(record_key(rec));
    for (const auto& rec : expected["records"])
      wanted.insert(record_key(rec));
    EXPECT_EQ(got, wanted) << "the segments do not depend on how many workers there are";
    auto r = report();
    EXPECT_EQ(r["rings"].size(), 4u) << "rx1>w1, rx1>w2 and one ring per worker to its tx lcore";
    for (const auto& ring : r["rings"])
      EXPECT_GT(ring["enqueued"].get<uint64_t>(), 100u) << ring.dump();
    EXPECT_EQ(r["mempool"]["in_use"], 0);
    EXPECT_EQ(r["segments_in_use"], 0);
    EXPECT_EQ(r["reorder_stranded"], 0);

    const auto in = read_pcap(dir_ / "in.pcap");
    std::vector<std::vector<uint8_t>> want;
    for (const auto& index : expected["outputs"]["out"])
      want.push_back(in[index.get<size_t>()]);
    return want;
  }
};

TEST_F(DataplaneWorkers, OneTxLcoreMergesTwoWorkersBackIntoInputOrder) {
  // Both workers feed the one tx lcore; its reorder buffer must interleave them exactly as
  // the packets arrived.
  const auto want = run_two_workers(1);
  EXPECT_EQ(packet_difference(read_pcap(dir_ / "o1.pcap"), want), "");
}

TEST_F(DataplaneWorkers, TwoTxLcoresEachKeepTheirPacketsInInputOrder) {
  const auto want = run_two_workers(2);
  const auto o1 = read_pcap(dir_ / "o1.pcap"), o2 = read_pcap(dir_ / "o2.pcap");
  EXPECT_GT(o1.size(), 100u) << "both tx lcores must carry flows";
  EXPECT_GT(o2.size(), 100u) << "both tx lcores must carry flows";
  EXPECT_EQ(o1.size() + o2.size(), want.size());
  // A flow never spans two tx lcores, and each restores the input order of what it sends.
  std::vector<bool> used(want.size(), false);
  EXPECT_TRUE(in_order_within(o1, want, used)) << "tx lcore 1 sent packets out of order";
  EXPECT_TRUE(in_order_within(o2, want, used)) << "tx lcore 2 sent packets out of order";
}

TEST_F(DataplanePcap, AMillionPacketsAddUpAndEverythingReturns) {
  constexpr int capture = 5000;
  generate(capture, 43,
           {"--fragments", "--gtpu", "--malformed", "50", "--manifest",
            (dir_ / "manifest.json").string()});
  const auto cfg = config("in.pcap", true);
  Process p(segx(cfg, {"--max-packets", "1000000", "--duration", "600"}), dir_.path(), "segx");
  ASSERT_EQ(p.wait(600s), 0) << p.out() << p.err();
  auto r = report();  // not const: a missing key must fail the test, not abort it
  const uint64_t received = r["received"];
  ASSERT_GE(received, 1'000'000u);

  // The capture replays from its start: the malformed frames seen are those of each full
  // pass plus those of the last, partial one.
  const auto manifest = nlohmann::json::parse(read_file(dir_ / "manifest.json"));
  std::map<std::string, uint64_t> expected;
  const auto& indices = manifest["malformed_indices"];
  const auto& reasons = manifest["malformed_reasons"];
  for (size_t i = 0; i < indices.size(); ++i) {
    const uint64_t index = indices[i];
    expected[reasons[i]] += received / capture + (index < received % capture ? 1 : 0);
  }
  uint64_t dropped = 0;
  for (const auto& [reason, count] : r["drops"].items()) {
    dropped += count.get<uint64_t>();
    EXPECT_EQ(count.get<uint64_t>(), expected[reason]) << reason;
  }
  EXPECT_EQ(received, r["transmitted"].get<uint64_t>() + dropped) << "every packet sent or dropped";
  uint64_t segments = 0;
  for (const auto& prof : r["profiles"])
    segments += prof["segments"].get<uint64_t>();
  EXPECT_GT(segments, 20'000u) << "the writer must keep up with many segments";
  EXPECT_EQ(r["records"].get<uint64_t>() + r["events"].value("records_dropped", 0), segments)
      << "every closed segment is a record (or counted as a dropped one)";
  EXPECT_EQ(read_jsonl(dir_ / "segments.jsonl").size(), r["records"].get<size_t>());
  EXPECT_EQ(r["mempool"]["in_use"], 0);
  EXPECT_EQ(r["segments_in_use"], 0);
  EXPECT_EQ(r["reorder_stranded"], 0);
}

}  // namespace
}  // namespace segx::test
