#pragma once
// Parsing one frame into the fields segx classifies, keys flows and meters on. The parser
// reads only the bytes it is given: a malformed or truncated frame yields a named drop
// reason, never a read past the buffer. It works on contiguous bytes so it can be tested
// without EAL; the rx path hands it the mbuf's first segment or a linearized copy.

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace segx::dataplane {

/// Why a frame was dropped as malformed. One list, so counters, reports and docs agree.
enum class ParseError : uint8_t {
  none = 0,
  eth_truncated,       ///< shorter than an Ethernet header (14 bytes)
  vlan_truncated,      ///< an 802.1Q/802.1ad tag cut short
  ipv4_truncated,      ///< fewer bytes than the IPv4 header (20 or IHL*4) or than its total length
  ipv4_bad_version,    ///< EtherType IPv4 but version field is not 4
  ipv4_bad_ihl,        ///< IHL below 5
  ipv4_bad_length,     ///< total length below the header length
  ipv6_truncated,      ///< fewer than 40 bytes, or than 40 + payload length
  ipv6_bad_version,    ///< EtherType IPv6 but version field is not 6
  ipv6_ext_truncated,  ///< an extension header runs past the packet
  ipv6_ext_chain_too_long,  ///< more than max_ipv6_extensions extension headers
  tcp_truncated,            ///< fewer than 20 bytes, or than the data offset says
  tcp_bad_offset,           ///< data offset below 5
  udp_truncated,            ///< fewer than 8 bytes
  udp_bad_length,           ///< length field below 8 or beyond the IP payload
  sctp_truncated,           ///< fewer than 12 bytes
  icmp_truncated,           ///< ICMP below 8 bytes, ICMPv6 below 4 bytes
  gtpu_truncated,           ///< GTP-U header or its optional fields/extensions cut short
  gtpu_bad_header,          ///< GTP-U version not 1 or protocol type not GTP
  headers_too_long,         ///< headers continue beyond the parse window
  count_                    ///< number of reasons (not a reason)
};

/// The reason's name as it appears in reports and metrics ("ipv4_truncated").
std::string_view parse_error_name(ParseError e);

/// Most IPv6 extension headers walked before giving up (ipv6_ext_chain_too_long).
constexpr unsigned max_ipv6_extensions = 8;
/// Most header bytes the parser looks at; the rx path linearizes at most this many.
constexpr unsigned parse_window = 512;
/// UDP port of GTP-U.
constexpr uint16_t gtpu_port = 2152;

/// TCP flag bits as in the header.
enum TcpFlags : uint8_t { tcp_fin = 0x01, tcp_syn = 0x02, tcp_rst = 0x04, tcp_ack = 0x10 };

/// What the parser found. Addresses are in network byte order (IPv4 in the first 4
/// bytes, the rest zero); ports and VLAN ids in host byte order.
struct PacketInfo {
  uint16_t l2_len = 0;          ///< Ethernet header plus VLAN tags
  uint8_t vlan_count = 0;       ///< 0, 1 or 2 tags parsed (a third tag ends parsing: non-IP)
  uint16_t outer_vlan = 0;      ///< VLAN id of the first tag (valid if vlan_count >= 1)
  uint16_t inner_vlan = 0;      ///< VLAN id of the second tag (valid if vlan_count == 2)
  uint16_t ether_type = 0;      ///< EtherType after the tags (host order)
  uint8_t family = 0;           ///< 4, 6, or 0 for a frame that is not IP
  uint8_t proto = 0;            ///< L4 protocol (after IPv6 extension headers)
  uint8_t dscp = 0;             ///< from TOS / traffic class
  uint8_t tcp_flags = 0;        ///< TcpFlags, TCP only
  bool fragment = false;        ///< any IPv4/IPv6 fragment, first included
  bool first_fragment = false;  ///< the fragment at offset 0
  uint16_t l3_offset = 0;       ///< offset of the (inner, if GTP-U) IP header
  uint16_t l4_offset =
      0;  ///< offset of the L4 header (0 if none: non-first fragment, unknown protocol)
  uint16_t src_port = 0;  ///< TCP/UDP/SCTP ports; 0 for fragments and portless protocols
  uint16_t dst_port = 0;
  uint32_t l4_payload_offset = 0;  ///< first byte after the L4 header (TCP/UDP/SCTP/ICMP), else 0
  uint32_t l4_payload_len = 0;     ///< bytes of L4 payload within the IP packet
  std::array<uint8_t, 16> src{};
  std::array<uint8_t, 16> dst{};
  bool gtpu = false;  ///< decapsulated: the fields above describe the inner packet
  uint32_t gtpu_teid = 0;
  std::array<uint8_t, 16> outer_src{};  ///< outer IP addresses when gtpu
  std::array<uint8_t, 16> outer_dst{};
  uint8_t outer_family = 0;
  friend bool operator==(const PacketInfo&, const PacketInfo&) = default;
};

/// Parser options.
struct ParseOptions {
  bool gtpu = false;  ///< look into GTP-U G-PDUs (UDP port 2152) and describe the inner packet
};

/// Parses a frame. `data` holds `len` contiguous bytes starting at the Ethernet header;
/// `frame_len` is the whole frame's length (>= len; more only when the caller passed a
/// window of a longer frame). Lengths inside headers are checked against frame_len;
/// bytes are read only below len. A header needed beyond len while frame_len is longer
/// gives headers_too_long. Returns none on success.
ParseError parse_frame(const uint8_t* data, uint32_t len, uint32_t frame_len, PacketInfo& out,
                       const ParseOptions& options);

namespace detail {
inline uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
}  // namespace detail

/// The common shapes in a few dozen instructions: Ethernet, untagged or one 802.1Q/802.1ad
/// tag; IPv4 without options or fragments, or IPv6 without extension headers; TCP or UDP
/// (not a GTP-U G-PDU when GTP-U is on). True when it parsed the frame, and then `out` is
/// exactly what parse_frame() gives it (ParseError::none); false for anything else,
/// malformed frames included, which parse_frame() must then parse (and name the drop
/// reason of). Reads only below min(len, frame_len, parse_window), like parse_frame().
inline bool parse_fast(const uint8_t* data, uint32_t len, uint32_t frame_len, PacketInfo& out,
                       const ParseOptions& options) {
  using detail::be16;
  uint32_t window = len < frame_len ? len : frame_len;
  if (window > parse_window) window = parse_window;
  if (window < 14 + 20 + 8) return false;
  uint16_t ether_type = be16(data + 12);
  uint32_t l2 = 14;
  uint16_t vlan = 0;
  uint8_t tags = 0;
  if (ether_type == 0x8100 || ether_type == 0x88a8 || ether_type == 0x9100) {
    vlan = be16(data + 14) & 0x0fff;
    ether_type = be16(data + 16);
    l2 = 18;
    tags = 1;
    if (ether_type == 0x8100 || ether_type == 0x88a8 || ether_type == 0x9100) return false;
  }
  const uint8_t* h = data + l2;
  uint32_t l4, ip_end;
  uint8_t proto;
  if (ether_type == 0x0800) {
    if (l2 + 20 > window || h[0] != 0x45) return false;  // options, or malformed
    const uint32_t total = be16(h + 2);
    if (total < 20 || total > frame_len - l2) return false;
    if (be16(h + 6) & 0x3fff) return false;  // a fragment
    proto = h[9];
    l4 = l2 + 20;
    ip_end = l2 + total;
    out = PacketInfo{};
    out.family = 4;
    out.dscp = h[1] >> 2;
    std::memcpy(out.src.data(), h + 12, 4);
    std::memcpy(out.dst.data(), h + 16, 4);
  } else if (ether_type == 0x86dd) {
    if (l2 + 40 > window || (h[0] >> 4) != 6) return false;
    const uint32_t payload = be16(h + 4);
    if (40 + payload > frame_len - l2) return false;
    proto = h[6];  // anything but TCP or UDP (extension headers too) goes the long way
    l4 = l2 + 40;
    ip_end = l4 + payload;
    out = PacketInfo{};
    out.family = 6;
    out.dscp = static_cast<uint8_t>(((h[0] & 0x0f) << 2) | (h[1] >> 6));
    std::memcpy(out.src.data(), h + 8, 16);
    std::memcpy(out.dst.data(), h + 24, 16);
  } else {
    return false;
  }
  const uint32_t limit = ip_end < window ? ip_end : window;
  const uint8_t* t = data + l4;
  uint32_t header;
  uint32_t payload_end = ip_end;
  if (proto == 6) {
    if (l4 + 20 > limit) return false;
    header = (t[12] >> 4) * 4u;
    if (header < 20 || l4 + header > limit) return false;
    out.tcp_flags = t[13];
  } else if (proto == 17) {
    if (l4 + 8 > limit) return false;
    const uint32_t udp_len = be16(t + 4);
    if (udp_len < 8 || udp_len > ip_end - l4) return false;
    if (options.gtpu && be16(t + 2) == gtpu_port) return false;
    header = 8;
    payload_end = l4 + udp_len;
  } else {
    return false;
  }
  out.l2_len = static_cast<uint16_t>(l2);
  out.vlan_count = tags;
  out.outer_vlan = vlan;
  out.ether_type = ether_type;
  out.proto = proto;
  out.l3_offset = static_cast<uint16_t>(l2);
  out.l4_offset = static_cast<uint16_t>(l4);
  out.src_port = be16(t);
  out.dst_port = be16(t + 2);
  out.l4_payload_offset = l4 + header;
  out.l4_payload_len = payload_end - (l4 + header);
  return true;
}

/// parse_fast(), else parse_frame(): what the rx path calls.
inline ParseError parse_packet(const uint8_t* data, uint32_t len, uint32_t frame_len,
                               PacketInfo& out, const ParseOptions& options) {
  if (parse_fast(data, len, frame_len, out, options)) [[likely]]
    return ParseError::none;
  return parse_frame(data, len, frame_len, out, options);
}

}  // namespace segx::dataplane
