// dpi: a pattern split across two packets of a segment is found (streaming), one that is not
// in the traffic is not reported, and each action does what it says to the packet in which
// the match ends.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dataplane/eal_environment.hpp"
#include "service_harness.hpp"
#include "test_frames.hpp"

namespace segx::test {
namespace {

const std::string patterns = R"({patterns: [
  {id: split, regex: "attack-signature"},
  {id: absent, regex: "never-in-this-traffic"},
  {id: word, regex: "hel+o", flags: [caseless]}]})";

std::vector<rte_mbuf*> packets(const std::vector<std::string>& payloads) {
  std::vector<rte_mbuf*> out;
  for (const auto& p : payloads)
    out.push_back(to_mbuf(EalEnvironment::pool(), make_frame("10.0.0.1", "10.0.0.2", 6, p).bytes));
  return out;
}

void free_all(const std::vector<rte_mbuf*>& pkts) {
  for (rte_mbuf* m : pkts)
    rte_pktmbuf_free(m);
}

TEST(Dpi, FindsAPatternSplitAcrossTwoPacketsAndNotOneThatIsAbsent) {
  auto s = make_service("dpi", patterns);
  ASSERT_TRUE(s);
  const auto pkts = packets({"prefix attack-sig", "nature suffix", "HeLLo there"});
  // The split packets arrive in different runs (different bursts at the worker).
  std::vector<uint8_t> v;
  const auto r = run_segment(*s, pkts, {1, 2}, &v)["dpi"];
  EXPECT_EQ(r["matches"], 2) << r.dump();
  EXPECT_EQ(r["patterns"]["split"], 1) << r.dump();
  EXPECT_EQ(r["patterns"]["word"], 1) << r.dump();
  EXPECT_FALSE(r["patterns"].contains("absent")) << r.dump();
  EXPECT_EQ(r["streamed"], true);
  EXPECT_EQ(v, (std::vector<uint8_t>{0, 0, 0})) << "tag changes no packet";
  free_all(pkts);
}

TEST(Dpi, StreamsDoNotLeakBetweenSegments) {
  auto s = make_service("dpi", patterns);
  ASSERT_TRUE(s);
  const auto a = packets({"prefix attack-sig"});
  const auto b = packets({"nature suffix"});
  EXPECT_EQ(run_segment(*s, a)["dpi"]["matches"], 0);
  EXPECT_EQ(run_segment(*s, b)["dpi"]["matches"], 0) << "a new segment starts a fresh stream";
  free_all(a);
  free_all(b);
}

TEST(Dpi, DropDropsThePacketThatCompletesTheMatchAndTheRestOfTheSegment) {
  auto s = make_service("dpi", R"({patterns: [{id: bad, regex: "evil", action: drop}]})");
  ASSERT_TRUE(s);
  const auto pkts = packets({"harmless", "ev", "il here", "more", "and more"});
  std::vector<uint8_t> v;
  const auto r = run_segment(*s, pkts, {2, 1, 2}, &v)["dpi"];
  EXPECT_EQ(v, (std::vector<uint8_t>{0, 0, dataplane::verdict_drop, dataplane::verdict_drop,
                                     dataplane::verdict_drop}));
  EXPECT_EQ(r["dropped"], 3);
  free_all(pkts);
}

TEST(Dpi, MirrorMarksThePacketForTheMirrorPort) {
  config::Config c;
  c.ports.resize(2);
  c.ports[0].name = "in";
  c.ports[1].name = "tap";
  c.pipeline.lcores = {
      config::LcoreConfig{1, config::role_rx | config::role_worker | config::role_tx}};
  auto s = make_service(
      "dpi", R"({mirror: tap, patterns: [{id: m, regex: "copy ?me", action: mirror}]})", c);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->mirror_port(), 1);
  const auto pkts = packets({"nothing", "please copy me", "no"});
  std::vector<uint8_t> v;
  const auto r = run_segment(*s, pkts, {}, &v)["dpi"];
  EXPECT_EQ(v, (std::vector<uint8_t>{0, dataplane::verdict_mirror, 0}));
  EXPECT_EQ(r["mirrored"], 1);
  free_all(pkts);
}

TEST(Dpi, WithoutAFreeStreamPacketsAreScannedOneByOne) {
  auto s = make_service("dpi", R"({streams: 1, patterns: [{id: p, regex: "abc"}]})");
  ASSERT_TRUE(s);
  const auto pkts = packets({"xxabcxx", "ab", "c"});
  // Two segments open at once on one worker: the second finds the pool empty.
  auto first = std::make_unique<dataplane::Segment>();
  auto second = std::make_unique<dataplane::Segment>();
  s->open(*first, first->state);
  s->open(*second, second->state);
  uint8_t v[3] = {};
  s->process(*second, second->state, pkts.data(), 3, v);
  dataplane::ResultWriter out(*second);
  s->close(*second, second->state, out);
  const auto r = nlohmann::json::parse("{" + std::string(second->result, second->result_len) + "}");
  EXPECT_EQ(r["dpi"]["streamed"], false);
  EXPECT_EQ(r["dpi"]["matches"], 1) << "only the whole occurrence";
  dataplane::ResultWriter out1(*first);
  s->close(*first, first->state, out1);
  // The stream went back to the pool: the next segment streams again.
  EXPECT_EQ(run_segment(*s, pkts)["dpi"]["streamed"], true);
  free_all(pkts);
}

}  // namespace
}  // namespace segx::test
