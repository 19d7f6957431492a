#pragma once
// The data plane seen from the rest of segx: start EAL from a configuration, bring up
// ports, rings, flow tables and lcores, change metering blocks while running, write segment
// records, stop and drain, and report. No DPDK type appears here, so the control plane and
// the app build against a small interface.

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "config/config.hpp"

namespace segx::dataplane {

/// Packets and bytes by meter colour: [0] green, [1] yellow, [2] red (dropped).
struct ColourTotals {
  std::array<uint64_t, 3> packets{};
  std::array<uint64_t, 3> bytes{};
};

/// A block's usage: in total and per member (by label, "ip 10.1.0.5/32").
struct BlockUsage {
  std::string id;
  uint64_t serial = 0;
  int64_t start_ns = 0;   ///< when it became active (wall clock, ns since the Unix epoch)
  int64_t end_ns = 0;     ///< when it stopped being active; 0 while active
  uint64_t min_rate = 0;  ///< bits per second, 0 for none
  uint64_t max_rate = 0;
  ColourTotals total;
  /// Packets the meter passed (green or yellow) that were dropped afterwards on the rx lcore
  /// (a full ring or reorder window): what the block offered but did not deliver.
  uint64_t dropped_packets = 0, dropped_bytes = 0;
  std::vector<std::pair<std::string, ColourTotals>> members;
};

/// Counters of one port at the end of a run.
struct PortReport {
  std::string name;    ///< the configured port name
  std::string device;  ///< the DPDK device name
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t rx_missed = 0;  ///< dropped by the device: no free descriptor
  uint64_t rx_errors = 0;
  uint64_t rx_nombuf = 0;  ///< receive failed for want of an mbuf
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_errors = 0;
  uint64_t tx_dropped = 0;  ///< handed to the device, not taken, freed by segx
};

/// Counters of one ring at the end of a run.
struct RingReport {
  std::string name;       ///< "rx1>w1" (rx lcore 1 to worker lcore 1) or "w1>tx1"
  uint32_t capacity = 0;  ///< entries
  uint64_t enqueued = 0;  ///< packets and segment close events
};

/// Counters of one profile.
struct ProfileReport {
  std::string name;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t segments = 0;                      ///< closed
  std::map<std::string, uint64_t> closed_by;  ///< close reason -> segments
};

/// Packets by time from the rx burst that received them to the tx burst that sent them.
struct LatencyStats {
  std::vector<double> bounds;    ///< upper bounds, seconds, ascending
  std::vector<uint64_t> counts;  ///< per bucket (bounds.size() + 1, the last above every bound)
  double sum = 0;                ///< seconds
};

/// The delivery figures of a peer provider, declared once (like VPP's foreach_*_error): the
/// per-lcore counters, PeerStats, their sum, the exit report, its JSON and the metrics are
/// all made from this list. X(field, group, key, metric, label, value):
/// the JSON report has it at peers[].group.key, the text report as "group key N", and the
/// metrics as the series metric{peer="id",label="value"} (no label when label is empty).
#define SEGX_PEER_COUNTERS(X)                                                                      \
  /* subcontracted segments handed over in full (end sent) */                                      \
  X(segments_sent, "segments", "sent", "segx_peer_segments_total", "outcome", "sent")              \
  /* their results arrived in time */                                                              \
  X(segments_returned, "segments", "returned", "segx_peer_segments_total", "outcome", "returned")  \
  /* no answer within peers[].timeout: fallback applied */                                         \
  X(segments_timed_out, "segments", "timed_out", "segx_peer_segments_total", "outcome",            \
    "timed_out")                                                                                   \
  /* the peer refused, or the segment could not be sent (hold table full) */                       \
  X(segments_refused, "segments", "refused", "segx_peer_segments_total", "outcome", "refused")     \
  X(packets_sent, "packets", "sent", "segx_peer_packets_total", "outcome", "sent")                 \
  /* returned in time (processed, or dropped by the peer) */                                       \
  X(packets_returned, "packets", "returned", "segx_peer_packets_total", "outcome", "returned")     \
  /* decided by the fallback (pass or drop): timeout, refusal, no room, too big */                 \
  X(packets_fallback, "packets", "fallback", "segx_peer_packets_total", "outcome", "fallback")     \
  /* arrived after their subcontract timed out or ended */                                         \
  X(replies_late, "replies", "late", "segx_peer_replies_total", "kind", "late")                    \
  /* did not match what was sent, or unreadable */                                                 \
  X(replies_bad, "replies", "bad", "segx_peer_replies_total", "kind", "bad")                       \
  /* its packets this provider processed and answered */                                           \
  X(served_packets, "served", "packets", "segx_peer_served_packets_total", "outcome", "processed") \
  /* its messages answered unprocessed (service not served, table full) */                         \
  X(served_refused, "served", "refused", "segx_peer_served_packets_total", "outcome", "refused")   \
  /* its segments this provider processed and answered */                                          \
  X(served_segments, "served", "segments", "segx_peer_served_segments_total", "", "")

/// Delivery figures of one peer provider: what this provider subcontracted to it (the
/// evidence behind a rating of that peer), and what it served for that peer. The counters
/// are those of SEGX_PEER_COUNTERS.
struct PeerStats {
  std::string id;
#define SEGX_PEER_FIELD(field, ...) uint64_t field = 0;
  SEGX_PEER_COUNTERS(SEGX_PEER_FIELD)
#undef SEGX_PEER_FIELD
  LatencyStats round_trip;  ///< packets by time from request sent to reply received
};

/// TSC cycles the data-plane lcores spent in one pipeline stage, summed over lcores.
struct StageCyclesReport {
  std::string stage;  ///< "parse", "classify", ... (stage_cycles.hpp)
  uint64_t cycles = 0;
};

/// What one rx lcore received (rx queues spread over rx lcores: RSS's work shows here).
struct LcoreReport {
  unsigned lcore = 0;
  uint64_t received = 0;  ///< packets taken from its rx queues
};

/// Everything a run produced, gathered after the lcores stopped and the ports closed.
struct Report {
  std::vector<PortReport> ports;
  std::vector<RingReport> rings;
  std::vector<ProfileReport> profiles;
  std::map<std::string, uint64_t> drops;   ///< reason -> packets (malformed and others)
  std::map<std::string, uint64_t> events;  ///< flows_created, flow_table_full, ...
  /// Blocks active during the run, but for those ended more than
  /// pipeline.metering.keep_ended before its end (counted in blocks_expired).
  std::vector<BlockUsage> blocks;
  uint64_t blocks_expired = 0;          ///< ended blocks forgotten after keep_ended
  uint64_t received = 0;                ///< packets taken from rx queues by segx
  uint64_t transmitted = 0;             ///< packets the devices accepted for transmission
  uint64_t records = 0;                 ///< segment records written
  uint64_t records_socket_sent = 0;     ///< of which the results.socket collector got in full
  uint64_t records_socket_dropped = 0;  ///< and lost there (collector slow, absent or gone)
  uint64_t reorder_stranded = 0;  ///< packets left in reorder buffers at exit (a bug if not 0)
  uint32_t mempool_size = 0;
  uint32_t mempool_in_use =
      0;  ///< mbufs not back in the pool after the ports closed; 0 if none leaked
  uint32_t segments_in_use = 0;  ///< segment descriptors not back in their pool; 0 if none leaked
  std::vector<PeerStats> peers;  ///< by providers.peers order
  uint64_t tunnel_leftover = 0;  ///< peers' messages still in rings at exit (freed; late replies)
  /// Cycles per stage, every stage of the lcores' loops; empty unless built with
  /// -Dstage_cycles=true (the benchmark's build).
  std::vector<StageCyclesReport> stage_cycles;
  uint64_t tsc_hz = 0;              ///< TSC cycles per second, to turn cycles into time
  std::vector<LcoreReport> lcores;  ///< by rx lcore, in configuration order
};

/// A port's counters while running: the device's statistics (rte_eth_stats), its extended
/// statistics by name (driver-specific), and what segx itself counted.
struct PortStats {
  PortReport counters;
  std::vector<std::pair<std::string, uint64_t>> xstats;
};

/// A ring's occupancy and traffic.
struct RingStats {
  std::string name;       ///< as in RingReport
  uint32_t capacity = 0;  ///< entries
  uint32_t entries = 0;   ///< entries in it when read
  uint64_t enqueued = 0;  ///< packets and segment close events
  uint64_t dropped = 0;   ///< packets refused because it had no room (drop reason ring_full)
};

/// What one service of one profile's chain did, summed over workers.
struct ServiceStats {
  std::string profile;
  std::string service;
  uint64_t calls = 0;     ///< process() calls (each takes a run of packets of one segment)
  uint64_t packets = 0;   ///< packets passed to process()
  uint64_t segments = 0;  ///< close() calls: segments finished
};

/// One rx lcore's flow table.
struct FlowTableStats {
  unsigned lcore = 0;
  uint64_t capacity = 0;  ///< flows it can hold
  uint64_t active = 0;    ///< flows in it (created - evicted)
  uint64_t created = 0;
  uint64_t evicted = 0;
};

/// The data plane's counters at one moment, read while it runs without stopping or slowing
/// an lcore (per-lcore counters are loaded relaxed and summed). Every drop reason and event
/// appears, zero or not, so that rates can be computed from the first scrape on.
struct Stats {
  bool running = false;  ///< false once stop() has finished: the numbers are final
  std::vector<PortStats> ports;
  std::vector<RingStats> rings;
  std::vector<ProfileReport> profiles;
  std::vector<ServiceStats> services;
  std::vector<FlowTableStats> flows;
  std::map<std::string, uint64_t> drops;
  std::map<std::string, uint64_t> events;
  /// Active blocks and those that ended within pipeline.metering.keep_ended.
  std::vector<BlockUsage> blocks;
  uint64_t blocks_expired = 0;   ///< ended blocks forgotten since (after keep_ended)
  std::vector<PeerStats> peers;  ///< by providers.peers order
  LatencyStats latency;
  uint64_t received = 0;
  uint64_t transmitted = 0;
  uint32_t mempool_size = 0;
  uint32_t mempool_in_use = 0;
  uint32_t segment_pool_size = 0;
  uint32_t segments_in_use = 0;
};

/// What Dataplane::reload() changed, for the log line and the reload's answer.
struct ReloadChanges {
  uint64_t generation = 0;  ///< the data plane's configuration generation after it (1 at start)
  std::vector<std::string> profiles_added;    ///< by name
  std::vector<std::string> profiles_changed;  ///< anything in it, or its place in the list
  std::vector<std::string> profiles_removed;
  bool default_action = false;  ///< pipeline.default_output or a port's by_input changed
  std::vector<std::string> blocks_added, blocks_changed, blocks_removed;  ///< by id
  bool subscribers = false;  ///< the subscribers' devices, phones, users or grants changed
  /// Nothing the data plane runs changed (the new generation is the old one's number).
  bool empty() const {
    return profiles_added.empty() && profiles_changed.empty() && profiles_removed.empty() &&
           !default_action && blocks_added.empty() && blocks_changed.empty() &&
           blocks_removed.empty() && !subscribers;
  }
};

/// Starts DPDK's EAL with the arguments the configuration stands for. Once per process.
Status init_eal(const config::Config& config, const std::string& argv0);
/// Releases EAL resources at exit.
void cleanup_eal();

/// The running pipeline. Create after init_eal(); destroy before cleanup_eal().
class Dataplane {
 public:
  /// Creates pools, rings, flow tables, the classifier, metering tables, service chains and
  /// lcore plans, and configures every port (not yet started). Errors name what failed.
  static Result<std::unique_ptr<Dataplane>> create(const config::Config& config);
  ~Dataplane();
  Dataplane(const Dataplane&) = delete;
  Dataplane& operator=(const Dataplane&) = delete;

