#pragma once
// A segment descriptor: created by an rx lcore when a flow's segment opens, carried to the
// flow's worker by the packets (PacketMeta::segment) and by a close event after its last
// packet, finished there by the service chain and then written as a record or freed.
// Descriptors come from an rte_mempool; nothing is allocated per segment.

#include <rte_common.h>

#include <cstddef>
#include <cstdint>

#include "dataplane/flow.hpp"

namespace segx::dataplane {

/// Per-segment state bytes shared by a chain's services (Service::state_size()).
constexpr size_t segment_state_bytes = 384;
/// Bytes of JSON the chain's services may write into a segment's record.
constexpr size_t segment_result_bytes = 768;

/// One segment. The first cache lines belong to the rx lcore until the close event is
/// enqueued; the rest belongs to the worker.
struct alignas(RTE_CACHE_LINE_SIZE) Segment {
  // Written by the rx lcore; the worker reads them only after the close event.
  uint64_t id;  ///< unique in the appliance: rx lcore in the top bits, a counter below
  FlowKey key;
  uint64_t first_tsc;     ///< rx time of the first packet (TSC)
  uint64_t last_tsc;      ///< rx time of the last packet (TSC)
  uint64_t bytes;         ///< frame bytes
  uint64_t block_serial;  ///< the metering block that covered its first packet, 0 if none
  uint32_t first_seq;     ///< flow sequence of its first packet
  uint32_t packets;
  uint16_t profile;  ///< profile index
  CloseReason reason;
  uint8_t rx_index;

  // Worker side.
  alignas(RTE_CACHE_LINE_SIZE) bool worker_open;  ///< the chain's open() has run
  uint16_t result_len;
  /// The worker's subcontract slot + 1 while a peer processes part of the chain; 0 for none.
  uint32_t subcontract;
  char result[segment_result_bytes];  ///< `"service": {...}` members, comma separated
  alignas(16) uint8_t state[segment_state_bytes];
};

/// Ring entries are mbufs or close events; descriptors are cache-line aligned, so the low
/// bit tells them apart.
inline void* close_event(Segment* s) {
  return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(s) | 1u);
}
inline bool is_close_event(const void* entry) {
  return reinterpret_cast<uintptr_t>(entry) & 1u;
}
inline Segment* event_segment(void* entry) {
  return reinterpret_cast<Segment*>(reinterpret_cast<uintptr_t>(entry) & ~uintptr_t(1));
}

}  // namespace segx::dataplane
