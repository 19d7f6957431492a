// The parser against frames built byte by byte: the fields of every protocol, each drop
// reason from a frame that has exactly that problem, and a robustness pass (every
// truncation, thousands of seeded mutations) that must never read past the bytes given. Its
// fast path (parse_fast) against the full parser, on the fuzz corpus and on mutations.

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "dataplane/flow.hpp"
#include "dataplane/packet.hpp"
#include "support.hpp"

namespace segx::dataplane {
namespace {

using Bytes = std::vector<uint8_t>;
using Addr = std::array<uint8_t, 16>;

Addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return Addr{a, b, c, d};
}
Addr v6(uint16_t first, uint16_t last) {
  Addr a{};
  a[0] = static_cast<uint8_t>(first >> 8);
  a[1] = static_cast<uint8_t>(first);
  a[14] = static_cast<uint8_t>(last >> 8);
  a[15] = static_cast<uint8_t>(last);
  return a;
}

struct V4 {
  uint8_t proto = 6;
  Addr src = v4(10, 0, 0, 1);
  Addr dst = v4(192, 0, 2, 5);
  uint8_t tos = 0;
  uint16_t frag = 0;         // flags and fragment offset, as in the header
  uint8_t option_words = 0;  // 4-byte words of options after the 20 bytes
  uint8_t version = 4;
  uint8_t ihl = 0;  // 0: from option_words
};

struct V6 {
  uint8_t next = 6;
  Addr src = v6(0x2001, 1);
  Addr dst = v6(0x2001, 2);
  uint8_t traffic_class = 0;
  uint8_t version = 6;
};

struct Gtp {
  uint8_t type = 255;
  uint32_t teid = 0x01020304;
  uint8_t flags = 0x30;                 // version 1, PT; S and E are added from the fields below
  bool seq = false;                     // sequence number present (S)
  std::vector<uint8_t> ext_units = {};  // one extension header per entry: its length byte
};

// Frames in network byte order. The length fields of IPv4, IPv6, UDP and GTP-U are left
// open and filled in by close(), so each test states only what it is about, and padding
// added after close() stays outside every length.
class Frame {
 public:
  Frame& u8(uint8_t v) {
    b_.push_back(v);
    return *this;
  }
  Frame& u16(uint16_t v) { return u8(static_cast<uint8_t>(v >> 8)).u8(static_cast<uint8_t>(v)); }
  Frame& u32(uint32_t v) {
    return u16(static_cast<uint16_t>(v >> 16)).u16(static_cast<uint16_t>(v));
  }
  Frame& addr(const Addr& a, size_t n) {
    b_.insert(b_.end(), a.begin(), a.begin() + static_cast<long>(n));
    return *this;
  }
  Frame& zeros(size_t n) {
    b_.resize(b_.size() + n);
    return *this;
  }
  Frame& payload(size_t n) {
    for (size_t i = 0; i < n; ++i)
      u8(static_cast<uint8_t>(0xa0 + i));
    return *this;
  }

  Frame& eth(uint16_t type) {
    return u32(0x02000000).u16(0x0002).u32(0x02000000).u16(0x0001).u16(type);
  }
  // A tag's TCI and the EtherType after it; the TPID is the previous EtherType.
  Frame& tag(uint16_t vid, uint16_t next_type, uint8_t pcp = 0) {
    return u16(static_cast<uint16_t>(pcp << 13 | vid)).u16(next_type);
  }
  Frame& ipv4(const V4& h) {
    open(Len::ipv4);
    const uint8_t ihl = h.ihl ? h.ihl : static_cast<uint8_t>(5 + h.option_words);
    u8(static_cast<uint8_t>(h.version << 4 | ihl)).u8(h.tos).u16(0);
    u16(0x4242).u16(h.frag).u8(64).u8(h.proto).u16(0);
    addr(h.src, 4).addr(h.dst, 4);
    for (int i = 0; i < h.option_words; ++i)
      u32(0x01010101);  // NOPs
    return *this;
  }
  Frame& ipv6(const V6& h) {
    open(Len::ipv6);
    u8(static_cast<uint8_t>(h.version << 4 | h.traffic_class >> 4));
    u8(static_cast<uint8_t>(h.traffic_class << 4)).u16(0x1234);
    u16(0).u8(h.next).u8(64).addr(h.src, 16).addr(h.dst, 16);
    return *this;
  }
  // Hop-by-hop, routing, destination options, mobility: (len_units + 1) * 8 bytes.
  Frame& ext(uint8_t next, uint8_t len_units = 0) {
    u8(next).u8(len_units);
    return zeros((len_units + 1u) * 8 - 2);
  }
  // AH: its length field counts 4-byte units minus 2.
  Frame& ah(uint8_t next, uint8_t len_field) {
    u8(next).u8(len_field).u16(0).u32(0x1000).u32(1);
    return zeros((len_field + 2u) * 4 - 12);
  }
  Frame& frag6(uint8_t next, uint16_t offset_units, bool more) {
    return u8(next).u8(0).u16(static_cast<uint16_t>(offset_units << 3 | more)).u32(0xabcd);
  }
  Frame& tcp(uint16_t sport, uint16_t dport, uint8_t flags, uint8_t data_offset = 5) {
    u16(sport).u16(dport).u32(1000).u32(0);
    u8(static_cast<uint8_t>(data_offset << 4)).u8(flags).u16(8192).u32(0);
    return zeros(data_offset > 5 ? (data_offset - 5u) * 4 : 0);
  }
  Frame& udp(uint16_t sport, uint16_t dport) {
    open(Len::udp);
    return u16(sport).u16(dport).u16(0).u16(0);
  }
  Frame& sctp(uint16_t sport, uint16_t dport) { return u16(sport).u16(dport).u32(7).u32(0); }
  Frame& icmp(uint8_t type) { return u8(type).u8(0).u16(0).u32(0x00010001); }
  Frame& icmp6(uint8_t type) { return u8(type).u8(0).u16(0); }
  Frame& gtpu(const Gtp& g) {
    uint8_t flags = g.flags;
    if (g.seq) flags |= 0x02;
    if (!g.ext_units.empty()) flags |= 0x04;
    u8(flags).u8(g.type);
    open(Len::gtpu);
    u16(0).u32(g.teid);
    if (flags & 0x07) u16(0x0102).u8(0).u8(g.ext_units.empty() ? 0 : 0x85);
    for (size_t i = 0; i < g.ext_units.size(); ++i) {
      u8(g.ext_units[i]).zeros(g.ext_units[i] * 4u - 2);
      u8(i + 1 < g.ext_units.size() ? 0x85 : 0);
    }
    return *this;
  }

