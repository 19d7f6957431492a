// The tx stage: restores the order per rx lcore (rte_reorder), frees what services dropped,
// copies mirrored packets, counts latency, and sends per output port on its own queue.

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_reorder.h>
#include <rte_ring.h>

#include "dataplane/lcore_plan.hpp"

namespace segx::dataplane {

namespace {

// Sends drained packets: dropped ones are freed in their place, the rest go out per port. A
// packet a service mirrors goes to the mirror port too, as a second reference to the same
// mbuf (nothing is copied; neither transmission changes it); without a mirroring service
// that check is compiled out. Latency is counted per run of packets of one rx burst (one
// TSC read per call, one histogram step per run, not per packet).
template <bool Mirror>
void send(LcorePlan& p, rte_mbuf** pkts, unsigned n) {
  TxRole& t = p.tx;
  LcoreCounters& c = p.counters;
  const uint32_t burst = p.shared->burst;
  const uint32_t room = 2 * burst;  // a chunk's packets plus their mirror copies
  const size_t ports = t.port_ids.size();
  const uint64_t now = rte_rdtsc();
  uint64_t latency_sum = 0;
  uint64_t run_tsc = 0, run_cycles = 0, run_count = 0;
  size_t run_bucket = 0;
  const auto count_run = [&] {
    if (run_count == 0) return;
    c.latency[run_bucket].add(run_count);
    latency_sum += run_cycles * run_count;
  };
  unsigned start = 0;
  while (start < n) {
    const unsigned chunk = n - start < burst ? n - start : burst;
    for (unsigned i = start; i < start + chunk; ++i) {
      PacketMeta* meta = packet_meta(pkts[i]);
      if constexpr (Mirror) {
        if (meta->mirror_port != no_mirror) {
          rte_mbuf_refcnt_update(pkts[i], 1);
          const uint8_t mp = meta->mirror_port;
          t.buckets[mp * room + t.bucket_counts[mp]++] = pkts[i];
        }
      }
      if (meta->flags & (meta_drop | meta_bypass)) [[unlikely]] {
        if (meta->flags & meta_drop) {
          rte_pktmbuf_free(pkts[i]);
          continue;
        }
      } else {
        if (meta->rx_tsc != run_tsc || run_count == 0) {
          count_run();
          run_tsc = meta->rx_tsc;
          // TSCs of different cores may differ by a few cycles: never a negative latency.
          run_cycles = now > run_tsc ? now - run_tsc : 0;
          run_bucket = latency_bucket(*p.shared, run_cycles);
          run_count = 0;
        }
        ++run_count;
      }
      const uint8_t out = meta->out_port;
      t.buckets[out * room + t.bucket_counts[out]++] = pkts[i];
    }
    for (size_t port = 0; port < ports; ++port) {
      const uint16_t count = t.bucket_counts[port];
      if (count == 0) continue;
      t.bucket_counts[port] = 0;
      rte_mbuf** bucket = &t.buckets[port * room];
      if (p.quiet_ports >> port & 1u) [[unlikely]] {
        // A peer link about to go away under us (links.cpp): not touched, counted.
        rte_pktmbuf_free_bulk(bucket, count);
        c.tx_dropped[port].add(count);
        continue;
      }
      const uint16_t sent =
          rte_eth_tx_burst(t.port_ids[port], static_cast<uint16_t>(t.index), bucket, count);
      c.tx_packets[port].add(sent);
      if (sent < count) {
        rte_pktmbuf_free_bulk(bucket + sent, count - sent);
        c.tx_dropped[port].add(count - sent);
      }
    }
    start += chunk;
  }
  count_run();
  c.latency_tsc.add(latency_sum);
}

// Drains every reorder buffer of what is now in order and sends it.
unsigned tx_drain(LcorePlan& p) {
  TxRole& t = p.tx;
  rte_mbuf* pkts[max_burst];
  unsigned total = 0;
  for (size_t r = 0; r < t.reorder.size(); ++r) {
    unsigned n;
    while ((n = rte_reorder_drain(t.reorder[r], pkts, max_burst)) > 0) {
      t.in_flight[r] -= n;
      t.released[r].add(n);  // the rx lcore may number n more
      total += n;
      SEGX_STAGE(p, reorder);
      tx_send(p, pkts, n);
      SEGX_STAGE(p, tx);
      if (n < max_burst) break;
    }
    SEGX_STAGE(p, reorder);  // the drain that found nothing (more) in order
  }
  return total;
}

}  // namespace

void tx_send(LcorePlan& p, rte_mbuf** pkts, unsigned n) {
  if (p.shared->mirroring) {
    send<true>(p, pkts, n);
  } else {
    send<false>(p, pkts, n);
  }
}

unsigned tx_step(LcorePlan& p) {
  TxRole& t = p.tx;
  rte_mbuf* pkts[max_burst];
  rte_mbuf* bypass[max_burst];
  unsigned total = 0;
  SEGX_STAGE(p, other);
  for (unsigned k = 0; k < t.from_workers.size() * drain_bursts; ++k) {
    rte_ring* in = t.from_workers[k % t.from_workers.size()];
    const unsigned n =
        rte_ring_dequeue_burst(in, reinterpret_cast<void**>(pkts), p.shared->burst, nullptr);
    SEGX_STAGE(p, ring);
    total += n;
    unsigned nb = 0;
    for (unsigned i = 0; i < n; ++i) {
      if (packet_meta(pkts[i])->flags & meta_bypass) {
        bypass[nb++] = pkts[i];  // a tunnel message: no number, no place in the order
        continue;
      }
      const uint8_t r = packet_meta(pkts[i])->rx_index;
      if (rte_reorder_insert(t.reorder[r], pkts[i]) == 0) {
        ++t.in_flight[r];
        continue;
      }
      if (rte_errno == ENOSPC) {
        // Full of packets already in order: send them, then there is room.
        tx_drain(p);
        if (rte_reorder_insert(t.reorder[r], pkts[i]) == 0) {
          ++t.in_flight[r];
          continue;
        }
      }
      p.counters.drops[static_cast<size_t>(Drop::reorder_window)].add(1);
      rte_pktmbuf_free(pkts[i]);
    }
    SEGX_STAGE(p, reorder);
    if (nb > 0) {
      tx_send(p, bypass, nb);
      SEGX_STAGE(p, tx);
    }
  }
  tx_drain(p);
  return total;
}

}  // namespace segx::dataplane
