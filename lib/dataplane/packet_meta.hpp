#pragma once
// Per-packet metadata segx carries in an mbuf dynamic field, so stages on different lcores
// agree on what was decided about a packet without a side table.

#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include <cstdint>

namespace segx::dataplane {

/// What the rx stage decided about a packet; read by the worker and tx stages.
struct PacketMeta {
  uint16_t out_port;  ///< index into the configured ports (not a DPDK port id)
  uint16_t reserved;
  uint32_t reserved2;
};
static_assert(sizeof(PacketMeta) == 8);

/// Offset of the PacketMeta dynamic field; set once by register_packet_meta().
extern int packet_meta_offset;

/// Registers the dynamic field (idempotent). Returns false when the mbuf has no room.
bool register_packet_meta();

inline PacketMeta* packet_meta(rte_mbuf* m) {
  return RTE_MBUF_DYNFIELD(m, packet_meta_offset, PacketMeta*);
}

}  // namespace segx::dataplane