  // Fills the open length fields with everything written so far.
  Frame& close() {
    for (const auto& [kind, at] : open_) {
      const size_t n = b_.size() - at;
      switch (kind) {
        case Len::ipv4:
          set16(at + 2, n);
          break;
        case Len::ipv6:
          set16(at + 4, n - 40);
          break;
        case Len::udp:
          set16(at + 4, n);
          break;
        case Len::gtpu:
          set16(at, n - 6);
          break;  // opened at the length field itself
      }
    }
    open_.clear();
    return *this;
  }
  Frame& pad(size_t n) { return close().zeros(n); }
  Bytes bytes() {
    close();
    return b_;
  }

 private:
  enum class Len { ipv4, ipv6, udp, gtpu };
  void open(Len kind) { open_.emplace_back(kind, b_.size()); }
  void set16(size_t at, size_t v) {
    b_[at] = static_cast<uint8_t>(v >> 8);
    b_[at + 1] = static_cast<uint8_t>(v);
  }
  Bytes b_;
  std::vector<std::pair<Len, size_t>> open_;
};

void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}

// Parses the first `len` bytes of `f` as a window of a frame of `frame_len` bytes. The bytes
// go into an exactly sized heap block so ASan reports any read past them.
ParseError parse(const Bytes& f, PacketInfo& info, bool gtpu = false, size_t len = SIZE_MAX,
                 size_t frame_len = SIZE_MAX) {
  const size_t n = std::min(len, f.size());
  auto buf = std::make_unique<uint8_t[]>(n);
  if (n) std::memcpy(buf.get(), f.data(), n);
  return parse_frame(buf.get(), static_cast<uint32_t>(n),
                     static_cast<uint32_t>(frame_len == SIZE_MAX ? f.size() : frame_len), info,
                     ParseOptions{.gtpu = gtpu});
}

PacketInfo parsed(const Bytes& f, bool gtpu = false) {
  PacketInfo info;
  const ParseError e = parse(f, info, gtpu);
  EXPECT_EQ(e, ParseError::none) << parse_error_name(e);
  return info;
}

auto fields(const PacketInfo& i) {
  return std::tie(i.l2_len, i.vlan_count, i.outer_vlan, i.inner_vlan, i.ether_type, i.family,
                  i.proto, i.dscp, i.tcp_flags, i.fragment, i.first_fragment, i.l3_offset,
                  i.l4_offset, i.src_port, i.dst_port, i.l4_payload_offset, i.l4_payload_len, i.src,
                  i.dst, i.gtpu, i.gtpu_teid, i.outer_src, i.outer_dst, i.outer_family);
}

TEST(ParseErrorName, MatchesTheDocumentedReasons) {
  // These strings are the metric labels and report keys of docs/dataplane.md.
  const std::vector<std::string_view> names = {"none",
                                               "eth_truncated",
                                               "vlan_truncated",
                                               "ipv4_truncated",
                                               "ipv4_bad_version",
                                               "ipv4_bad_ihl",
                                               "ipv4_bad_length",
                                               "ipv6_truncated",
                                               "ipv6_bad_version",
                                               "ipv6_ext_truncated",
                                               "ipv6_ext_chain_too_long",
                                               "tcp_truncated",
                                               "tcp_bad_offset",
                                               "udp_truncated",
                                               "udp_bad_length",
                                               "sctp_truncated",
                                               "icmp_truncated",
                                               "gtpu_truncated",
                                               "gtpu_bad_header",
                                               "headers_too_long"};
  ASSERT_EQ(names.size(), static_cast<size_t>(ParseError::count_));
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(parse_error_name(static_cast<ParseError>(i)), names[i]);
  }
  EXPECT_EQ(parse_error_name(ParseError::count_), "unknown");
}

TEST(Parser, TcpOverIpv4) {
  const auto f = Frame()
                     .eth(0x0800)
                     .ipv4({.proto = 6, .tos = 0xb8})
                     .tcp(40000, 80, tcp_syn | tcp_ack)
                     .payload(100)
                     .bytes();
  const PacketInfo i = parsed(f);
  EXPECT_EQ(i.l2_len, 14);
  EXPECT_EQ(i.vlan_count, 0);
  EXPECT_EQ(i.ether_type, 0x0800);
  EXPECT_EQ(i.family, 4);
  EXPECT_EQ(i.proto, 6);
  EXPECT_EQ(i.dscp, 46);  // EF
  EXPECT_EQ(i.tcp_flags, tcp_syn | tcp_ack);
  EXPECT_FALSE(i.fragment);
  EXPECT_EQ(i.l3_offset, 14);
  EXPECT_EQ(i.l4_offset, 34);
  EXPECT_EQ(i.src_port, 40000);
  EXPECT_EQ(i.dst_port, 80);
  EXPECT_EQ(i.l4_payload_offset, 54u);
  EXPECT_EQ(i.l4_payload_len, 100u);
  EXPECT_EQ(i.src, v4(10, 0, 0, 1));  // the other 12 bytes stay zero
  EXPECT_EQ(i.dst, v4(192, 0, 2, 5));
  EXPECT_FALSE(i.gtpu);
}

TEST(Parser, TcpOptionsMoveThePayload) {
  const auto f = Frame().eth(0x0800).ipv4({}).tcp(1, 2, tcp_fin, 8).payload(5).bytes();
  const PacketInfo i = parsed(f);
  EXPECT_EQ(i.l4_payload_offset, 34u + 32);
  EXPECT_EQ(i.l4_payload_len, 5u);
  EXPECT_EQ(i.tcp_flags, tcp_fin);
}

