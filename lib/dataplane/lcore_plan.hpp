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
//
// One file per stage (rx.cpp, worker.cpp, tx.cpp, named like the stage_cycles stages), the
// loop and the stop protocol in lcore_loop.cpp, subcontracting in subcontract.cpp.

#include <rte_common.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_reorder.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

#include "dataplane/classifier.hpp"
#include "dataplane/counters.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/flow.hpp"
#include "dataplane/geneve.hpp"
#include "dataplane/lcore_array.hpp"
#include "dataplane/metering.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/segment.hpp"
#include "dataplane/service.hpp"
#include "dataplane/stage_cycles.hpp"
#include "dataplane/subcontract.hpp"

namespace segx::dataplane {

/// Most configured ports segx drives (DPDK's RTE_MAX_ETHPORTS in Debian's build).
constexpr unsigned max_ports = 32;
/// Most packets in one burst (pipeline.burst may be smaller).
constexpr unsigned max_burst = 256;
/// Ring entries one packet may need: a close event before it, itself, a close event after.
constexpr unsigned entries_per_packet = 3;
/// Most workers an rx lcore can feed (the rx step keeps a room count per worker).
constexpr size_t max_workers = 64;
/// rx lcores are identified in 8 bits in packet metadata and segment ids; the tx step keeps
/// one reorder buffer per rx lcore.
constexpr size_t max_rx_lcores = 64;
/// Most tx lcores (the rx step keeps a numbering limit per tx lcore).
constexpr size_t max_tx_lcores = 64;
/// Most keys one rte_hash bulk lookup takes; a burst is looked up in chunks of this.
constexpr unsigned lookup_bulk_max = RTE_HASH_LOOKUP_BULK_MAX;
// Bursts a worker or tx stage takes from one input per loop. An rx burst becomes more
// ring entries than packets (close events), so a stage taking one burst per loop would
// fall behind its producer on a shared lcore; a bound keeps the loop turning.
constexpr unsigned drain_bursts = 4;

/// The sequence numbers an rx lcore hands out for one tx lcore's reorder buffer. rte_reorder's
/// numbers are 32 bits and wrap after 2^32 packets; the count kept here does not, so the
/// guard against outrunning the buffer's window compares like with like for ever.
struct SeqnSpace {
  uint64_t next = 1;  ///< numbers handed out + 1 (0 started the buffer)
  /// Whether one more may be numbered while the tx lcore has released `released` of them
  /// and its buffer holds `window`.
  bool room(uint64_t released, uint64_t window) const { return next - 1 < released + window; }
  /// The next number (its low 32 bits, as rte_reorder takes them).
  uint32_t take() { return static_cast<uint32_t>(next++); }
};

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

/// A profile as the rx lcore applies it, in its slot. A slot holds one version of one
/// profile: a reload that changes a profile gives the new version a free slot and retires
/// the old one, which is reused only once no flow, segment or record refers to it, so a
/// slot index never means two things to a packet in flight.
struct ProfileRuntime {
  SegmentRules rules;  ///< in TSC cycles
  uint16_t output = 0;
  uint16_t meter_id = 0;  ///< the profile's name (Impl::profile_names): blocks follow a name
  bool metered = false;
  bool unmetered_drop = false;
  /// Set by the main lcore when a reload retired the slot (std::atomic_ref): the rx reload
  /// pass closes the open segments of its flows.
  uint8_t retired = 0;
};
/// Most profile slots: versions of profiles alive at once (each reload's changed profiles
/// take new slots until the old versions drain).
constexpr size_t max_profile_slots = 1024;

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
  uint16_t default_worker;  ///< worker for packets outside any flow (not IP, table full)
};

/// One flow in an rx lcore's table: one cache line, the only per-flow line a packet touches.
/// The open segment's progress lives here and goes into its descriptor when it closes, so
/// the descriptor (read by a worker, maybe on another core) is written at open and close
/// only, never per packet.
struct alignas(RTE_CACHE_LINE_SIZE) FlowState {
  Segment* segment = nullptr;  ///< open segment
  uint64_t last_tsc = 0;       ///< the flow's last packet (idle eviction)
  uint64_t seg_first_tsc = 0;  ///< the open segment's first packet
  uint64_t seg_last_tsc = 0;   ///< and last packet
  uint64_t seg_bytes = 0;
  uint32_t seg_packets = 0;
  uint32_t next_seq = 0;
  uint32_t active_index = 0;  ///< position in RxRole::active
  int32_t position = -1;      ///< in the flow table; -1: not a live flow
  uint32_t signature = 0;     ///< flow_signature() of its key
  uint16_t profile = 0;       ///< profile slot + 1, 0 for none
  uint8_t worker = 0;         ///< < max_workers
  /// The configuration generation it was classified in (gen_tag()); 0: looked at by a
  /// reload pass, classify again at the next packet.
  uint8_t gen = 0;
};
static_assert(sizeof(FlowState) == RTE_CACHE_LINE_SIZE);

