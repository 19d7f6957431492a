#pragma once
// The subcontracting wire format (docs/services.md, "Subcontracting"): a segment's packets
// travel to a peer provider and back inside GENEVE (RFC 8926, UDP port 6081) with one segx
// option that says which segment, which packet of it, which service, and where the origin
// keeps the original. Plain code over contiguous bytes, so it is tested without EAL; the
// decoder reads only the bytes it is given and reports a named error for anything it cannot
// accept, never reading past them.

#include <array>
#include <cstdint>
#include <string_view>

namespace segx::dataplane::geneve {

/// GENEVE's UDP destination port (RFC 8926).
constexpr uint16_t udp_port = 6081;
/// Protocol type of the inner frame: Transparent Ethernet Bridging.
constexpr uint16_t protocol_teb = 0x6558;
/// segx's option class, in the range RFC 8926 leaves for experimental use (0xFF00-0xFFFF).
constexpr uint16_t option_class = 0xFF53;
/// Option types. The high bit is GENEVE's critical bit: a receiver that does not know the
/// option must drop the packet, so a stray segx message is never forwarded as traffic.
constexpr uint8_t type_request = 0x81;
constexpr uint8_t type_reply = 0x82;
/// Bytes of the segx option's data (after its 4-byte TLV header).
constexpr uint32_t option_data_bytes = 36;
/// GENEVE header (8) plus the segx option (4 + 36).
constexpr uint32_t geneve_bytes = 8 + 4 + option_data_bytes;
/// The held-packet slot of an end message (it stands for no packet).
constexpr uint32_t no_slot = 0xffffffff;

/// What a message carries after the option.
enum class Kind : uint8_t {
  packet = 0,   ///< one packet of the segment: the inner Ethernet frame
  end = 1,      ///< request: the segment closed; reply: the service's result (JSON text)
  goodbye = 2,  ///< request: the sender stops and will close the link; reply: the receiver
                ///< no longer polls or sends on it (no payload, no segment)
};

/// Reply flags.
enum Flags : uint8_t {
  flag_dropped = 1,    ///< the peer's service dropped this packet
  flag_truncated = 2,  ///< the result did not fit and was cut
  flag_refused = 4,    ///< the peer does not serve this service (or is full): not processed
};

/// The segx option's fields, in host byte order.
struct Message {
  bool reply = false;
  Kind kind = Kind::packet;
  uint8_t flags = 0;
  uint64_t segment = 0;     ///< the origin's segment id
  uint32_t first_seq = 0;   ///< flow sequence of the segment's first packet
  uint32_t index = 0;       ///< packet: its position among those sent; end: how many were sent
  uint32_t service = 0;     ///< CRC-32C of the service's name (service_id())
  uint32_t handle = 0;      ///< origin's subcontract: worker in the top 8 bits, slot below
  uint32_t slot = no_slot;  ///< origin's held-packet slot of this packet; no_slot in an end
  uint32_t generation = 0;  ///< of the origin's subcontract slot: tells a late reply apart
  friend bool operator==(const Message&, const Message&) = default;
};

/// The outer addresses of a message. Addresses in network byte order (IPv4 in the first 4
/// bytes).
struct Endpoints {
  uint8_t family = 4;  ///< 4 or 6
  std::array<uint8_t, 6> src_mac{};
  std::array<uint8_t, 6> dst_mac{};
  std::array<uint8_t, 16> src{};
  std::array<uint8_t, 16> dst{};
  uint16_t src_port = udp_port;  ///< UDP source port (entropy for ECMP on the way)
};

/// Outer header bytes for a family: Ethernet, IPv4 or IPv6, UDP, GENEVE with the option.
constexpr uint32_t outer_bytes(uint8_t family) {
  return 14 + (family == 6 ? 40 : 20) + 8 + geneve_bytes;
}

/// Writes the outer headers (outer_bytes(e.family) bytes) at `out`, for `payload_len` bytes
/// that follow them (the inner frame or the result). The IPv4 header checksum is set; the
/// UDP checksum is zero over IPv4 (RFC 8926 allows it) and, over IPv6, is left for
/// set_udp_checksum() once the payload is in place.
void encode(uint8_t* out, const Endpoints& e, const Message& m, uint32_t payload_len);

/// Computes the UDP checksum of a whole encoded IPv6 message held contiguously (`frame`,
/// `len` bytes starting at the Ethernet header). Does nothing for IPv4.
void set_udp_checksum(uint8_t* frame, uint32_t len);

/// Why a GENEVE message was refused. One list, so counters, reports and docs agree.
enum class Error : uint8_t {
  none = 0,
  truncated,          ///< shorter than the GENEVE header or its options
  bad_version,        ///< GENEVE version other than 0
  control,            ///< the O bit: a control message, not for segx
  bad_protocol,       ///< protocol type other than Transparent Ethernet Bridging
  option_truncated,   ///< an option's length runs past the options
  unknown_critical,   ///< an option segx does not know has the critical bit set
  no_option,          ///< no segx option
  duplicate_option,   ///< two segx options
  bad_option_length,  ///< the segx option's length is not 36 bytes
  bad_kind,           ///< kind is none of packet, end, goodbye
  inner_truncated,    ///< a packet message whose inner frame is shorter than an Ethernet header
  count_              ///< number of reasons (not a reason)
};

/// The reason's name as reports and metrics show it ("bad_version").
std::string_view error_name(Error e);

/// A decoded message: its option and where its payload is.
struct Decoded {
  Message message;
  uint32_t payload_offset = 0;  ///< from the start of the GENEVE header
  uint32_t payload_len = 0;
};

/// Decodes a GENEVE message from the UDP payload (`len` bytes at `data`, starting at the
/// GENEVE header). Unknown options without the critical bit are skipped. Returns none on
/// success and fills `out`.
Error decode(const uint8_t* data, uint32_t len, Decoded& out);

/// The service id carried in messages: CRC-32C (Castagnoli) of the name.
uint32_t service_id(std::string_view name);

}  // namespace segx::dataplane::geneve
