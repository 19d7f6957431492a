#pragma once
// Internal: the plan each data-plane lcore follows and the counters it keeps. One lcore
// may hold the rx, worker and tx roles at once; they share one loop (busy-polling lcores
// must not outnumber CPUs).

#include <rte_common.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace segx::dataplane {

/// A counter written by one lcore and read by others. Relaxed load and store compile to
/// plain moves on x86; a single writer needs no atomic read-modify-write.
struct Counter {
  std::atomic<uint64_t> value{0};
  void add(uint64_t n) {
    value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const { return value.load(std::memory_order_relaxed); }
};

/// Most configured ports segx drives (DPDK's RTE_MAX_ETHPORTS in Debian's build).
constexpr unsigned max_ports = 32;
/// Most rings: one per worker lcore and one per tx lcore.
constexpr unsigned max_rings = 256;
/// Most packets in one burst (pipeline.burst may be smaller).
constexpr unsigned max_burst = 256;

/// An rx queue an rx lcore polls, and the worker ring its packets go to.
struct RxQueue {
  uint16_t port_id;
  uint16_t queue;
  int32_t default_output;  ///< port index for unmatched packets, or -1 to drop them
  rte_ring* worker_ring;
  unsigned ring_index;  ///< the worker ring's index, for ring counters
};

/// Counters of one lcore, on their own cache lines so lcores never share a line.
struct alignas(RTE_CACHE_LINE_SIZE) LcoreCounters {
  Counter rx_packets;
  Counter rx_bytes;
  Counter default_drops;
  std::array<Counter, max_rings> ring_enqueued;  ///< by ring index, for rings this lcore feeds
  std::array<Counter, max_rings> ring_full;
  std::array<Counter, max_ports> tx_packets;  ///< by configured port index
  std::array<Counter, max_ports> tx_dropped;
};

struct Shared;

/// Everything one lcore needs; built before launch, never resized while running.
struct alignas(RTE_CACHE_LINE_SIZE) LcorePlan {
  unsigned lcore = 0;
  uint8_t roles = 0;
  const Shared* shared = nullptr;
  // rx role
  std::vector<RxQueue> rx_queues;
  // worker role
  rte_ring* worker_in = nullptr;
  rte_ring* worker_out = nullptr;
  unsigned worker_out_index = 0;  ///< ring index of worker_out
  // tx role
  rte_ring* tx_in = nullptr;
  uint16_t tx_queue = 0;
  std::vector<uint16_t> port_ids;     ///< configured port index → DPDK port id
  std::vector<rte_mbuf*> tx_buckets;  ///< ports × burst, packets sorted by output port
  std::vector<uint16_t> tx_counts;
  // stop protocol: each role says when it has finished draining
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
};

/// The loop of one data-plane lcore; arg is its LcorePlan. Returns when every role it holds
/// has drained after Shared::stop_rx is set.
int lcore_main(void* arg);

}  // namespace segx::dataplane
