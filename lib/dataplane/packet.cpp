#include "dataplane/packet.hpp"

#include <rte_byteorder.h>

#include <algorithm>
#include <cstring>

namespace segx::dataplane {
namespace {

constexpr uint16_t ether_ipv4 = 0x0800;
constexpr uint16_t ether_ipv6 = 0x86dd;

constexpr uint8_t proto_icmp = 1;
constexpr uint8_t proto_tcp = 6;
constexpr uint8_t proto_udp = 17;
constexpr uint8_t proto_frag = 44;
constexpr uint8_t proto_icmpv6 = 58;
constexpr uint8_t proto_sctp = 132;

constexpr uint8_t gtpu_g_pdu = 255;
constexpr uint8_t gtpu_flag_pt = 0x10;
constexpr uint8_t gtpu_flag_e = 0x04;
constexpr uint8_t gtpu_flags_optional = 0x07;  // E, S, PN: any of them adds 4 bytes

// 802.1Q, 802.1ad and the pre-standard 0x9100 all carry a 4-byte tag.
inline bool is_tag(uint16_t ether_type) {
  return ether_type == 0x8100 || ether_type == 0x88a8 || ether_type == 0x9100;
}

// The IPv6 extension headers the walk steps over: hop-by-hop, routing, fragment,
// destination options, mobility, HIP, shim6. AH (51) and ESP (50) are where the walk
// stops, as protocols a profile can match (`protocol: ah`), the same in IPv4 and IPv6;
// no-next-header (59) ends it too.
constexpr std::array<bool, 256> ipv6_extension = [] {
  std::array<bool, 256> t{};
  for (uint8_t p : {0, 43, 44, 60, 135, 139, 140})
    t[p] = true;
  return t;
}();

inline uint16_t load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return rte_be_to_cpu_16(v);
}

inline uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return rte_be_to_cpu_32(v);
}

struct Parser {
  const uint8_t* data;
  uint32_t window;  // bytes that may be read: min(len, frame_len, parse_window)

  // A header ending at `end` must fit in what encloses it (`limit`: the frame, IP packet or
  // GTP-U message) and in the window. Past the limit the packet itself is short; inside
  // the limit but past the window only our view of it is. One compare in the common case.
  ParseError need(uint32_t end, uint32_t limit, ParseError short_error) const {
    if (end > std::min(limit, window)) [[unlikely]] {
      return end > limit ? short_error : ParseError::headers_too_long;
    }
    return ParseError::none;
  }
};

#define SEGX_NEED(end, limit, error)                                                             \
  do {                                                                                           \
    if (const ParseError e_ = p.need((end), (limit), ParseError::error); e_ != ParseError::none) \
        [[unlikely]]                                                                             \
      return e_;                                                                                 \
  } while (0)

// The L4 header at l4 of an IP packet ending at ip_end; out.proto and out.fragment are set.
// Unknown protocols leave l4_offset 0: there is no header we could point at.
ParseError parse_l4(const Parser& p, uint32_t l4, uint32_t ip_end, PacketInfo& out) {
  const uint8_t* h = p.data + l4;
  uint32_t header_len;
  uint32_t payload_end = ip_end;
  bool has_ports = true;
  switch (out.proto) {
    case proto_tcp: {
      SEGX_NEED(l4 + 20, ip_end, tcp_truncated);
      header_len = (h[12] >> 4) * 4u;
      if (header_len < 20) return ParseError::tcp_bad_offset;
      SEGX_NEED(l4 + header_len, ip_end, tcp_truncated);
      out.tcp_flags = h[13];
      break;
    }
    case proto_udp: {
      SEGX_NEED(l4 + 8, ip_end, udp_truncated);
      const uint32_t udp_len = load16(h + 4);
      // A first fragment carries only part of the datagram the length field describes.
      if (udp_len < 8 || (!out.fragment && udp_len > ip_end - l4)) {
        return ParseError::udp_bad_length;
      }
      header_len = 8;
      payload_end = std::min(ip_end, l4 + udp_len);
      break;
    }
    case proto_sctp:
      SEGX_NEED(l4 + 12, ip_end, sctp_truncated);
      header_len = 12;
      break;
    case proto_icmp:
      SEGX_NEED(l4 + 8, ip_end, icmp_truncated);
      header_len = 8;
      has_ports = false;
      break;
    case proto_icmpv6:
      SEGX_NEED(l4 + 4, ip_end, icmp_truncated);
      header_len = 4;
      has_ports = false;
      break;
    default:
      return ParseError::none;
  }
  out.l4_offset = static_cast<uint16_t>(l4);
  // Fragments share one flow, so even the first one, which has the ports, reports 0.
  if (has_ports && !out.fragment) {
    out.src_port = load16(h);
    out.dst_port = load16(h + 2);
  }
  out.l4_payload_offset = l4 + header_len;
  out.l4_payload_len = payload_end - (l4 + header_len);
  return ParseError::none;
}

