// Overload: the rx lcore offers packets far faster than the worker can take them (rings of
// 64 entries, and a worker that runs zstd at level 19 with verification on every payload,
// on the CPU the rx lcore also runs on). The excess is dropped at the ring and counted as
// ring_full, nothing else is lost, what the worker does take comes out whole and in input
// order, segment records still account for every packet they carried, and every mbuf and
// segment returns at exit.

#include <gtest/gtest.h>

#include "segx_run.hpp"
#include "support.hpp"

namespace segx::test {
namespace {

using namespace std::chrono_literals;

class Overload : public SegxRun {};

// True when `part` is `whole` with some packets left out, nothing reordered or changed.
bool subsequence(const std::vector<std::vector<uint8_t>>& part,
                 const std::vector<std::vector<uint8_t>>& whole) {
  size_t at = 0;
  for (const auto& pkt : part) {
    while (at < whole.size() && whole[at] != pkt)
      ++at;
    if (at == whole.size()) return false;
    ++at;
  }
  return true;
}

TEST_F(Overload, ExcessIsDroppedAtTheRingCountedAndNothingLeaks) {
  constexpr int packets = 6000;
  generate(packets, 53);
  std::string text = eal_section({"net_pcap0,rx_pcap=" + (dir_ / "in.pcap").string(),
                                  "net_pcap1,tx_pcap=" + (dir_ / "out.pcap").string()});
  // Lcore 2 shares CPU 1 with the rx lcore: the worker is slow and gets half a CPU at best.
  const std::string two_cpus = "lcores: \"0-1\"";
  text.replace(text.find(two_cpus), two_cpus.size(), "lcores: [0, 1, \"2@1\"]");
  text += R"(ports:
  - {name: in, device: net_pcap0}
  - {name: out, device: net_pcap1, rx_queues: 0}
pipeline:
  ring_size: 64
  lcores:
    - {lcore: 1, roles: [rx]}
    - {lcore: 2, roles: [worker, tx]}
  default: {action: forward, output: out}
providers:
  offers: [compress]
profiles:
  - name: all
    segment: {packets: 16, time: 1h, idle: 1h}
    services: [{name: compress, level: 19, verify: true}]
    output: out
results: {file: )" +
          (dir_ / "segments.jsonl").string() + "}\n";
  write_file(dir_ / "segx.yaml", text);

  Process p(
      segx(dir_ / "segx.yaml", {"--max-packets", std::to_string(packets), "--duration", "600"}),
      dir_.path(), "segx");
  ASSERT_EQ(p.wait(300s), 0) << p.out() << p.err();
  auto r = report();  // not const: a missing key must fail the test, not abort it

  EXPECT_EQ(r["received"].get<uint64_t>(), uint64_t{packets});
  const uint64_t ring_full = r["drops"].value("ring_full", uint64_t{0});
  EXPECT_GT(ring_full, uint64_t{packets} / 10) << "the worker should not keep up: " << p.out();
  EXPECT_EQ(r["drops"].size(), 1u) << "only the ring drops: " << r["drops"].dump();
  const uint64_t transmitted = r["transmitted"];
  EXPECT_GT(transmitted, 0u);
  EXPECT_EQ(transmitted + ring_full, uint64_t{packets});
  for (const auto& ring : r["rings"])
    EXPECT_EQ(ring["capacity"], 64) << ring.dump();

  // What the worker took leaves unchanged and in input order.
  const auto in = read_pcap(dir_ / "in.pcap");
  const auto out = read_pcap(dir_ / "out.pcap");
  EXPECT_EQ(out.size(), transmitted);
  EXPECT_TRUE(subsequence(out, in)) << "output reordered or changed under overload";

  // The records count the packets the worker took: exactly those transmitted.
  uint64_t recorded = 0, verify_failed = 0;
  const auto records = read_jsonl(dir_ / "segments.jsonl");
  for (const auto& rec : records) {
    recorded += rec["packets"].get<uint64_t>();
    verify_failed += rec["services"]["compress"]["verify_failed"].get<uint64_t>();
  }
  EXPECT_EQ(r["events"].value("records_dropped", uint64_t{0}), 0u);
  EXPECT_EQ(recorded, transmitted);
  EXPECT_EQ(verify_failed, 0u);

  EXPECT_EQ(r["mempool"]["in_use"], 0);
  EXPECT_EQ(r["segments_in_use"], 0);
  EXPECT_EQ(r["reorder_stranded"], 0);
}

}  // namespace
}  // namespace segx::test