TEST(Parser, VlanTags) {
  // The PCP bits must not leak into the id.
  const auto q = Frame().eth(0x8100).tag(100, 0x0800, 5).ipv4({}).tcp(1, 2, 0).bytes();
  PacketInfo i = parsed(q);
  EXPECT_EQ(i.vlan_count, 1);
  EXPECT_EQ(i.outer_vlan, 100);
  EXPECT_EQ(i.inner_vlan, 0);
  EXPECT_EQ(i.l2_len, 18);
  EXPECT_EQ(i.l3_offset, 18);
  EXPECT_EQ(i.l4_offset, 38);
  EXPECT_EQ(i.ether_type, 0x0800);

  const auto qinq =
      Frame().eth(0x88a8).tag(200, 0x8100).tag(300, 0x86dd).ipv6({.next = 17}).udp(5, 6).bytes();
  i = parsed(qinq);
  EXPECT_EQ(i.vlan_count, 2);
  EXPECT_EQ(i.outer_vlan, 200);
  EXPECT_EQ(i.inner_vlan, 300);
  EXPECT_EQ(i.l2_len, 22);
  EXPECT_EQ(i.family, 6);
  EXPECT_EQ(i.dst_port, 6);

  const auto old = Frame().eth(0x9100).tag(4095, 0x0800).ipv4({}).tcp(1, 2, 0).bytes();
  i = parsed(old);
  EXPECT_EQ(i.vlan_count, 1);
  EXPECT_EQ(i.outer_vlan, 4095);
}

TEST(Parser, ThirdTagIsNotIp) {
  const auto f = Frame()
                     .eth(0x88a8)
                     .tag(1, 0x8100)
                     .tag(2, 0x8100)
                     .tag(3, 0x0800)
                     .ipv4({})
                     .tcp(1, 2, 0)
                     .bytes();
  const PacketInfo i = parsed(f);
  EXPECT_EQ(i.family, 0);
  EXPECT_EQ(i.vlan_count, 2);
  EXPECT_EQ(i.ether_type, 0x8100);
  EXPECT_EQ(i.l2_len, 22);
}

TEST(Parser, ArpIsNotIp) {
  const auto f = Frame().eth(0x0806).zeros(28).pad(18).bytes();
  const PacketInfo i = parsed(f);
  EXPECT_EQ(i.family, 0);
  EXPECT_EQ(i.ether_type, 0x0806);
  EXPECT_EQ(i.l4_offset, 0);
}

TEST(Parser, EthernetPaddingIsNotPayload) {
  // 14 + 20 + 8 + 4 = 46 bytes, padded to the 60-byte minimum.
  const auto udp = Frame().eth(0x0800).ipv4({.proto = 17}).udp(53, 1024).payload(4).pad(14).bytes();
  ASSERT_EQ(udp.size(), 60u);
  EXPECT_EQ(parsed(udp).l4_payload_len, 4u);

  const auto tcp = Frame().eth(0x0800).ipv4({}).tcp(1, 2, tcp_ack).pad(6).bytes();
  EXPECT_EQ(parsed(tcp).l4_payload_len, 0u);

  const auto v6 = Frame().eth(0x86dd).ipv6({.next = 17}).udp(1, 2).payload(3).pad(9).bytes();
  EXPECT_EQ(parsed(v6).l4_payload_len, 3u);
}

TEST(Parser, UdpPayloadEndsAtTheShorterOfUdpAndIpLengths) {
  auto f = Frame().eth(0x0800).ipv4({.proto = 17}).udp(1, 2).payload(20).bytes();
  put16(f, 34 + 4, 8 + 12);  // UDP says 12 bytes of payload, IP carries 20
  const PacketInfo i = parsed(f);
  EXPECT_EQ(i.l4_payload_offset, 42u);
  EXPECT_EQ(i.l4_payload_len, 12u);
}

TEST(Parser, Ipv4Options) {
  const auto f = Frame().eth(0x0800).ipv4({.proto = 17, .option_words = 3}).udp(7, 9).bytes();
  const PacketInfo i = parsed(f);
  EXPECT_EQ(i.l4_offset, 14 + 32);
  EXPECT_EQ(i.src_port, 7);
  EXPECT_EQ(i.l4_payload_offset, 14u + 32 + 8);
}

TEST(Parser, Ipv4FirstFragment) {
  // The UDP length covers the whole datagram, more than this fragment: not an error.
  auto f =
      Frame().eth(0x0800).ipv4({.proto = 17, .frag = 0x2000}).udp(1000, 2000).payload(16).bytes();
  put16(f, 34 + 4, 1480);
  const PacketInfo i = parsed(f);
  EXPECT_TRUE(i.fragment);
  EXPECT_TRUE(i.first_fragment);
  EXPECT_EQ(i.proto, 17);
  EXPECT_EQ(i.l4_offset, 34);  // the header is there and was checked
  EXPECT_EQ(i.src_port, 0);    // but all fragments share the flow with ports 0
  EXPECT_EQ(i.dst_port, 0);
  EXPECT_EQ(i.l4_payload_len, 16u);

  const auto tcp = Frame().eth(0x0800).ipv4({.frag = 0x2000}).tcp(1, 2, tcp_syn).bytes();
  const PacketInfo t = parsed(tcp);
  EXPECT_EQ(t.tcp_flags, tcp_syn);
  EXPECT_EQ(t.src_port, 0);
}

TEST(Parser, Ipv4LaterFragments) {
  // Three bytes after the header: as a TCP header that would be truncated, but in a later
  // fragment it is data.
  for (uint16_t frag : {0x2000 | 185, 185}) {  // middle (MF) and last fragment
    const auto f = Frame().eth(0x0800).ipv4({.frag = frag}).payload(3).bytes();
    const PacketInfo i = parsed(f);
    EXPECT_TRUE(i.fragment) << frag;
    EXPECT_FALSE(i.first_fragment) << frag;
    EXPECT_EQ(i.proto, 6);
    EXPECT_EQ(i.l4_offset, 0);
    EXPECT_EQ(i.src_port, 0);
    EXPECT_EQ(i.l4_payload_offset, 0u);
    EXPECT_EQ(i.l4_payload_len, 0u);
  }
  // DF alone is not a fragment.
  const auto df = Frame().eth(0x0800).ipv4({.frag = 0x4000}).tcp(1, 2, 0).bytes();
  EXPECT_FALSE(parsed(df).fragment);
  EXPECT_EQ(parsed(df).src_port, 1);
}