// The IPv4 packet at l3, which must end by `limit` (the frame, or the GTP-U message).
ParseError parse_ipv4(const Parser& p, uint32_t l3, uint32_t limit, PacketInfo& out) {
  SEGX_NEED(l3 + 20, limit, ipv4_truncated);
  const uint8_t* h = p.data + l3;
  if ((h[0] >> 4) != 4) return ParseError::ipv4_bad_version;
  const uint32_t header_len = (h[0] & 0x0fu) * 4;
  if (header_len < 20) return ParseError::ipv4_bad_ihl;
  SEGX_NEED(l3 + header_len, limit, ipv4_truncated);
  const uint32_t total_len = load16(h + 2);
  if (total_len < header_len) return ParseError::ipv4_bad_length;
  if (total_len > limit - l3) return ParseError::ipv4_truncated;

  out.family = 4;
  out.l3_offset = static_cast<uint16_t>(l3);
  out.dscp = h[1] >> 2;
  out.proto = h[9];
  std::memcpy(out.src.data(), h + 12, 4);
  std::memcpy(out.dst.data(), h + 16, 4);
  const uint16_t frag = load16(h + 6);
  const bool more_fragments = (frag & 0x2000) != 0;
  if ((frag & 0x1fff) != 0) {
    out.fragment = true;  // not the first: what follows the header is not an L4 header
    return ParseError::none;
  }
  out.fragment = more_fragments;
  out.first_fragment = more_fragments;
  return parse_l4(p, l3 + header_len, l3 + total_len, out);
}

// The IPv6 packet at l3, which must end by `limit`; walks at most max_ipv6_extensions
// extension headers to the L4 protocol.
ParseError parse_ipv6(const Parser& p, uint32_t l3, uint32_t limit, PacketInfo& out) {
  SEGX_NEED(l3 + 40, limit, ipv6_truncated);
  const uint8_t* h = p.data + l3;
  if ((h[0] >> 4) != 6) return ParseError::ipv6_bad_version;
  const uint32_t payload_len = load16(h + 4);
  if (40 + payload_len > limit - l3) return ParseError::ipv6_truncated;
  const uint32_t ip_end = l3 + 40 + payload_len;

  out.family = 6;
  out.l3_offset = static_cast<uint16_t>(l3);
  out.dscp = static_cast<uint8_t>(((h[0] & 0x0f) << 2) | (h[1] >> 6));
  std::memcpy(out.src.data(), h + 8, 16);
  std::memcpy(out.dst.data(), h + 24, 16);

  uint8_t next = h[6];
  uint8_t fragment_next = 0;
  uint32_t off = l3 + 40;
  for (unsigned n = 0; ipv6_extension[next]; ++n) {
    if (n == max_ipv6_extensions) return ParseError::ipv6_ext_chain_too_long;
    SEGX_NEED(off + 2, ip_end, ipv6_ext_truncated);
    const uint8_t* e = p.data + off;
    uint32_t ext_len;
    if (next == proto_frag) {
      ext_len = 8;  // its length byte is reserved
    } else {
      ext_len = (e[1] + 1u) * 8;
    }
    SEGX_NEED(off + ext_len, ip_end, ipv6_ext_truncated);
    if (next == proto_frag) {
      const uint16_t frag = load16(e + 2);
      const bool more_fragments = (frag & 1) != 0;
      if ((frag & 0xfff8) != 0) {
        // Not the first fragment: the rest is fragment data, not headers.
        out.fragment = true;
        out.first_fragment = false;
        out.proto = e[0];
        return ParseError::none;
      }
      out.fragment = more_fragments;
      out.first_fragment = more_fragments;
      fragment_next = e[0];
    }
    next = e[0];
    off += ext_len;
  }
  // Every fragment of a datagram reports what follows its fragment header, so that the
  // first (which could walk further) shares the later ones' flow.
  out.proto = out.fragment ? fragment_next : next;
  if (out.fragment && out.proto != next) return ParseError::none;
  return parse_l4(p, off, ip_end, out);
}