/// A configuration generation as FlowState::gen holds it: 1..255, never 0. Generations are
/// applied one at a time and every flow is looked at between two of them, so a flow's tag
/// is either the current one or stale.
inline uint8_t gen_tag(uint64_t generation) {
  return static_cast<uint8_t>(1 + (generation - 1) % 255);
}

/// The flow table's hash of a key, computed once per packet and handed to rte_hash (which
/// never computes it itself: flow_table_hash is the same function for its interface).
/// CRC-32C over the key's six 8-byte words.
inline uint32_t flow_signature(const uint64_t (&w)[6]) {
  uint32_t h = 0;
  for (uint64_t x : w) {
#if defined(__SSE4_2__)
    h = static_cast<uint32_t>(_mm_crc32_u64(h, x));  // what rte_hash_crc_8byte does, unchecked
#else
    h = rte_hash_crc_8byte(x, h);
#endif
  }
  return h;
}
inline uint32_t flow_signature(const FlowKey& k) {
  uint64_t w[6];
  static_assert(sizeof w == sizeof(FlowKey));
  std::memcpy(w, &k, sizeof w);
  return flow_signature(w);
}
/// flow_signature() as rte_hash's hash function (key_len 48, init 0).
uint32_t flow_table_hash(const void* key, uint32_t key_len, uint32_t init);

/// Counters of one profile on one lcore.
struct ProfileCounters {
  Counter packets;
  Counter bytes;
  Counter opened;    ///< segments opened (rx)
  Counter finished;  ///< segments handed to the record writer or freed (worker)
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
#define SEGX_PEER_COUNTER(field, ...) Counter field;
  SEGX_PEER_COUNTERS(SEGX_PEER_COUNTER)
#undef SEGX_PEER_COUNTER
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
  LcoreArray<ProfileCounters> profiles;  ///< by profile index
  LcoreArray<Counter> ring_enqueued;     ///< by ring index, for rings this lcore feeds
  LcoreArray<Counter> ring_dropped;      ///< by ring index: packets refused for want of room
  LcoreArray<LcoreArray<ServiceCounters>> services;        ///< by profile, then chain position
  std::array<Counter, latency_bounds.size() + 1> latency;  ///< packets per latency bucket
  Counter latency_tsc;                                     ///< sum of latencies, TSC cycles
  std::array<Counter, max_ports> tx_packets;
  std::array<Counter, max_ports> tx_dropped;
  LcoreArray<PeerCounters> peers;                                          ///< by peer index
  std::array<Counter, static_cast<size_t>(geneve::Error::count_)> tunnel;  ///< refused, by reason
#ifdef SEGX_STAGE_CYCLES
  StageClock stage_clock;  ///< cycles per stage (stage_cycles.hpp); absent from normal builds
#endif
};

struct Shared;
struct WorkerBurst;