TEST(Parser, Ipv6WithSeveralExtensionHeaders) {
  const auto f = Frame()
                     .eth(0x86dd)
                     .ipv6({.next = 0, .traffic_class = 0x28})  // AF11
                     .ext(43)                                   // hop-by-hop → routing
                     .ext(60, 2)                                // routing → destination
                     .ext(17)                                   // destination → UDP
                     .udp(5000, 6000)
                     .payload(10)
                     .bytes();
  const PacketInfo i = parsed(f);
  EXPECT_EQ(i.family, 6);
  EXPECT_EQ(i.proto, 17);
  EXPECT_EQ(i.dscp, 10);
  EXPECT_EQ(i.l3_offset, 14);
  EXPECT_EQ(i.l4_offset, 14 + 40 + 8 + 24 + 8);
  EXPECT_EQ(i.src_port, 5000);
  EXPECT_EQ(i.dst_port, 6000);
  EXPECT_EQ(i.l4_payload_len, 10u);
  EXPECT_EQ(i.src, v6(0x2001, 1));
  EXPECT_EQ(i.dst, v6(0x2001, 2));
}

TEST(Parser, Ipv6AuthenticationHeaderIsTheProtocol) {
  // AH ends the walk, as in IPv4, so `protocol: ah` matches it in both families.
  const auto f = Frame().eth(0x86dd).ipv6({.next = 51}).ah(6, 4).tcp(22, 50000, tcp_ack).bytes();
  const PacketInfo i = parsed(f);
  EXPECT_EQ(i.proto, 51);
  EXPECT_EQ(i.src_port, 0);

  const auto hip = Frame().eth(0x86dd).ipv6({.next = 139}).ext(17, 1).udp(7, 8).bytes();
  EXPECT_EQ(parsed(hip).proto, 17);
  EXPECT_EQ(parsed(hip).dst_port, 8);

  const auto mobility = Frame().eth(0x86dd).ipv6({.next = 135}).ext(59, 1).bytes();
  EXPECT_EQ(parsed(mobility).proto, 59);
}

Frame ipv6_with_destination_options(int count) {
  Frame f;
  f.eth(0x86dd).ipv6({.next = 60});
  for (int n = 0; n < count; ++n)
    f.ext(n + 1 < count ? 60 : 17);
  return f;
}

TEST(Parser, Ipv6ExtensionChainLimit) {
  const auto at_limit = ipv6_with_destination_options(max_ipv6_extensions).udp(1, 2).bytes();
  EXPECT_EQ(parsed(at_limit).proto, 17);
  EXPECT_EQ(parsed(at_limit).dst_port, 2);

  PacketInfo i;
  const auto over = ipv6_with_destination_options(max_ipv6_extensions + 1).udp(1, 2).bytes();
  EXPECT_EQ(parse(over, i), ParseError::ipv6_ext_chain_too_long);
}

TEST(Parser, Ipv6EspAndNoNextHeaderEndTheWalk) {
  const auto esp =
      Frame().eth(0x86dd).ipv6({.next = 0}).ext(50).u32(0x100).u32(1).payload(30).bytes();
  PacketInfo i = parsed(esp);
  EXPECT_EQ(i.proto, 50);
  EXPECT_EQ(i.l4_offset, 0);
  EXPECT_EQ(i.src_port, 0);
  EXPECT_EQ(i.l4_payload_len, 0u);

  const auto none = Frame().eth(0x86dd).ipv6({.next = 59}).bytes();
  EXPECT_EQ(parsed(none).proto, 59);

  // ESP in IPv4: no L4 parsing either.
  const auto esp4 = Frame().eth(0x0800).ipv4({.proto = 50}).payload(3).bytes();
  EXPECT_EQ(parsed(esp4).l4_offset, 0);
}

TEST(Parser, Ipv6Fragments) {
  const auto first =
      Frame().eth(0x86dd).ipv6({.next = 44}).frag6(6, 0, true).tcp(1, 2, tcp_syn).bytes();
  PacketInfo i = parsed(first);
  EXPECT_TRUE(i.fragment);
  EXPECT_TRUE(i.first_fragment);
  EXPECT_EQ(i.proto, 6);
  EXPECT_EQ(i.l4_offset, 14 + 40 + 8);
  EXPECT_EQ(i.src_port, 0);
  EXPECT_EQ(i.tcp_flags, tcp_syn);

  // A later fragment: the walk stops at the fragment header, whose next header is the proto.
  const auto later =
      Frame().eth(0x86dd).ipv6({.next = 0}).ext(44).frag6(6, 100, false).payload(2).bytes();
  i = parsed(later);
  EXPECT_TRUE(i.fragment);
  EXPECT_FALSE(i.first_fragment);
  EXPECT_EQ(i.proto, 6);
  EXPECT_EQ(i.l4_offset, 0);

  // Headers after the fragment header: the first fragment still reports what the
  // fragment header names, like the later ones do, so both share one flow.
  const auto first_with_options =
      Frame().eth(0x86dd).ipv6({.next = 44}).frag6(60, 0, true).ext(6).tcp(1, 2, 0).bytes();
  const auto later_with_options =
      Frame().eth(0x86dd).ipv6({.next = 44}).frag6(60, 64, false).payload(8).bytes();
  EXPECT_EQ(parsed(first_with_options).proto, 60);
  EXPECT_EQ(parsed(later_with_options).proto, 60);

  // Offset 0 without M (RFC 6946 atomic fragment) is a whole packet.
  const auto atomic = Frame().eth(0x86dd).ipv6({.next = 44}).frag6(17, 0, false).udp(3, 4).bytes();
  i = parsed(atomic);
  EXPECT_FALSE(i.fragment);
  EXPECT_EQ(i.src_port, 3);
}

