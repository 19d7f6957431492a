#pragma once
// Internal: what each data-plane lcore needs, built before launch and never resized while
// running, and the loop that runs its roles. One lcore may hold the rx, worker and tx roles
// at once; they share one loop (busy-polling lcores must not outnumber CPUs).
//
// Rings are single-producer single-consumer: one per (rx lcore, worker) and one per
// worker towards its tx lcore, so a producer knows exactly how much room it has. That is
// what keeps sequence numbers free of gaps: every drop happens before a packet gets its
// sequence number, and the reorder buffers at the tx lcores never wait for a packet that
// will not come.

#include <rte_common.h>
#include <rte_hash.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_reorder.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/classifier.hpp"
#include "dataplane/counters.hpp"
#include "dataplane/flow.hpp"
#include "dataplane/metering.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/segment.hpp"
#include "dataplane/service.hpp"

namespace segx::dataplane {

/// Most configured ports segx drives (DPDK's RTE_MAX_ETHPORTS in Debian's build).
constexpr unsigned max_ports = 32;
/// Most packets in one burst (pipeline.burst may be smaller).
constexpr unsigned max_burst = 256;
/// Ring entries one packet may need: a close event before it, itself, a close event after.
constexpr unsigned entries_per_packet = 3;

/// Per-packet metadata carried in an mbuf dynamic field from the rx lcore to the tx lcore.
struct PacketMeta {
  Segment* segment;     ///< its open segment, or null when unsegmented
  uint64_t rx_tsc;      ///< TSC of the rx burst that received it (latency at tx)
  uint32_t flow_seq;    ///< position in its flow
  uint8_t out_port;     ///< configured port index (max_ports fits in 8 bits)
  uint8_t mirror_port;  ///< configured port index a service copies it to, or no_mirror
  uint8_t rx_index;     ///< which rx lcore's sequence (and reorder buffer) it belongs to
  uint8_t flags;        ///< meta_drop
};
static_assert(sizeof(PacketMeta) == 24);
constexpr uint8_t meta_drop = 1;     ///< a service dropped it: the tx lcore frees it in order
constexpr uint8_t no_mirror = 0xff;  ///< PacketMeta::mirror_port when no copy is wanted

/// Offset of the PacketMeta dynamic field; set once by register_packet_meta().
extern int packet_meta_offset;
/// Registers the dynamic field (idempotent). False when the mbuf has no room left.
bool register_packet_meta();
inline PacketMeta* packet_meta(rte_mbuf* m) {
  return RTE_MBUF_DYNFIELD(m, packet_meta_offset, PacketMeta*);
}

/// Upper bounds of the latency histogram (rx burst to tx burst), seconds. From 1 us, where a
/// packet that waits for no one lands, to 1 s, beyond every segment time limit we expect.
constexpr std::array<double, 19> latency_bounds = {1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4,
                                                   2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2,
                                                   5e-2, 1e-1, 2e-1, 5e-1, 1.0};

/// A profile as the rx lcore applies it.
struct ProfileRuntime {
  SegmentRules rules;  ///< in TSC cycles
  uint16_t output = 0;
  bool metered = false;
  bool unmetered_drop = false;
};

/// An rx queue an rx lcore polls.
struct RxQueue {
  uint16_t port_id;
  uint16_t queue;
  uint8_t port_index;
  bool gtpu;
  int32_t default_output;   ///< port index for unmatched packets, or -1 to drop them
  uint16_t default_worker;  ///< worker for packets outside any flow (not IP, table full)
};

/// One flow in an rx lcore's table.
struct FlowState {
  Segment* segment = nullptr;  ///< open segment
  uint64_t last_tsc = 0;
  uint32_t next_seq = 0;
  uint32_t active_index = 0;  ///< position in RxRole::active
  uint16_t profile = 0;       ///< profile index + 1, 0 for none
  uint16_t worker = 0;
  bool valid = false;
};

/// Counters of one profile on one lcore.
struct ProfileCounters {
  Counter packets;
  Counter bytes;
  std::array<Counter, static_cast<size_t>(CloseReason::count_)> segments;  ///< closed, by reason
};

/// Counters of one service of a chain on one worker lcore.
struct ServiceCounters {
  Counter calls;     ///< process() calls
  Counter packets;   ///< packets passed to process()
  Counter segments;  ///< close() calls
};

/// Counters of one lcore, on cache lines of their own.
struct alignas(RTE_CACHE_LINE_SIZE) LcoreCounters {
  Counter rx_packets;
  Counter rx_bytes;
  std::array<Counter, static_cast<size_t>(ParseError::count_)> parse;
  std::array<Counter, static_cast<size_t>(Drop::count_)> drops;
  std::array<Counter, static_cast<size_t>(Event::count_)> events;
  std::vector<ProfileCounters> profiles;  ///< by profile index
  std::vector<Counter> ring_enqueued;     ///< by ring index, for rings this lcore feeds
  std::vector<Counter> ring_dropped;      ///< by ring index: packets refused for want of room
  std::vector<std::vector<ServiceCounters>> services;      ///< by profile, then chain position
  std::array<Counter, latency_bounds.size() + 1> latency;  ///< packets per latency bucket
  Counter latency_tsc;                                     ///< sum of latencies, TSC cycles
  std::array<Counter, max_ports> tx_packets;
  std::array<Counter, max_ports> tx_dropped;
};

struct Shared;

/// The rx role: parse, flow table, classification, metering, segmentation.
struct RxRole {
  unsigned index = 0;  ///< rx index: sequence space, RCU thread id
  std::vector<RxQueue> queues;
  rte_hash* flows = nullptr;
  std::vector<FlowState> flow_state;  ///< by hash position
  std::vector<int32_t> active;        ///< positions of live flows, for the scan
  size_t scan_next = 0;
  std::vector<rte_ring*> to_worker;  ///< by worker index
  std::vector<unsigned> ring_index;  ///< report index of each to_worker ring
  std::vector<uint32_t> next_seqn;   ///< by tx index, starting at 1
  uint64_t segment_counter = 0;
  uint64_t segment_id_base = 0;  ///< rx index in the top bits
  std::vector<void*> staging;    ///< workers x (entries_per_packet x burst)
  std::vector<uint32_t> staged;  ///< entries staged per worker
};

/// The worker role: run service chains over segments.
struct WorkerRole {
  unsigned index = 0;
  std::vector<rte_ring*> from_rx;  ///< by rx index
  unsigned next_input = 0;
  rte_ring* to_tx = nullptr;
  unsigned to_tx_index = 0;  ///< report index of to_tx
  /// By profile: the chain and each service's offset in Segment::state.
  std::vector<std::vector<std::unique_ptr<Service>>> chains;
  std::vector<std::vector<uint32_t>> offsets;
};

/// The tx role: restore order per rx lcore, send per output port.
struct TxRole {
  unsigned index = 0;  ///< also the tx queue used on every port
  std::vector<rte_ring*> from_workers;
  std::vector<rte_reorder_buffer*> reorder;  ///< by rx index
  std::vector<uint64_t> in_flight;           ///< inserted and not yet drained, by rx index
  std::vector<uint16_t> port_ids;            ///< configured port index -> DPDK port id
  std::vector<rte_mbuf*> buckets;  ///< ports x 2 burst: a chunk's packets and mirror copies
  std::vector<uint16_t> bucket_counts;
};

/// Everything one lcore needs.
struct alignas(RTE_CACHE_LINE_SIZE) LcorePlan {
  unsigned lcore = 0;
  uint8_t roles = 0;
  const Shared* shared = nullptr;
  RxRole rx;
  WorkerRole worker;
  TxRole tx;
  // stop protocol: each role says when it has drained
  std::atomic<bool> rx_done{false};
  std::atomic<bool> worker_done{false};
  std::atomic<bool> tx_done{false};
  LcoreCounters counters;
};

/// State every lcore reads.
struct Shared {
  std::atomic<bool> stop_rx{false};
  uint32_t burst = 32;
  std::vector<LcorePlan*> rx_lcores;
  std::vector<LcorePlan*> worker_lcores;
  std::vector<uint16_t> worker_tx;  ///< tx index of each worker
  const Classifier* classifier = nullptr;
  Metering* metering = nullptr;  ///< null when no profile is metered
  std::vector<ProfileRuntime> profiles;
  rte_mempool* segments = nullptr;
  rte_ring* results = nullptr;  ///< closed segments for the record writer, or null
  uint64_t flow_idle_tsc = 0;
  std::array<uint64_t, latency_bounds.size()> latency_bounds_tsc{};  ///< latency_bounds in TSC
};

/// The loop of one data-plane lcore; arg is its LcorePlan. Returns when every role it holds
/// has drained after Shared::stop_rx is set.
int lcore_main(void* arg);

}  // namespace segx::dataplane
