#pragma once
// Internal: what the services need of a packet: its headers parsed again (the rx lcore's
// PacketInfo does not travel with the packet), and its payload bytes, which may span mbuf
// segments.

#include <rte_mbuf.h>

#include <cstdint>

#include "dataplane/packet.hpp"

namespace segx::services {

/// Parses the packet's headers from its first segment. False when they do not parse (or
/// do not fit the first segment). GTP-U is not decapsulated: services see the outer packet.
inline bool parse_headers(const rte_mbuf* m, dataplane::PacketInfo& info) {
  const uint32_t first = rte_pktmbuf_data_len(m);
  const uint32_t window = first < dataplane::parse_window ? first : dataplane::parse_window;
  return dataplane::parse_frame(rte_pktmbuf_mtod(m, const uint8_t*), window, rte_pktmbuf_pkt_len(m),
                                info, dataplane::ParseOptions{}) == dataplane::ParseError::none;
}

/// A byte range of a packet.
struct Range {
  uint32_t offset = 0;
  uint32_t length = 0;
};

/// The L4 payload (after the TCP/UDP/SCTP/ICMP header, without Ethernet padding), or an
/// empty range for a packet without one (not IP, a fragment after the first).
inline Range payload_range(const rte_mbuf* m) {
  dataplane::PacketInfo info;
  if (!parse_headers(m, info) || info.l4_payload_offset == 0) return {};
  return {info.l4_payload_offset, info.l4_payload_len};
}

/// The whole frame.
inline Range frame_range(const rte_mbuf* m) {
  return {0, rte_pktmbuf_pkt_len(m)};
}

/// Calls fn(const uint8_t* bytes, uint32_t length) for each contiguous piece of the range,
/// in order, walking the mbuf's segments.
template <class F>
void for_each_chunk(const rte_mbuf* m, Range r, F&& fn) {
  uint32_t skip = r.offset;
  uint32_t left = r.length;
  for (const rte_mbuf* seg = m; seg != nullptr && left > 0; seg = seg->next) {
    const uint32_t len = rte_pktmbuf_data_len(seg);
    if (skip >= len) {
      skip -= len;
      continue;
    }
    const uint32_t take = len - skip < left ? len - skip : left;
    fn(rte_pktmbuf_mtod_offset(seg, const uint8_t*, skip), take);
    left -= take;
    skip = 0;
  }
}

/// The range as contiguous bytes: a pointer into the packet when it lies in one segment,
/// otherwise copied to `buffer` (at least r.length bytes).
inline const uint8_t* contiguous(const rte_mbuf* m, Range r, uint8_t* buffer) {
  return static_cast<const uint8_t*>(rte_pktmbuf_read(m, r.offset, r.length, buffer));
}

}  // namespace segx::services
