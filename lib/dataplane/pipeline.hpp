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
#include "dataplane/geneve.hpp"
#include "dataplane/metering.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/segment.hpp"
#include "dataplane/service.hpp"
#include "dataplane/stage_cycles.hpp"

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
constexpr uint8_t meta_drop = 1;  ///< a service dropped it: the tx lcore frees it in order
/// Not part of the second stream (a tunnel message to a peer): unnumbered, so the tx lcore
/// sends it at once, past the reorder buffer.
constexpr uint8_t meta_bypass = 2;
/// A tunnel message from a peer, rx to worker, unnumbered: flow_seq holds the offset of its
/// GENEVE header in the frame and mirror_port the peer's index.
constexpr uint8_t meta_tunnel = 4;
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

/// A peer provider as the data plane sends to it (providers.peers[]).
struct PeerRuntime {
  std::string id;
  uint8_t port = 0;           ///< configured index of the link port
  geneve::Endpoints request;  ///< outer addresses of requests to it (from us to it)
  uint64_t timeout_tsc = 0;
  bool fallback_drop = false;
  uint32_t max_inner = 0;  ///< largest inner frame the link's MTU and one mbuf carry
};

/// An rx queue an rx lcore polls.
struct RxQueue {
  uint16_t port_id;
  uint16_t queue;
  uint8_t port_index;
  bool gtpu;
  bool link;  ///< leads to a peer: GENEVE to providers.address is taken as a tunnel message
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

/// Delivery figures of one peer on one lcore: what was subcontracted to it (worker), what
/// it subcontracted here (worker, "served"), and tunnel messages from it.
struct PeerCounters {
  Counter segments_sent;       ///< subcontracted segments whose end message went out
  Counter segments_returned;   ///< results received in time
  Counter segments_timed_out;  ///< the peer did not answer within its timeout
  Counter segments_refused;    ///< the peer refused the service (or the hold table was full)
  Counter packets_sent;
  Counter packets_returned;  ///< returned in time (processed, or dropped by the peer)
  Counter packets_fallback;  ///< released by the fallback: timeout, refusal, no room, too big
  Counter replies_late;      ///< replies for a subcontract that had timed out or ended
  Counter replies_bad;       ///< replies that do not fit what was sent (wrong length, bad result)
  Counter served_segments;   ///< its segments this provider processed and answered
  Counter served_packets;
  Counter served_refused;  ///< its messages answered unprocessed (service not served, full)
  std::array<Counter, latency_bounds.size() + 1> round_trip;  ///< packets by round trip
  Counter round_trip_tsc;                                     ///< sum of round trips, TSC
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
  std::vector<PeerCounters> peers;                                         ///< by peer index
  std::array<Counter, static_cast<size_t>(geneve::Error::count_)> tunnel;  ///< refused, by reason
#ifdef SEGX_STAGE_CYCLES
  StageClock stage_clock;  ///< cycles per stage (stage_cycles.hpp); absent from normal builds
#endif
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
  std::vector<uint64_t> window;      ///< by tx index: numbers it may hand out beyond released
  std::vector<unsigned> ring_index;  ///< report index of each to_worker ring
  std::vector<uint32_t> next_seqn;   ///< by tx index, starting at 1
  uint64_t segment_counter = 0;
  uint64_t segment_id_base = 0;  ///< rx index in the top bits
  std::vector<void*> staging;    ///< workers x (entries_per_packet x burst)
  std::vector<uint32_t> staged;  ///< entries staged per worker
};

/// A packet a worker holds while a peer processes its copy; the held list of a
/// subcontract links them in flow order.
struct Held {
  rte_mbuf* m = nullptr;
  uint64_t sent_tsc = 0;
  uint32_t sub = 0;         ///< subcontract slot
  uint32_t generation = 0;  ///< of that slot when this packet was sent
  uint32_t next = 0;        ///< next held slot of the subcontract, or none
  bool ready = false;       ///< returned (or decided by the fallback): releasable in turn
};

/// How a subcontract ended.
enum class Outcome : uint8_t {
  pending,   ///< the peer's result is awaited
  returned,  ///< the result arrived in time
  timeout,   ///< the peer did not answer in time: the fallback applied
  refused,   ///< the peer does not serve the service (or was full): the fallback applied
  not_sent,  ///< the end message could not be sent (no mbuf)
  bad,       ///< the result could not be read
  empty,     ///< no packet was left to send (all dropped before the peer's part)
};

/// One segment (or the part of it after a chain's local services) subcontracted to a peer.
struct Subcontract {
  Segment* segment = nullptr;  ///< null: the slot is free
  uint32_t generation = 0;
  uint32_t head = 0, tail = 0;  ///< held list, flow order; `none` when empty
  uint32_t sent = 0;            ///< packets sent (the next packet's index)
  uint32_t active_pos = 0;      ///< position in SubcontractRole::active
  uint64_t end_tsc = 0;         ///< when the end message went out
  uint16_t peer = 0;
  bool closed = false;    ///< the segment's close event came
  bool end_sent = false;  ///< the end message went out
  Outcome outcome = Outcome::pending;
};

/// What identifies a segment a peer subcontracted here. Hashed as raw bytes.
struct ServedKey {
  uint64_t segment;  ///< the origin's segment id
  uint32_t service;  ///< geneve::service_id()
  uint16_t peer;     ///< peer index
  uint16_t zero;
};
static_assert(sizeof(ServedKey) == 16);

/// A segment a peer subcontracted to this provider, being served.
struct Served {
  Segment* segment = nullptr;  ///< from this provider's pool; null when free
  ServedKey key{};
  uint64_t last_tsc = 0;
  uint32_t serve = 0;  ///< index in providers.serve
  uint32_t active_pos = 0;
  int32_t position = -1;  ///< in the serve table
};

/// A worker's subcontracting state, all sized at start: packets held for peers, outstanding
/// subcontracts, and segments it serves for peers.
struct SubcontractRole {
  static constexpr uint32_t none = 0xffffffff;
  std::vector<Held> held;
  std::vector<uint32_t> held_free;  ///< stack of free held slots
  std::vector<Subcontract> subs;
  std::vector<uint32_t> subs_free;
  std::vector<uint32_t> active;  ///< outstanding subcontract slots, for the timeout scan
  size_t scan_next = 0;
  // Served side.
  rte_hash* served_table = nullptr;  ///< (peer, origin segment, service) -> position
  std::vector<Served> served;        ///< by table position
  std::vector<int32_t> served_active;
  size_t served_scan_next = 0;
  std::vector<std::unique_ptr<Service>> serve;  ///< providers.serve, this worker's instances
  std::vector<uint32_t> serve_ids;              ///< their geneve::service_id()
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
  /// By profile: the chain position of its subcontracted entry (-1: none), the peer that
  /// runs it, and the service's id and name.
  std::vector<int> sub_pos;
  std::vector<uint16_t> sub_peer;
  std::vector<uint32_t> sub_service;
  std::vector<std::string> sub_name;
  SubcontractRole sc;
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
  /// By rx index: packets drained from that reorder buffer so far. The rx lcore numbers a
  /// packet only while fewer than the window are numbered and not yet released, so no packet
  /// ever falls outside the buffer's window, however long a peer holds an earlier one.
  std::vector<Counter> released;
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
  std::vector<LcorePlan*> tx_lcores;
  std::vector<uint16_t> worker_tx;  ///< tx index of each worker
  uint64_t reorder_window = 0;      ///< packets a reorder buffer holds (its size)
  // Subcontracting.
  rte_mempool* pool = nullptr;  ///< mbufs for tunnel messages
  std::vector<PeerRuntime> peers;
  uint8_t family = 0;  ///< of providers.address; 0 without peers
  std::array<uint8_t, 16> address{};
  std::array<std::array<uint8_t, 6>, max_ports> port_macs{};
  uint64_t served_idle_tsc = 0;  ///< a served segment without messages this long is dropped
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

// ---- between pipeline.cpp and subcontract.cpp -------------------------------------------

/// Runs chain entries [from, to) of the segment's profile over consecutive packets of it and
/// applies their verdicts (verdict has n bytes; it is cleared first).
void run_services(LcorePlan& p, Segment& s, rte_mbuf** pkts, uint16_t n, uint8_t* verdict,
                  size_t from, size_t to);
/// Closes chain entries [from, to) into the segment's record.
void close_services(LcorePlan& p, Segment& s, size_t from, size_t to);
/// Hands a finished segment to the record writer (or back to the pool).
void record_segment(LcorePlan& p, Segment& s);

/// Worker: packets of a subcontracted segment after the chain's local entries before the
/// subcontracted one. Each is held and a copy sent to the peer (written to out), or, when
/// that cannot be, decided by the fallback. Returns the outputs written.
uint16_t subcontract_packets(LcorePlan& p, Segment& s, rte_mbuf** pkts, uint16_t n, uint64_t now,
                             rte_mbuf** out);
/// Worker: a subcontracted segment's close event. May write the end message to out (returns
/// how many outputs, 0 or 1).
uint16_t subcontract_close(LcorePlan& p, Segment& s, uint64_t now, rte_mbuf** out);
/// Worker: a tunnel message from a peer (a reply, or a request to serve). Writes at most
/// 1 + budget outputs; returns how many.
uint16_t tunnel_message(LcorePlan& p, rte_mbuf* m, uint64_t now, rte_mbuf** out, uint32_t budget);
/// Worker, every loop turn: times out subcontracts the peer left unanswered, releases held
/// packets in order as room allows, ends served segments idle too long. Returns outputs.
uint16_t subcontract_scan(LcorePlan& p, uint64_t now, rte_mbuf** out, uint32_t budget);
/// Worker: nothing held for a peer and no subcontract outstanding.
bool subcontracts_idle(const LcorePlan& p);
/// Worker, at stop: ends every served segment (its service state is released).
void served_flush(LcorePlan& p);
/// Creates the worker's subcontracting state (sizes from providers.hold).
Status subcontract_init(LcorePlan& p, const config::Config& config, rte_mempool* segments);
/// Frees what subcontract_init made.
void subcontract_free(LcorePlan& p);

}  // namespace segx::dataplane