TEST(Parser, SctpIcmpAndOtherProtocols) {
  const auto sctp = Frame().eth(0x0800).ipv4({.proto = 132}).sctp(2905, 2906).payload(16).bytes();
  PacketInfo i = parsed(sctp);
  EXPECT_EQ(i.src_port, 2905);
  EXPECT_EQ(i.dst_port, 2906);
  EXPECT_EQ(i.l4_payload_offset, 34u + 12);
  EXPECT_EQ(i.l4_payload_len, 16u);

  const auto icmp = Frame().eth(0x0800).ipv4({.proto = 1}).icmp(8).payload(56).bytes();
  i = parsed(icmp);
  EXPECT_EQ(i.proto, 1);
  EXPECT_EQ(i.l4_offset, 34);
  EXPECT_EQ(i.src_port, 0);
  EXPECT_EQ(i.dst_port, 0);
  EXPECT_EQ(i.l4_payload_offset, 42u);
  EXPECT_EQ(i.l4_payload_len, 56u);

  const auto icmp6 = Frame().eth(0x86dd).ipv6({.next = 58}).icmp6(135).payload(20).bytes();
  i = parsed(icmp6);
  EXPECT_EQ(i.proto, 58);
  EXPECT_EQ(i.l4_payload_offset, 14u + 40 + 4);
  EXPECT_EQ(i.l4_payload_len, 20u);

  const auto gre = Frame().eth(0x0800).ipv4({.proto = 47}).payload(2).bytes();
  i = parsed(gre);
  EXPECT_EQ(i.proto, 47);
  EXPECT_EQ(i.l4_offset, 0);
  EXPECT_EQ(i.l4_payload_offset, 0u);
}

Frame gtpu_over_ipv4(const Gtp& g) {
  Frame f;
  f.eth(0x8100)
      .tag(10, 0x0800)
      .ipv4({.proto = 17, .src = v4(172, 16, 0, 1), .dst = v4(172, 16, 0, 2)});
  f.udp(2152, gtpu_port).gtpu(g);
  return f;
}

TEST(Gtpu, DecapsulatesGpdu) {
  const auto f = gtpu_over_ipv4({.teid = 0xdeadbeef})
                     .ipv4({.proto = 6, .tos = 0x20})
                     .tcp(33000, 443, tcp_ack)
                     .payload(7)
                     .pad(5)
                     .bytes();
  const PacketInfo i = parsed(f, true);
  EXPECT_TRUE(i.gtpu);
  EXPECT_EQ(i.gtpu_teid, 0xdeadbeefu);
  EXPECT_EQ(i.outer_family, 4);
  EXPECT_EQ(i.outer_src, v4(172, 16, 0, 1));
  EXPECT_EQ(i.outer_dst, v4(172, 16, 0, 2));
  EXPECT_EQ(i.vlan_count, 1);
  EXPECT_EQ(i.outer_vlan, 10);
  EXPECT_EQ(i.family, 4);
  EXPECT_EQ(i.proto, 6);
  EXPECT_EQ(i.dscp, 8);
  EXPECT_EQ(i.src, v4(10, 0, 0, 1));
  EXPECT_EQ(i.dst, v4(192, 0, 2, 5));
  const uint16_t inner = 18 + 20 + 8 + 8;
  EXPECT_EQ(i.l3_offset, inner);
  EXPECT_EQ(i.l4_offset, inner + 20);
  EXPECT_EQ(i.src_port, 33000);
  EXPECT_EQ(i.dst_port, 443);
  EXPECT_EQ(i.tcp_flags, tcp_ack);
  EXPECT_EQ(i.l4_payload_len, 7u);
}

TEST(Gtpu, OptionalFieldsAndExtensionHeaders) {
  // S alone adds sequence, N-PDU and next-type: 4 bytes.
  const auto seq = gtpu_over_ipv4({.seq = true}).ipv4({.proto = 17}).udp(1, 2).bytes();
  PacketInfo i = parsed(seq, true);
  EXPECT_EQ(i.l3_offset, 18 + 20 + 8 + 12);
  EXPECT_EQ(i.dst_port, 2);

  // A PDU session container (1 unit) and a second extension (2 units) before the inner packet.
  const auto ext = gtpu_over_ipv4({.ext_units = {1, 2}}).ipv4({.proto = 17}).udp(1, 2).bytes();
  i = parsed(ext, true);
  EXPECT_TRUE(i.gtpu);
  EXPECT_EQ(i.l3_offset, 18 + 20 + 8 + 12 + 4 + 8);
  EXPECT_EQ(i.src_port, 1);

  // TS 29.281: without E the next-extension type is not interpreted, whatever it holds.
  auto stray = seq;
  stray[18 + 20 + 8 + 11] = 0x85;
  i = parsed(stray, true);
  EXPECT_EQ(i.l3_offset, 18 + 20 + 8 + 12);
}

TEST(Gtpu, Ipv6InnerOverIpv6Outer) {
  Frame f;
  f.eth(0x86dd).ipv6({.next = 17, .src = v6(0xfd00, 1), .dst = v6(0xfd00, 2)});
  f.udp(40000, gtpu_port).gtpu({.teid = 7, .ext_units = {1}});
  f.ipv6({.next = 58, .traffic_class = 0xb8}).icmp6(128).payload(8);
  const PacketInfo i = parsed(f.bytes(), true);
  EXPECT_TRUE(i.gtpu);
  EXPECT_EQ(i.gtpu_teid, 7u);
  EXPECT_EQ(i.outer_family, 6);
  EXPECT_EQ(i.outer_src, v6(0xfd00, 1));
  EXPECT_EQ(i.family, 6);
  EXPECT_EQ(i.proto, 58);
  EXPECT_EQ(i.dscp, 46);
  EXPECT_EQ(i.src, v6(0x2001, 1));
  // The outer UDP ports must not survive into the inner, portless packet.
  EXPECT_EQ(i.src_port, 0);
  EXPECT_EQ(i.dst_port, 0);
  EXPECT_EQ(i.l4_payload_len, 8u);
}

TEST(Gtpu, OtherMessagesAreUdp) {
  const auto echo = gtpu_over_ipv4({.type = 1, .seq = true}).u16(0x0e00).bytes();  // echo request
  const PacketInfo i = parsed(echo, true);
  EXPECT_FALSE(i.gtpu);
  EXPECT_EQ(i.family, 4);
  EXPECT_EQ(i.proto, 17);
  EXPECT_EQ(i.dst_port, gtpu_port);
  EXPECT_EQ(i.src, v4(172, 16, 0, 1));
  EXPECT_EQ(i.outer_family, 0);
}

TEST(Gtpu, GpduWithoutAnIpPacketIsUdp) {
  // An empty G-PDU, and one carrying an Ethernet (5G Ethernet PDU session) or other non-IP
  // payload: not decapsulated, not an error.
  for (const auto& f : {gtpu_over_ipv4({}).bytes(),
                        gtpu_over_ipv4({}).u32(0x02000000).u32(0x00010200).u32(0).bytes()}) {
    PacketInfo i;
    ASSERT_EQ(parse(f, i, true, static_cast<uint32_t>(f.size())), ParseError::none);
    EXPECT_FALSE(i.gtpu);
    EXPECT_EQ(i.proto, 17);
    EXPECT_EQ(i.dst_port, gtpu_port);
  }
}