// The GTP-U message in the UDP datagram described by `out`. A G-PDU is decapsulated: `out`
// then describes the inner packet. Other messages leave `out` as the outer UDP packet.
ParseError parse_gtpu(const Parser& p, PacketInfo& out) {
  const uint32_t l4 = out.l4_offset;
  const uint32_t udp_end = l4 + load16(p.data + l4 + 4);  // checked against the IP payload
  const uint32_t g = l4 + 8;
  SEGX_NEED(g + 8, udp_end, gtpu_truncated);
  const uint8_t* h = p.data + g;
  const uint8_t flags = h[0];
  if ((flags >> 5) != 1 || (flags & gtpu_flag_pt) == 0) return ParseError::gtpu_bad_header;
  const uint8_t type = h[1];
  const uint32_t message_len = load16(h + 2);
  if (message_len > udp_end - (g + 8)) return ParseError::gtpu_truncated;
  const uint32_t teid = load32(h + 4);
  const uint32_t message_end = g + 8 + message_len;

  uint32_t off = g + 8;
  if (flags & gtpu_flags_optional) {
    SEGX_NEED(off + 4, message_end, gtpu_truncated);
    // TS 29.281: the next-extension type is meaningful only with the E flag.
    uint8_t next_ext = (flags & gtpu_flag_e) ? p.data[off + 3] : 0;
    off += 4;
    // Each extension is at least 4 bytes and must fit the window, so this ends.
    while (next_ext != 0) {
      SEGX_NEED(off + 1, message_end, gtpu_truncated);
      const uint32_t ext_len = p.data[off] * 4u;
      if (ext_len == 0) return ParseError::gtpu_bad_header;
      SEGX_NEED(off + ext_len, message_end, gtpu_truncated);
      next_ext = p.data[off + ext_len - 1];
      off += ext_len;
    }
  }
  if (type != gtpu_g_pdu) return ParseError::none;

  // A G-PDU that carries no IP packet (empty, or an Ethernet or unstructured PDU session)
  // is left as the UDP packet it is.
  if (off >= message_end) return ParseError::none;
  SEGX_NEED(off + 1, message_end, gtpu_truncated);
  const unsigned version = p.data[off] >> 4;
  if (version != 4 && version != 6) return ParseError::none;

  const PacketInfo outer = out;
  out = PacketInfo{};
  out.l2_len = outer.l2_len;
  out.vlan_count = outer.vlan_count;
  out.outer_vlan = outer.outer_vlan;
  out.inner_vlan = outer.inner_vlan;
  out.ether_type = outer.ether_type;
  out.gtpu = true;
  out.gtpu_teid = teid;
  out.outer_src = outer.src;
  out.outer_dst = outer.dst;
  out.outer_family = outer.family;
  return version == 4 ? parse_ipv4(p, off, message_end, out) : parse_ipv6(p, off, message_end, out);
}

#undef SEGX_NEED

constexpr std::array<std::string_view, static_cast<size_t>(ParseError::count_)> error_names = {
    "none",
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
    "headers_too_long",
};
static_assert(error_names.back() == "headers_too_long", "one name per ParseError, in order");

}  // namespace

std::string_view parse_error_name(ParseError e) {
  const auto i = static_cast<size_t>(e);
  return i < error_names.size() ? error_names[i] : "unknown";
}

ParseError parse_frame(const uint8_t* data, uint32_t len, uint32_t frame_len, PacketInfo& out,
                       const ParseOptions& options) {
  out = PacketInfo{};
  // The window is capped even when more is contiguous, so a frame parses the same whether
  // the rx path saw it in one segment or linearized its first parse_window bytes.
  const Parser p{data, std::min({len, frame_len, static_cast<uint32_t>(parse_window)})};

  if (const ParseError e = p.need(14, frame_len, ParseError::eth_truncated);
      e != ParseError::none) {
    return e;
  }
  uint16_t ether_type = load16(data + 12);
  uint32_t l2 = 14;
  if (is_tag(ether_type)) {
    if (const ParseError e = p.need(l2 + 4, frame_len, ParseError::vlan_truncated);
        e != ParseError::none) {
      return e;
    }
    out.outer_vlan = load16(data + l2) & 0x0fff;
    ether_type = load16(data + l2 + 2);
    l2 += 4;
    out.vlan_count = 1;
    if (is_tag(ether_type)) {
      if (const ParseError e = p.need(l2 + 4, frame_len, ParseError::vlan_truncated);
          e != ParseError::none) {
        return e;
      }
      out.inner_vlan = load16(data + l2) & 0x0fff;
      ether_type = load16(data + l2 + 2);
      l2 += 4;
      out.vlan_count = 2;
    }
  }
  out.l2_len = static_cast<uint16_t>(l2);
  out.ether_type = ether_type;  // a third tag stays here: the frame is simply not IP

  ParseError e;
  if (ether_type == ether_ipv4) {
    e = parse_ipv4(p, l2, frame_len, out);
  } else if (ether_type == ether_ipv6) {
    e = parse_ipv6(p, l2, frame_len, out);
  } else {
    return ParseError::none;
  }
  if (e != ParseError::none || !options.gtpu || out.proto != proto_udp || out.fragment ||
      out.dst_port != gtpu_port) {
    return e;
  }
  return parse_gtpu(p, out);
}

}  // namespace segx::dataplane