/// The rx role: parse, flow table, classification, metering, segmentation.
struct RxRole {
  unsigned index = 0;  ///< rx index: sequence space, RCU thread id
  std::vector<RxQueue> queues;
  rte_hash* flows = nullptr;
  LcoreArray<FlowState> flow_state;  ///< by hash position
  LcoreArray<int32_t> active;        ///< positions of live flows, for the scan
  size_t scan_next = 0;
  uint64_t scan_due = 0;  ///< TSC of the scan's next step
  /// Workers its flows go to (by flow hash): its own alone with local affinity.
  std::vector<uint16_t> targets;
  /// Workers it stages for: those with a ring from it (or its own, run to completion).
  std::vector<uint16_t> fed;
  std::vector<rte_ring*> to_worker;  ///< by worker index; null where no ring is needed
  std::vector<unsigned> ring_index;  ///< report index of each to_worker ring
  LcoreArray<SeqnSpace> next_seqn;   ///< by tx index
  uint64_t segment_counter = 0;
  uint64_t segment_id_base = 0;  ///< rx index in the top bits
  LcoreArray<void*> staging;     ///< workers x (entries_per_packet x burst)
  LcoreArray<uint32_t> staged;   ///< entries staged per worker
  // Reloads: the generation this lcore classifies in, and its pass over the flow table.
  uint64_t generation = 1;
  uint8_t gen_tag = 1;
  const Classifier* classifier = nullptr;  ///< of `generation`
  bool pass_active = false;
  size_t pass_next = 0;  ///< flow table position the pass looks at next
  /// The generation whose pass this lcore finished: no flow still carries an older tag, no
  /// segment of a slot retired by then is open, and it no longer reads older classifiers.
  std::atomic<uint64_t> pass_done{1};
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
  LcoreArray<uint64_t> in_flight;            ///< inserted and not yet drained, by rx index
  std::vector<uint16_t> port_ids;            ///< configured port index -> DPDK port id
  LcoreArray<rte_mbuf*> buckets;  ///< ports x 2 burst: a chunk's packets and mirror copies
  LcoreArray<uint16_t> bucket_counts;
  /// By rx index: packets drained from that reorder buffer so far. The rx lcore numbers a
  /// packet only while fewer than the window are numbered and not yet released, so no packet
  /// ever falls outside the buffer's window, however long a peer holds an earlier one.
  LcoreArray<Counter> released;
};

/// Everything one lcore needs.
struct alignas(RTE_CACHE_LINE_SIZE) LcorePlan {
  unsigned lcore = 0;
  uint8_t roles = 0;
  /// Run to completion: this lcore holds rx, worker and tx, its flows stay on it, nothing
  /// else feeds its worker or its tx role and no peer is configured. A burst goes from parse
  /// to tx in one pass: no rings, no sequence numbers, no reorder buffer (arrival order is
  /// the order by construction).
  bool rtc = false;
  WorkerBurst* worker_scratch = nullptr;  ///< the loop's worker scratch (run to completion)
  const Shared* shared = nullptr;
  RxRole rx;
  WorkerRole worker;
  TxRole tx;
  // stop protocol: each role says when it has drained
  std::atomic<bool> rx_done{false};
  std::atomic<bool> worker_done{false};
  std::atomic<bool> tx_done{false};
  // Quiet links (links.cpp): ports this lcore neither polls nor sends on, by bit, as of
  // Shared::quiet_epoch == quiet_epoch. quiet_seen tells the main lcore it applied an epoch.
  uint32_t quiet_ports = 0;
  uint32_t quiet_epoch = 0;
  std::atomic<uint32_t> quiet_seen{0};
  /// Ports (by bit) on which the rx role received a peer's goodbye; the main lcore takes them.
  std::atomic<uint32_t> goodbye_ports{0};
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
  /// The current generation's classifier and number, published together by a reload
  /// (classifier first, then the generation with release); rx lcores take both at the top
  /// of a loop turn.
  std::atomic<const Classifier*> classifier{nullptr};
  std::atomic<uint64_t> generation{1};
  Metering* metering = nullptr;          ///< null when no profile is metered
  std::vector<ProfileRuntime> profiles;  ///< by slot (max_profile_slots, never resized)
  rte_mempool* segments = nullptr;
  rte_ring* results = nullptr;  ///< closed segments for the record writer, or null
  uint64_t flow_idle_tsc = 0;
  bool mirroring = false;  ///< some service of some chain mirrors packets to a port
  /// The rx scan looks at every flow once per this many TSC cycles: a quarter of the
  /// shortest segment time or idle limit of any profile, or of the flow idle timeout.
  std::atomic<uint64_t> scan_period_tsc{1};
  /// By input port: where the default action sends unmatched packets (a port index), or -1
  /// to drop them. Set at build and by reloads; rx lcores read it once per burst.
  std::array<std::atomic<int32_t>, max_ports> default_output{};
  std::array<uint64_t, latency_bounds.size()> latency_bounds_tsc{};  ///< latency_bounds in TSC
  /// Peer links no lcore may touch (a shared-memory peer is about to disconnect): set and
  /// cleared by the main lcore, which bumps quiet_epoch after each change (links.cpp).
  std::array<std::atomic<bool>, max_ports> link_quiet{};
  std::atomic<uint32_t> quiet_epoch{0};
};