TEST(Gtpu, DecapsulationOffIsUdp) {
  const auto f = gtpu_over_ipv4({}).ipv4({}).tcp(1, 2, 0).bytes();
  const PacketInfo i = parsed(f, false);
  EXPECT_FALSE(i.gtpu);
  EXPECT_EQ(i.proto, 17);
  EXPECT_EQ(i.dst_port, gtpu_port);
  EXPECT_EQ(i.l4_payload_len, 8u + 20 + 20);
  // A broken GTP-U header is no error either when nobody looks into it.
  auto bad = f;
  bad[18 + 20 + 8] = 0x50;
  EXPECT_EQ(parsed(bad, false).dst_port, gtpu_port);
}

TEST(Gtpu, FragmentsAreNotDecapsulated) {
  auto f = Frame()
               .eth(0x0800)
               .ipv4({.proto = 17, .frag = 0x2000})
               .udp(1, gtpu_port)
               .gtpu({})
               .ipv4({})
               .tcp(1, 2, 0)
               .bytes();
  const PacketInfo i = parsed(f, true);
  EXPECT_FALSE(i.gtpu);
  EXPECT_TRUE(i.first_fragment);
}

TEST(Parser, WindowShorterThanFrame) {
  const auto f = Frame().eth(0x0800).ipv4({}).tcp(1, 2, tcp_ack).payload(1000).bytes();
  PacketInfo full;
  ASSERT_EQ(parse(f, full), ParseError::none);
  PacketInfo i;
  // Headers inside the window: same answer as with every byte.
  ASSERT_EQ(parse(f, i, false, 54), ParseError::none);
  EXPECT_EQ(fields(i), fields(full));
  EXPECT_EQ(i.l4_payload_len, 1000u);
  // A header cut by the window is our limit, not the frame's fault.
  EXPECT_EQ(parse(f, i, false, 53), ParseError::headers_too_long);
  // Cut by the frame itself: the frame is short.
  EXPECT_EQ(parse(f, i, false, 53, 53), ParseError::ipv4_truncated);
}

TEST(Parser, HeadersBeyondTheParseWindowAreTooLong) {
  // Two 256-byte destination options headers put UDP past byte 512 even though every byte
  // is contiguous: the answer must not depend on how much the rx path linearized.
  const auto f = Frame().eth(0x86dd).ipv6({.next = 60}).ext(60, 31).ext(17, 31).udp(1, 2).bytes();
  ASSERT_GT(f.size(), parse_window);
  PacketInfo i;
  EXPECT_EQ(parse(f, i), ParseError::headers_too_long);
}

struct Case {
  const char* what;
  Bytes frame;
  ParseError want;
  bool gtpu = false;
  size_t len = SIZE_MAX;  // bytes handed to the parser; the frame is always whole
};

Bytes cut(Bytes b, size_t n) {
  b.resize(n);
  return b;
}
Bytes with16(Bytes b, size_t at, uint16_t v) {
  put16(b, at, v);
  return b;
}
Bytes with8(Bytes b, size_t at, uint8_t v) {
  b[at] = v;
  return b;
}

std::vector<Case> error_cases() {
  using E = ParseError;
  const Bytes tcp4 = Frame().eth(0x0800).ipv4({}).tcp(1, 2, 0).bytes();
  const Bytes udp4 = Frame().eth(0x0800).ipv4({.proto = 17}).udp(1, 2).payload(4).bytes();
  const Bytes v6 = Frame().eth(0x86dd).ipv6({.next = 59}).payload(8).bytes();
  const size_t gtp = 14 + 20 + 8;  // GTP-U header offset in the frames below
  auto gtpu = [](const Gtp& g) {
    return Frame().eth(0x0800).ipv4({.proto = 17}).udp(1, gtpu_port).gtpu(g);
  };
  return {
      {"13 bytes", Bytes(13), E::eth_truncated},
      {"half a tag", Frame().eth(0x8100).u16(100).bytes(), E::vlan_truncated},
      {"half a second tag", Frame().eth(0x88a8).tag(1, 0x8100).u8(0).bytes(), E::vlan_truncated},
      {"19 bytes of IPv4", cut(tcp4, 14 + 19), E::ipv4_truncated},
      {"IHL 6 in 22 bytes", cut(Frame().eth(0x0800).ipv4({.option_words = 1}).bytes(), 36),
       E::ipv4_truncated},
      {"total length past the frame", with16(tcp4, 16, 41), E::ipv4_truncated},
      {"version 5", Frame().eth(0x0800).ipv4({.version = 5}).tcp(1, 2, 0).bytes(),
       E::ipv4_bad_version},
      {"IHL 4", Frame().eth(0x0800).ipv4({.ihl = 4}).tcp(1, 2, 0).bytes(), E::ipv4_bad_ihl},
      {"total length 19", with16(tcp4, 16, 19), E::ipv4_bad_length},
      {"39 bytes of IPv6", cut(v6, 14 + 39), E::ipv6_truncated},
      {"payload length past the frame", with16(v6, 18, 9), E::ipv6_truncated},
      {"version 4 in IPv6", Frame().eth(0x86dd).ipv6({.next = 59, .version = 4}).bytes(),
       E::ipv6_bad_version},
      {"hop-by-hop claims 16 of 8 bytes",
       with8(Frame().eth(0x86dd).ipv6({.next = 0}).ext(59).bytes(), 14 + 40 + 1, 1),
       E::ipv6_ext_truncated},
      {"one byte of a routing header", Frame().eth(0x86dd).ipv6({.next = 43}).u8(59).bytes(),
       E::ipv6_ext_truncated},
      {"nine destination options",
       ipv6_with_destination_options(max_ipv6_extensions + 1).udp(1, 2).bytes(),
       E::ipv6_ext_chain_too_long},
      {"19 bytes of TCP", Frame().eth(0x0800).ipv4({}).zeros(19).bytes(), E::tcp_truncated},
      {"data offset 6 in 20 bytes", with8(tcp4, 34 + 12, 0x60), E::tcp_truncated},
      {"data offset 4", with8(tcp4, 34 + 12, 0x40), E::tcp_bad_offset},
      {"7 bytes of UDP", Frame().eth(0x0800).ipv4({.proto = 17}).zeros(7).bytes(),
       E::udp_truncated},
      {"UDP length 7", with16(udp4, 34 + 4, 7), E::udp_bad_length},
      {"UDP length past the IP payload", with16(udp4, 34 + 4, 13), E::udp_bad_length},
      {"11 bytes of SCTP", Frame().eth(0x0800).ipv4({.proto = 132}).zeros(11).bytes(),
       E::sctp_truncated},
      {"7 bytes of ICMP", Frame().eth(0x0800).ipv4({.proto = 1}).zeros(7).bytes(),
       E::icmp_truncated},
      {"3 bytes of ICMPv6", Frame().eth(0x86dd).ipv6({.next = 58}).zeros(3).bytes(),
       E::icmp_truncated},
      {"7 bytes of GTP-U",
       Frame().eth(0x0800).ipv4({.proto = 17}).udp(1, gtpu_port).u32(0x30ff0000).zeros(3).bytes(),
       E::gtpu_truncated, true},
      {"sequence number cut short",
       Frame()
           .eth(0x0800)
           .ipv4({.proto = 17})
           .udp(1, gtpu_port)
           .u32(0x32ff0002)
           .u32(1)
           .u16(5)
           .bytes(),
       E::gtpu_truncated, true},
      {"extension header longer than the message",
       with8(gtpu({.ext_units = {1}}).bytes(), gtp + 12, 2), E::gtpu_truncated, true},
      {"GTP-U length past the UDP payload",
       with16(gtpu({}).ipv4({}).tcp(1, 2, 0).bytes(), gtp + 2, 41), E::gtpu_truncated, true},

      {"GTP version 2", with8(gtpu({}).ipv4({}).tcp(1, 2, 0).bytes(), gtp, 0x50),
       E::gtpu_bad_header, true},
      {"GTP' (protocol type 0)", with8(gtpu({}).ipv4({}).tcp(1, 2, 0).bytes(), gtp, 0x20),
       E::gtpu_bad_header, true},
      {"extension length 0",
       with8(gtpu({.ext_units = {1}}).ipv4({}).tcp(1, 2, 0).bytes(), gtp + 12, 0),
       E::gtpu_bad_header, true},
      {"inner TCP cut short", gtpu({}).ipv4({}).zeros(12).bytes(), E::tcp_truncated, true},
      {"inner IPv6 payload length past the message",
       with16(gtpu({}).ipv6({.next = 59}).bytes(), gtp + 8 + 4, 1), E::ipv6_truncated, true},
      {"TCP header past the window", tcp4, E::headers_too_long, false, 40},
  };
}

