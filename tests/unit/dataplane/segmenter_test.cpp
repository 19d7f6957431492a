// The segment rules of docs/dataplane.md, with time injected: each close reason, the order
// in which they are checked, and that nothing closes early.

#include <gtest/gtest.h>

#include "dataplane/flow.hpp"

namespace segx::dataplane {
namespace {

// Feeds packets of `bytes` each at the given times through the rules; returns the reason
// each packet's segment closed with after it (open = still open), closing first on
// close_before like the rx lcore does.
struct Flow {
  SegmentRules rules;
  SegmentProgress seg;
  bool open = false;
  std::vector<CloseReason> before, after;

  void packet(uint64_t now, uint32_t bytes, uint8_t proto = 17, uint8_t flags = 0) {
    CloseReason b = CloseReason::open;
    if (open) {
      b = close_before(rules, seg, now);
      if (b != CloseReason::open) open = false;
    }
    if (!open) {
      seg = {0, 0, now, now};
      open = true;
    }
    seg.packets++;
    seg.bytes += bytes;
    seg.last_time = now;
    const CloseReason a = close_after(rules, seg, proto, flags);
    if (a != CloseReason::open) open = false;
    before.push_back(b);
    after.push_back(a);
  }
};

TEST(Segmenter, ClosesAtThePacketCount) {
  Flow f;
  f.rules.packets = 3;
  for (int i = 0; i < 7; ++i)
    f.packet(i, 100);
  EXPECT_EQ(f.after,
            (std::vector<CloseReason>{CloseReason::open, CloseReason::open, CloseReason::packets,
                                      CloseReason::open, CloseReason::open, CloseReason::packets,
                                      CloseReason::open}));
}

TEST(Segmenter, ClosesOnTheByteCountWithThePacketThatReachesIt) {
  Flow f;
  f.rules.packets = 0;
  f.rules.bytes = 1000;
  f.packet(0, 400);
  f.packet(1, 400);
  f.packet(2, 400);   // 1200 >= 1000: last of the segment
  f.packet(3, 1000);  // exactly 1000 alone
  f.packet(4, 10);
  EXPECT_EQ(f.after,
            (std::vector<CloseReason>{CloseReason::open, CloseReason::open, CloseReason::bytes,
                                      CloseReason::bytes, CloseReason::open}));
}

TEST(Segmenter, TcpFinAndRstCloseOnlyTcpAndOnlyWhenAsked) {
  Flow f;
  f.rules.packets = 0;
  f.packet(0, 60, 6, tcp_syn);
  f.packet(1, 60, 6, tcp_fin | tcp_ack);
  f.packet(2, 60, 6, tcp_rst);
  f.packet(3, 60, 17, tcp_fin);  // UDP: flags mean nothing
  EXPECT_EQ(f.after, (std::vector<CloseReason>{CloseReason::open, CloseReason::tcp_fin,
                                               CloseReason::tcp_rst, CloseReason::open}));
  Flow g;
  g.rules.packets = 0;
  g.rules.tcp_close = false;
  g.packet(0, 60, 6, tcp_fin);
  EXPECT_EQ(g.after[0], CloseReason::open);
}

TEST(Segmenter, CountWinsOverBytesOverFinOverRst) {
  SegmentRules r;
  r.packets = 2;
  r.bytes = 100;
  SegmentProgress s{2, 200, 0, 0};
  EXPECT_EQ(close_after(r, s, 6, tcp_fin | tcp_rst), CloseReason::packets);
  s.packets = 1;
  EXPECT_EQ(close_after(r, s, 6, tcp_fin | tcp_rst), CloseReason::bytes);
  s.bytes = 50;
  EXPECT_EQ(close_after(r, s, 6, tcp_fin | tcp_rst), CloseReason::tcp_fin);
  EXPECT_EQ(close_after(r, s, 6, tcp_rst), CloseReason::tcp_rst);
}

TEST(Segmenter, TimeCountsFromTheFirstPacketAndClosesBeforeTheLateOne) {
  Flow f;
  f.rules.packets = 0;
  f.rules.time = 100;
  f.packet(0, 10);
  f.packet(50, 10);
  f.packet(99, 10);
  f.packet(100, 10);  // 100 - 0 >= 100: the previous segment closes first
  f.packet(150, 10);
  f.packet(250, 10);
  EXPECT_EQ(f.before,
            (std::vector<CloseReason>{CloseReason::open, CloseReason::open, CloseReason::open,
                                      CloseReason::time, CloseReason::open, CloseReason::time}));
}

TEST(Segmenter, IdleCountsFromTheLastPacket) {
  Flow f;
  f.rules.packets = 0;
  f.rules.idle = 20;
  f.packet(0, 10);
  f.packet(19, 10);
  f.packet(38, 10);  // 19 after the last: still open
  f.packet(58, 10);  // 20 after the last: closes first
  EXPECT_EQ(f.before, (std::vector<CloseReason>{CloseReason::open, CloseReason::open,
                                                CloseReason::open, CloseReason::idle}));
}

TEST(Segmenter, TimeIsCheckedBeforeIdle) {
  SegmentRules r;
  r.time = 10;
  r.idle = 10;
  EXPECT_EQ(close_before(r, {1, 10, 0, 0}, 10), CloseReason::time);
  EXPECT_EQ(close_before(r, {1, 10, 5, 5}, 14), CloseReason::open);
  EXPECT_EQ(close_before(r, {1, 10, 5, 5}, 15), CloseReason::time);
}

TEST(Segmenter, ExpiryBetweenPacketsUsesTheSameRules) {
  SegmentRules r;
  r.time = 0;
  r.idle = 30;
  EXPECT_EQ(expired(r, {3, 300, 0, 100}, 129), CloseReason::open);
  EXPECT_EQ(expired(r, {3, 300, 0, 100}, 130), CloseReason::idle);
  r.idle = 0;
  EXPECT_EQ(expired(r, {3, 300, 0, 100}, 1'000'000), CloseReason::open) << "no limits, never";
}

TEST(Segmenter, CloseReasonsHaveTheirRecordNames) {
  EXPECT_EQ(close_reason_name(CloseReason::packets), "packets");
  EXPECT_EQ(close_reason_name(CloseReason::tcp_fin), "tcp_fin");
  EXPECT_EQ(close_reason_name(CloseReason::shutdown), "shutdown");
  EXPECT_EQ(close_reason_name(CloseReason::evicted), "evicted");
}

TEST(FlowKey, FragmentsAndPortlessProtocolsShareAKeyWithPortsZero) {
  PacketInfo a{};
  a.family = 4;
  a.proto = 17;
  a.src[0] = 10;
  a.dst[0] = 192;
  a.vlan_count = 1;
  a.outer_vlan = 100;
  PacketInfo b = a;
  b.inner_vlan = 7;  // not present: vlan_count is 1
  const FlowKey ka = make_flow_key(a, 2), kb = make_flow_key(b, 2);
  EXPECT_EQ(std::memcmp(&ka, &kb, sizeof ka), 0);
  EXPECT_EQ(ka.outer_vlan, 100);
  EXPECT_EQ(ka.inner_vlan, 0);
  const FlowKey other_port = make_flow_key(a, 3);
  EXPECT_NE(std::memcmp(&ka, &other_port, sizeof ka), 0);
}

}  // namespace
}  // namespace segx::dataplane
