#pragma once
// The flow key (docs/dataplane.md, "Flows") and the segment policy decisions. Both are
// plain code with time passed in, so they are tested without EAL and with exact clocks.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "dataplane/packet.hpp"

namespace segx::dataplane {

/// What identifies a flow. Hashed and compared as raw bytes: every padding byte is zero.
struct FlowKey {
  uint8_t src[16];
  uint8_t dst[16];
  uint16_t src_port;  ///< host order; 0 for fragments and portless protocols
  uint16_t dst_port;
  uint16_t outer_vlan;  ///< 0 when untagged
  uint16_t inner_vlan;
  uint8_t family;
  uint8_t proto;
  uint8_t in_port;  ///< configured port index
  uint8_t vlan_count;
  uint32_t reserved;  ///< zero
};
static_assert(std::is_trivially_copyable_v<FlowKey>);
static_assert(sizeof(FlowKey) == 48, "the flow table's key length");

/// The flow key of a parsed IP packet (info.family is 4 or 6).
inline FlowKey make_flow_key(const PacketInfo& info, uint8_t in_port) {
  FlowKey k;
  std::memset(&k, 0, sizeof k);
  std::memcpy(k.src, info.src.data(), 16);
  std::memcpy(k.dst, info.dst.data(), 16);
  k.src_port = info.src_port;
  k.dst_port = info.dst_port;
  k.outer_vlan = info.vlan_count >= 1 ? info.outer_vlan : 0;
  k.inner_vlan = info.vlan_count >= 2 ? info.inner_vlan : 0;
  k.vlan_count = info.vlan_count;
  k.family = info.family;
  k.proto = info.proto;
  k.in_port = in_port;
  return k;
}

/// The flow key of a packet parsed from `data` (info.family 4 or 6), as make_flow_key()
/// gives it, in its six 8-byte words: the addresses read from the packet itself, not from
/// `info`, whose address bytes were just written in pieces (reading them back whole would
/// stall on store forwarding). Stored whole and hashed from registers by the rx path.
inline void flow_key_words(const uint8_t* data, const PacketInfo& info, uint8_t in_port,
                           uint64_t w[6]) {
  const uint8_t* h = data + info.l3_offset;
  if (info.family == 4) {
    uint32_t src, dst;
    std::memcpy(&src, h + 12, 4);
    std::memcpy(&dst, h + 16, 4);
    w[0] = src;
    w[1] = 0;
    w[2] = dst;
    w[3] = 0;
  } else {
    std::memcpy(&w[0], h + 8, 16);
    std::memcpy(&w[2], h + 24, 16);
  }
  const uint64_t outer = info.vlan_count >= 1 ? info.outer_vlan : 0;
  const uint64_t inner = info.vlan_count >= 2 ? info.inner_vlan : 0;
  w[4] = uint64_t{info.src_port} | uint64_t{info.dst_port} << 16 | outer << 32 | inner << 48;
  w[5] = uint64_t{info.family} | uint64_t{info.proto} << 8 | uint64_t{in_port} << 16 |
         uint64_t{info.vlan_count} << 24;
  static_assert(offsetof(FlowKey, src_port) == 32 && offsetof(FlowKey, family) == 40,
                "the words follow FlowKey's layout");
}

/// Why a segment closed. The numbering is part of the record format's order of checks.
enum class CloseReason : uint8_t {
  open = 0,  ///< not closed
  packets,
  bytes,
  tcp_fin,
  tcp_rst,
  time,
  idle,
  evicted,
  shutdown,
  reload,  ///< its profile changed with a configuration reload
  count_
};

/// The reason's name in records and reports ("tcp_fin").
std::string_view close_reason_name(CloseReason r);

/// A profile's segment policy in clock ticks (TSC cycles in the pipeline).
struct SegmentRules {
  uint32_t packets = 0;  ///< 0: no limit
  uint64_t bytes = 0;    ///< 0: no limit
  uint64_t time = 0;     ///< ticks from the first packet; 0: no limit
  uint64_t idle = 0;     ///< ticks since the last packet; 0: no limit
  bool tcp_close = true;
};

/// The running totals of an open segment that the rules look at.
struct SegmentProgress {
  uint32_t packets = 0;
  uint64_t bytes = 0;
  uint64_t first_time = 0;
  uint64_t last_time = 0;
};

/// Step 1: must the open segment close before a packet arriving at `now` joins it?
inline CloseReason close_before(const SegmentRules& r, const SegmentProgress& s, uint64_t now) {
  if (r.time != 0 && now - s.first_time >= r.time) return CloseReason::time;
  if (r.idle != 0 && now - s.last_time >= r.idle) return CloseReason::idle;
  return CloseReason::open;
}

/// Step 3: after a packet joined (s includes it), does the segment end with it?
inline CloseReason close_after(const SegmentRules& r, const SegmentProgress& s, uint8_t proto,
                               uint8_t tcp_flags) {
  if (r.packets != 0 && s.packets >= r.packets) return CloseReason::packets;
  if (r.bytes != 0 && s.bytes >= r.bytes) return CloseReason::bytes;
  if (r.tcp_close && proto == 6) {
    if (tcp_flags & tcp_fin) return CloseReason::tcp_fin;
    if (tcp_flags & tcp_rst) return CloseReason::tcp_rst;
  }
  return CloseReason::open;
}

/// Between packets: has the open segment expired at `now`?
inline CloseReason expired(const SegmentRules& r, const SegmentProgress& s, uint64_t now) {
  return close_before(r, s, now);
}

}  // namespace segx::dataplane