TEST(Parser, EveryDropReasonFromAMinimalFrame) {
  std::set<ParseError> seen;
  for (const Case& c : error_cases()) {
    PacketInfo i;
    const ParseError got = parse(c.frame, i, c.gtpu, c.len);
    EXPECT_EQ(parse_error_name(got), parse_error_name(c.want)) << c.what;
    seen.insert(got);
  }
  for (size_t e = 1; e < static_cast<size_t>(ParseError::count_); ++e) {
    EXPECT_TRUE(seen.count(static_cast<ParseError>(e)))
        << "no case for " << parse_error_name(static_cast<ParseError>(e));
  }
}

std::vector<Bytes> valid_frames() {
  return {
      Frame().eth(0x0800).ipv4({.option_words = 2}).tcp(1, 2, tcp_syn, 7).payload(9).bytes(),
      Frame().eth(0x8100).tag(5, 0x0800).ipv4({.proto = 17}).udp(1, 2).payload(3).pad(20).bytes(),
      Frame()
          .eth(0x88a8)
          .tag(5, 0x8100)
          .tag(6, 0x86dd)
          .ipv6({.next = 0})
          .ext(43, 1)
          .ext(44)
          .frag6(6, 0, true)
          .tcp(1, 2, tcp_ack)
          .bytes(),
      Frame().eth(0x86dd).ipv6({.next = 60}).ext(132).sctp(1, 2).payload(4).bytes(),
      Frame().eth(0x86dd).ipv6({.next = 44}).frag6(17, 8, true).payload(30).bytes(),
      Frame().eth(0x0800).ipv4({.proto = 1}).icmp(0).payload(12).bytes(),
      Frame().eth(0x86dd).ipv6({.next = 58}).icmp6(1).payload(12).bytes(),
      Frame().eth(0x0800).ipv4({.frag = 0x2000}).tcp(1, 2, 0).bytes(),
      ipv6_with_destination_options(max_ipv6_extensions).udp(1, 2).bytes(),
      gtpu_over_ipv4({.ext_units = {1, 2}}).ipv4({}).tcp(5, 6, tcp_fin).payload(4).bytes(),
      gtpu_over_ipv4({.seq = true}).ipv6({.next = 0}).ext(17).udp(7, 8).pad(10).bytes(),
      gtpu_over_ipv4({.type = 26, .seq = true}).u16(0x0e00).bytes(),
      Frame().eth(0x0806).zeros(28).bytes(),
  };
}

// Properties any successful parse must have, whatever the bytes were.
void expect_consistent(const PacketInfo& i, uint32_t frame_len) {
  EXPECT_TRUE(i.family == 0 || i.family == 4 || i.family == 6);
  EXPECT_LE(i.l2_len, 22);
  EXPECT_LE(i.l4_offset, parse_window);
  EXPECT_LE(uint64_t{i.l4_payload_offset} + i.l4_payload_len, frame_len);
  if (i.fragment) {
    EXPECT_EQ(i.src_port, 0);
    EXPECT_EQ(i.dst_port, 0);
  }
  if (i.fragment && !i.first_fragment) {
    EXPECT_EQ(i.l4_offset, 0);
  }
}

