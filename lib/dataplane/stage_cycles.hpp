#pragma once
// Internal: TSC cycles spent per pipeline stage, for the benchmark (scripts/bench.sh). Built
// in only with `meson setup -Dstage_cycles=true`, which defines SEGX_STAGE_CYCLES; otherwise
// SEGX_STAGE() expands to nothing and LcoreCounters has no stage fields, so a normal build's
// per-packet path is exactly what it would be without this file.
//
// An lcore's loop is cut into consecutive laps: each SEGX_STAGE(p, stage) reads the TSC once
// and charges the cycles since the lcore's previous lap to `stage`. Laps are taken per burst
// (a handful per loop turn, whatever the burst size), never per packet, except around the
// meter of a metered packet. Every cycle of the loop lands in exactly one stage, `other`
// included, so the stages add up to the lcore's running time. Single writer per lcore: plain
// relaxed stores (Counter), no atomic read-modify-write, no lock.

#include <rte_cycles.h>

#include <array>
#include <cstdint>
#include <string_view>

#include "dataplane/counters.hpp"

namespace segx::dataplane {

/// Where an lcore's cycles go.
enum class Stage : uint8_t {
  rx,        ///< rte_eth_rx_burst: the driver filling mbufs
  parse,     ///< headers parsed, flow keys built
  classify,  ///< flow-table lookup (bulk), ACL classification and insertion of new flows
  meter,     ///< trTCM of metered packets (timed per packet, only for those)
  segment,   ///< admission, sequence numbers, segment open/close, staging for the worker
  ring,      ///< rte_ring enqueue/dequeue: rx to worker, worker to tx (both ends)
  service,   ///< the worker: runs of a segment's packets through its chain, segment close
  reorder,   ///< rte_reorder insert and drain
  tx,        ///< per-port buckets, latency histogram, rte_eth_tx_burst, freeing what is refused
  scan,      ///< rx_scan: segment time limits and idle flows, paced by time
  other,     ///< the rest of the loop: stop checks, empty polls, pauses
  count_
};

constexpr std::string_view stage_name(Stage s) {
  switch (s) {
    case Stage::rx:
      return "rx";
    case Stage::parse:
      return "parse";
    case Stage::classify:
      return "classify";
    case Stage::meter:
      return "meter";
    case Stage::segment:
      return "segment";
    case Stage::ring:
      return "ring";
    case Stage::service:
      return "service";
    case Stage::reorder:
      return "reorder";
    case Stage::tx:
      return "tx";
    case Stage::scan:
      return "scan";
    case Stage::other:
      return "other";
    case Stage::count_:
      break;
  }
  return "unknown";
}

constexpr size_t stage_count = static_cast<size_t>(Stage::count_);

/// Whether this build counts stage cycles (-Dstage_cycles=true).
#ifdef SEGX_STAGE_CYCLES
constexpr bool stage_cycles_built = true;
#else
constexpr bool stage_cycles_built = false;
#endif

/// One lcore's stage clock: the TSC of its last lap and the cycles charged to each stage.
struct StageClock {
  uint64_t last = 0;  ///< only the owning lcore reads or writes it
  std::array<Counter, stage_count> cycles;

  void start() { last = rte_rdtsc(); }
  void lap(Stage s) {
    const uint64_t now = rte_rdtsc();
    cycles[static_cast<size_t>(s)].add(now - last);
    last = now;
  }
};

}  // namespace segx::dataplane

#ifdef SEGX_STAGE_CYCLES
/// Charges the cycles since the lcore's previous lap to `stage` (plan `p`).
#define SEGX_STAGE(p, stage) (p).counters.stage_clock.lap(::segx::dataplane::Stage::stage)
/// Starts the lcore's clock (once, before its loop).
#define SEGX_STAGE_START(p) (p).counters.stage_clock.start()
#else
#define SEGX_STAGE(p, stage) ((void)0)
#define SEGX_STAGE_START(p) ((void)0)
#endif
