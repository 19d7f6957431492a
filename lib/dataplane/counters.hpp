#pragma once
// Counters of the data plane, declared in one place with their names, so the exit report,
// the JSON report and (later) metrics come from one list.

#include <atomic>
#include <cstdint>
#include <string_view>

namespace segx::dataplane {

/// A counter written by one lcore and read by others. Relaxed load and store compile to
/// plain moves on x86; a single writer needs no atomic read-modify-write.
struct Counter {
  std::atomic<uint64_t> value{0};
  void add(uint64_t n) {
    value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const { return value.load(std::memory_order_relaxed); }
  /// Only while no lcore writes it (before launch, or after a grace period).
  void reset() { value.store(0, std::memory_order_relaxed); }
};

/// Why a well-formed packet was dropped (malformed ones count under ParseError).
enum class Drop : uint8_t {
  no_profile,       ///< matched no profile (or not IP), default action drop
  unmetered,        ///< metered profile, no active block's member, unmetered: drop
  meter_red,        ///< above its block's maximum rate
  ring_full,        ///< the worker's ring had no room
  service_drop,     ///< a service of the chain dropped it
  reorder_window,   ///< arrived outside the reorder window (should not happen)
  reorder_full,     ///< numbering it would outrun the reorder window (a peer holds an earlier one)
  tunnel_stranger,  ///< GENEVE to providers.address from no peer of that port
  stopping,         ///< arrived on a peer link after stop began (only replies are taken then)
  count_
};

/// Things worth counting that are not drops.
enum class Event : uint8_t {
  flows_created,
  flows_evicted,
  flow_table_full,     ///< new flow not stored: its packets took the default action
  segment_pool_empty,  ///< no segment descriptor: the packet went unsegmented by default action
  records_dropped,     ///< segment record lost: the results queue was full
  non_ip,              ///< frames that are not IP (default action)
  peer_goodbye,        ///< a peer said it stops (GENEVE goodbye on a shared-memory link)
  count_
};

constexpr std::string_view drop_name(Drop d) {
  switch (d) {
    case Drop::no_profile:
      return "no_profile";
    case Drop::unmetered:
      return "unmetered";
    case Drop::meter_red:
      return "meter_red";
    case Drop::ring_full:
      return "ring_full";
    case Drop::service_drop:
      return "service_drop";
    case Drop::reorder_window:
      return "reorder_window";
    case Drop::reorder_full:
      return "reorder_full";
    case Drop::tunnel_stranger:
      return "tunnel_stranger";
    case Drop::stopping:
      return "stopping";
    case Drop::count_:
      break;
  }
  return "unknown";
}

constexpr std::string_view event_name(Event e) {
  switch (e) {
    case Event::flows_created:
      return "flows_created";
    case Event::flows_evicted:
      return "flows_evicted";
    case Event::flow_table_full:
      return "flow_table_full";
    case Event::segment_pool_empty:
      return "segment_pool_empty";
    case Event::records_dropped:
      return "records_dropped";
    case Event::non_ip:
      return "non_ip";
    case Event::peer_goodbye:
      return "peer_goodbye";
    case Event::count_:
      break;
  }
  return "unknown";
}

}  // namespace segx::dataplane