  /// Starts the ports, waits up to each port's link_wait for its link to come up, and
  /// launches every data-plane lcore. A link still down is not an error: packets sent to
  /// it are dropped and counted until it comes up. `link_status` gets one line per port.
  Status start(std::vector<std::string>& link_status);
  /// Packets received so far, summed over rx lcores; safe to call while running.
  uint64_t received() const;
  /// The counters now, for any thread (a metrics scrape, a telemetry command). The main
  /// lcore gathers them at its next poll() (every few milliseconds), so nothing but the main
  /// lcore touches ports and pools; waits at most `wait` for that, then returns the latest
  /// gathered (empty before the first poll). After stop(), the final counters at once.
  std::shared_ptr<const Stats> stats(std::chrono::milliseconds wait) const;
  /// Control-plane work, called from the main lcore's loop: answers stats() requests, writes
  /// pending segment records and starts or ends configured blocks when their time comes.
  /// `elapsed_ns` counts from start(); `now_ns` is the wall clock (ns since the Unix epoch).
  /// Returns lines to log.
  std::vector<std::string> poll(int64_t elapsed_ns, int64_t now_ns);
  /// Activates a block now (members resolved through the configuration's subscribers).
  Status activate_block(const config::BlockConfig& block);
  /// Deactivates a block now; returns its final usage.
  Result<BlockUsage> deactivate_block(const std::string& id);
  /// Usage of an active block so far (counters are summed over rx lcores as they run).
  Result<BlockUsage> block_usage(const std::string& id) const;
  /// Usage so far of every active block (control plane thread, like activate_block).
  std::vector<BlockUsage> active_blocks() const;
  /// Main lcore, while running: takes `next`'s profiles, default action, subscribers and
  /// blocks without stopping an lcore. The caller has checked that `next` differs from the
  /// running configuration only in what may change live (config::reload_diff). New
  /// classifier contexts, profile table and service instances are built here, off the
  /// packet path, and published; a flow whose profile changed is reclassified at its next
  /// packet and its open segment closes with reason `reload`. Fails, with nothing changed,
  /// when the data plane cannot take it (a service that cannot be created, no free profile
  /// slot, the previous reload not yet applied by every lcore); the error says which.
  Result<ReloadChanges> reload(const config::Config& next);
  /// The configuration generation: 1 at start, +1 for each reload that changed something.
  uint64_t generation() const;
  /// Stops receiving, closes every open segment, lets workers and tx lcores drain, waits for
  /// every lcore, writes the last records, stops and closes the ports, and reports.
  /// Idempotent; the second call returns the same report.
  Report stop();
  /// One line per lcore: its id, roles and queues, for the start-up banner.
  std::vector<std::string> describe_lcores() const;

  struct Impl;
  /// The state behind this object (dataplane_impl.hpp), for the data plane's own tests.
  Impl& internals() { return *impl_; }

 private:
  explicit Dataplane(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace segx::dataplane