/// The bucket of the latency histograms (latency_bounds, in TSC cycles) a time falls in:
/// the first bound not below it, or bounds.size() above them all.
inline size_t latency_bucket(const Shared& sh, uint64_t cycles) {
  const auto& bounds = sh.latency_bounds_tsc;
  size_t lo = 0, hi = bounds.size();
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (bounds[mid] < cycles) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

/// The quiet ports as of the latest epoch: an lcore calls it at the top of each loop turn,
/// before it polls or sends, and from then on leaves those ports alone.
inline void apply_quiet_links(LcorePlan& p) {
  const Shared& sh = *p.shared;
  const uint32_t e = sh.quiet_epoch.load(std::memory_order_acquire);
  if (e == p.quiet_epoch) [[likely]]
    return;
  uint32_t bits = 0;
  for (unsigned port = 0; port < max_ports; ++port)
    bits |= sh.link_quiet[port].load(std::memory_order_relaxed) ? 1u << port : 0u;
  p.quiet_ports = bits;
  p.quiet_epoch = e;
  p.quiet_seen.store(e, std::memory_order_release);
}

/// rx, at the top of a loop turn: takes a newly published generation (and starts the reload
/// pass over the flow table), or moves the pass on. Returns whether it did any work.
bool rx_reload_step(LcorePlan& p);

/// The loop of one data-plane lcore; arg is its LcorePlan. Returns when every role it holds
/// has drained after Shared::stop_rx is set.
int lcore_main(void* arg);

// ---- per-burst scratch: lives on the lcore's stack ---------------------------------------

// Per-burst scratch of the rx step; lives on the lcore's stack.
struct RxBurst {
  PacketInfo info[max_burst];
  FlowKey keys[max_burst];
  const void* key_ptrs[max_burst];
  hash_sig_t sigs[max_burst];         // flow_signature() of each key
  void* flows[max_burst];             // the FlowState of each key (null: table full)
  uint16_t ip_index[max_burst];       // burst position of each looked-up key
  uint16_t tunnel_worker[max_burst];  // worker of each tunnel message
  uint8_t tunnel_peer[max_burst];     // and the peer it came from
  uint8_t linear[parse_window];       // one header window for a frame whose headers span segments
};

/// Most outputs of one worker pass: a burst of entries, plus what replies release.
constexpr unsigned max_worker_out = 2 * max_burst;

struct WorkerBurst {
  void* entries[max_burst];
  rte_mbuf* out[max_worker_out];
  uint8_t verdict[max_worker_out];
};

// ---- between the stages' files -----------------------------------------------------------

/// rx: one burst from each rx queue through parse, flows, segments to the workers' rings,
/// then a scan of a few flows. Returns packets received.
unsigned rx_step(LcorePlan& p, RxBurst& b);
/// rx, after stop, until every worker is done: replies from peers only.
unsigned rx_tunnel_step(LcorePlan& p, RxBurst& b);
/// rx, after stop: closes every open segment (reason shutdown) as ring room allows. True
/// once none is left.
bool rx_flush_segments(LcorePlan& p);
/// worker: a few bursts from each input ring through the chains to the tx ring. Returns
/// entries taken (and outputs released by the subcontract scan).
unsigned worker_step(LcorePlan& p, WorkerBurst& b);
/// tx: bursts from the workers' rings into the reorder buffers, and out in order. Returns
/// entries taken.
unsigned tx_step(LcorePlan& p);
/// worker: runs the chains over ring entries (packets and close events, in order) and writes
/// the outputs to b.out; `spare` is room for outputs beyond one per entry (replies). Returns
/// the outputs.
uint16_t worker_process(LcorePlan& p, void* const* entries, unsigned n, WorkerBurst& b,
                        uint64_t now, uint32_t spare);
/// tx: sends packets (in this order) per output port; services' drops are freed here.
void tx_send(LcorePlan& p, rte_mbuf** pkts, unsigned n);
/// Run to completion: what the rx role staged for its own worker goes through the chain and
/// out at once.
void rtc_deliver(LcorePlan& p, void* const* entries, unsigned n);

/// Runs chain entries [from, to) of the segment's profile over consecutive packets of it and
/// applies their verdicts (verdict has n bytes; it is cleared first).
void run_services(LcorePlan& p, Segment& s, rte_mbuf** pkts, uint16_t n, uint8_t* verdict,
                  size_t from, size_t to);
/// Closes chain entries [from, to) into the segment's record.
void close_services(LcorePlan& p, Segment& s, size_t from, size_t to);
/// Hands a finished segment to the record writer (or back to the pool).
void record_segment(LcorePlan& p, Segment& s);

}  // namespace segx::dataplane