TEST(Robustness, EveryTruncation) {
  for (const Bytes& f : valid_frames()) {
    for (bool gtpu : {false, true}) {
      PacketInfo full;
      ASSERT_EQ(parse(f, full, gtpu), ParseError::none);
      for (size_t n = 0; n <= f.size(); ++n) {
        PacketInfo i;
        // The frame itself ends early: some named reason, or a frame that still parses.
        if (parse(f, i, gtpu, n, n) == ParseError::none)
          expect_consistent(i, static_cast<uint32_t>(n));
        // Only the window ends early: the full answer, or headers_too_long.
        const ParseError e = parse(f, i, gtpu, n);
        if (e == ParseError::none) {
          EXPECT_EQ(fields(i), fields(full)) << "window " << n;
        } else {
          EXPECT_EQ(e, ParseError::headers_too_long) << parse_error_name(e) << " window " << n;
        }
      }
    }
  }
}

TEST(Robustness, SeededMutations) {
  const std::vector<Bytes> frames = valid_frames();
  std::mt19937 rng(20221122);
  std::vector<size_t> counts(static_cast<size_t>(ParseError::count_));
  for (int round = 0; round < 5000; ++round) {
    Bytes f = frames[rng() % frames.size()];
    // Mostly header bytes, where the parser makes decisions.
    for (int i = 0, n = 1 + static_cast<int>(rng() % 4); i < n; ++i) {
      f[rng() % std::min<size_t>(f.size(), 96)] = static_cast<uint8_t>(rng());
    }
    if (rng() % 4 == 0) f.resize(rng() % (f.size() + 1));
    const size_t frame_len = f.size() + (rng() % 3 == 0 ? rng() % 2000 : 0);
    PacketInfo i;
    const ParseError e = parse(f, i, rng() % 2 == 0, SIZE_MAX, frame_len);
    ASSERT_LT(static_cast<size_t>(e), counts.size());
    ++counts[static_cast<size_t>(e)];
    if (e == ParseError::none) expect_consistent(i, static_cast<uint32_t>(frame_len));
  }
  // The mutations must reach both outcomes, or the test proves little.
  EXPECT_GT(counts[0], 500u);
  EXPECT_GT(5000 - counts[0], 500u);
}

// parse_fast against parse_frame: where the fast path takes a frame it must give exactly
// the full parser's answer; where it does not, parse_packet falls back to the full parser,
// so results and drop reasons are the same whichever path a frame takes.
struct Differential {
  size_t inputs = 0, fast = 0;
  void check(const Bytes& f, size_t frame_len, bool gtpu) {
    ++inputs;
    const ParseOptions options{gtpu};
    const auto len = static_cast<uint32_t>(f.size());
    const auto flen = static_cast<uint32_t>(frame_len);
    PacketInfo full, quick, combined;
    const ParseError e = parse_frame(f.data(), len, flen, full, options);
    if (parse_fast(f.data(), len, flen, quick, options)) {
      ++fast;
      ASSERT_EQ(e, ParseError::none) << "fast path took a frame the full parser refuses";
      ASSERT_TRUE(quick == full) << "the fast path's fields differ from the full parser's";
    }
    ASSERT_EQ(parse_packet(f.data(), len, flen, combined, options), e);
    if (e == ParseError::none) {
      ASSERT_TRUE(combined == full);
    }
    // The rx path builds the flow key from the packet's bytes: make_flow_key's key exactly.
    if (e == ParseError::none && full.family != 0) {
      uint64_t w[6];
      flow_key_words(f.data(), full, 3, w);
      const FlowKey k = make_flow_key(full, 3);
      ASSERT_EQ(std::memcmp(w, &k, sizeof k), 0) << "flow_key_words differs from make_flow_key";
    }
  }
};

TEST(FastPath, AgreesWithTheFullParserOnTheFuzzCorpus) {
  // The packet fuzz target's corpus and regressions: first byte the options and the extra
  // frame length (as tests/fuzz/packet_fuzz.cpp reads it), then the frame; each at every
  // truncation too.
  Differential d;
  size_t files = 0;
  for (const char* dir : {"tests/fuzz/packet", "tests/fuzz/packet/regressions"}) {
    for (const auto& entry : std::filesystem::directory_iterator(test::source_root() / dir)) {
      if (!entry.is_regular_file()) continue;
      const std::string text = test::read_file(entry.path());
      if (text.empty()) continue;
      ++files;
      const auto control = static_cast<uint8_t>(text[0]);
      const Bytes frame(text.begin() + 1, text.end());
      const bool gtpu = control & 0x80;
      const size_t extra = (control & 0x7fu) * 16;
      for (size_t n = 0; n <= frame.size(); ++n) {
        const Bytes cut(frame.begin(), frame.begin() + static_cast<ptrdiff_t>(n));
        d.check(cut, n + extra, gtpu);
        d.check(cut, n, !gtpu);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }
  EXPECT_GT(files, 50u);
  EXPECT_GT(d.fast, 10u) << "the corpus should exercise the fast path";
}

TEST(FastPath, AgreesWithTheFullParserOnSeededMutations) {
  std::vector<Bytes> frames = valid_frames();
  // And the shapes the fast path takes, which mutations then push in and out of it.
  for (const Bytes& f :
       {Frame().eth(0x0800).ipv4({}).tcp(1, 2, tcp_ack).payload(6).bytes(),
        Frame().eth(0x0800).ipv4({.proto = 17}).udp(5, gtpu_port).payload(12).bytes(),
        Frame().eth(0x88a8).tag(7, 0x0800).ipv4({}).tcp(3, 4, tcp_fin).pad(8).bytes(),
        Frame().eth(0x86dd).ipv6({.next = 6}).tcp(1, 2, tcp_syn).payload(5).bytes(),
        Frame().eth(0x8100).tag(9, 0x86dd).ipv6({.next = 17}).udp(1, 2).payload(30).bytes()})
    frames.push_back(f);
  std::mt19937 rng(20261203);
  Differential d;
  for (int round = 0; round < 50000; ++round) {
    Bytes f = frames[rng() % frames.size()];
    for (int i = 0, n = static_cast<int>(rng() % 4); i < n; ++i)
      f[rng() % std::min<size_t>(f.size(), 80)] = static_cast<uint8_t>(rng());
    if (rng() % 4 == 0) f.resize(rng() % (f.size() + 1));
    const size_t frame_len = f.size() + (rng() % 3 == 0 ? rng() % 2000 : 0);
    d.check(f, frame_len, rng() % 2 == 0);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(d.fast, 5000u);
  EXPECT_GT(d.inputs - d.fast, 5000u);
}

}  // namespace
}  // namespace segx::dataplane
