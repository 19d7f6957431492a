#include "dataplane/pipeline.hpp"

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_pause.h>

#include "config/config.hpp"
#include "dataplane/packet_meta.hpp"

namespace segx::dataplane {
namespace {

// Enqueues a burst; what the ring cannot take is freed and counted, never waited for:
// an rx lcore that blocks would make the NIC drop everything else too.
inline void enqueue_or_drop(rte_ring* ring, rte_mbuf** pkts, unsigned n, Counter& enqueued,
                            Counter& full) {
  const unsigned sent = rte_ring_enqueue_burst(ring, reinterpret_cast<void**>(pkts), n, nullptr);
  enqueued.add(sent);
  if (sent < n) {
    rte_pktmbuf_free_bulk(pkts + sent, n - sent);
    full.add(n - sent);
  }
}

// rx: port queues → worker rings. Returns the packets received.
unsigned rx_step(LcorePlan& p, uint32_t burst) {
  rte_mbuf* pkts[max_burst];
  unsigned total = 0;
  for (const RxQueue& q : p.rx_queues) {
    const uint16_t n = rte_eth_rx_burst(q.port_id, q.queue, pkts, static_cast<uint16_t>(burst));
    if (n == 0) continue;
    total += n;
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < n; ++i)
      bytes += rte_pktmbuf_pkt_len(pkts[i]);
    p.counters.rx_packets.add(n);
    p.counters.rx_bytes.add(bytes);
    // No classifier yet: every packet takes the default action.
    if (q.default_output < 0) {
      rte_pktmbuf_free_bulk(pkts, n);
      p.counters.default_drops.add(n);
      continue;
    }
    for (uint16_t i = 0; i < n; ++i) {
      packet_meta(pkts[i])->out_port = static_cast<uint16_t>(q.default_output);
    }
    enqueue_or_drop(q.worker_ring, pkts, n, p.counters.ring_enqueued[q.ring_index],
                    p.counters.ring_full[q.ring_index]);
  }
  return total;
}

// worker: worker ring → (service chain) → tx ring. Returns the packets handled.
unsigned worker_step(LcorePlan& p, uint32_t burst) {
  rte_mbuf* pkts[max_burst];
  const unsigned n =
      rte_ring_dequeue_burst(p.worker_in, reinterpret_cast<void**>(pkts), burst, nullptr);
  if (n == 0) return 0;
  enqueue_or_drop(p.worker_out, pkts, n, p.counters.ring_enqueued[p.worker_out_index],
                  p.counters.ring_full[p.worker_out_index]);
  return n;
}

// tx: tx ring → output ports, one tx burst per port, on this lcore's own tx queue.
unsigned tx_step(LcorePlan& p, uint32_t burst) {
  rte_mbuf* pkts[max_burst];
  const unsigned n =
      rte_ring_dequeue_burst(p.tx_in, reinterpret_cast<void**>(pkts), burst, nullptr);
  if (n == 0) return 0;
  const size_t ports = p.port_ids.size();
  for (unsigned i = 0; i < n; ++i) {
    const uint16_t out = packet_meta(pkts[i])->out_port;
    p.tx_buckets[out * burst + p.tx_counts[out]++] = pkts[i];
  }
  for (size_t port = 0; port < ports; ++port) {
    const uint16_t count = p.tx_counts[port];
    if (count == 0) continue;
    p.tx_counts[port] = 0;
    rte_mbuf** bucket = &p.tx_buckets[port * burst];
    const uint16_t sent = rte_eth_tx_burst(p.port_ids[port], p.tx_queue, bucket, count);
    p.counters.tx_packets[port].add(sent);
    if (sent < count) {
      rte_pktmbuf_free_bulk(bucket + sent, count - sent);
      p.counters.tx_dropped[port].add(count - sent);
    }
  }
  return n;
}

bool all_done(const std::vector<LcorePlan*>& plans, std::atomic<bool> LcorePlan::*flag) {
  for (const LcorePlan* p : plans) {
    if (!(p->*flag).load(std::memory_order_acquire)) return false;
  }
  return true;
}

}  // namespace

int lcore_main(void* arg) {
  LcorePlan& p = *static_cast<LcorePlan*>(arg);
  const Shared& shared = *p.shared;
  const uint32_t burst = shared.burst;
  const bool rx = p.roles & config::role_rx;
  const bool worker = p.roles & config::role_worker;
  const bool tx = p.roles & config::role_tx;
  bool rx_done = !rx, worker_done = !worker, tx_done = !tx;

  while (!(rx_done && worker_done && tx_done)) {
    unsigned work = 0;
    if (!rx_done) {
      if (shared.stop_rx.load(std::memory_order_acquire)) {
        rx_done = true;
        p.rx_done.store(true, std::memory_order_release);
      } else {
        work += rx_step(p, burst);
      }
    }
    // A stage with nothing to do checks whether it is finished: all its producers done
    // (read first: a producer's last enqueue happens before its done flag) and then its
    // ring still empty, which after that read is final.
    if (!worker_done) {
      const unsigned n = worker_step(p, burst);
      work += n;
      if (n == 0 && all_done(shared.rx_lcores, &LcorePlan::rx_done) &&
          rte_ring_empty(p.worker_in)) {
        worker_done = true;
        p.worker_done.store(true, std::memory_order_release);
      }
    }
    if (!tx_done) {
      const unsigned n = tx_step(p, burst);
      work += n;
      if (n == 0 && all_done(shared.worker_lcores, &LcorePlan::worker_done) &&
          rte_ring_empty(p.tx_in)) {
        tx_done = true;
        p.tx_done.store(true, std::memory_order_release);
      }
    }
    if (work == 0) rte_pause();
  }
  return 0;
}

}  // namespace segx::dataplane
