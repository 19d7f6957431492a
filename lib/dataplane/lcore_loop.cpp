// The loop of a data-plane lcore: its roles in one loop, and the stop protocol
// (docs/architecture.md, "Stopping").

#include <rte_mbuf_dyn.h>
#include <rte_pause.h>
#include <rte_rcu_qsbr.h>

#include "dataplane/lcore_plan.hpp"

namespace segx::dataplane {

int packet_meta_offset = -1;

bool register_packet_meta() {
  static const rte_mbuf_dynfield desc = {
      .name = "segx_packet_meta",
      .size = sizeof(PacketMeta),
      .align = alignof(PacketMeta),
      .flags = 0,
  };
  if (packet_meta_offset < 0) packet_meta_offset = rte_mbuf_dynfield_register(&desc);
  return packet_meta_offset >= 0;
}

namespace {

bool all_done(const std::vector<LcorePlan*>& plans, std::atomic<bool> LcorePlan::*flag) {
  for (const LcorePlan* p : plans) {
    if (!(p->*flag).load(std::memory_order_acquire)) return false;
  }
  return true;
}

bool rings_empty(const std::vector<rte_ring*>& rings) {
  for (rte_ring* r : rings) {
    if (!rte_ring_empty(r)) return false;
  }
  return true;
}

}  // namespace

int lcore_main(void* arg) {
  LcorePlan& p = *static_cast<LcorePlan*>(arg);
  const Shared& shared = *p.shared;
  const bool rx = p.roles & config::role_rx;
  const bool worker = p.roles & config::role_worker;
  const bool tx = p.roles & config::role_tx;
  bool rx_done = !rx, worker_done = !worker, tx_done = !tx;
  // After its own stop, an rx role keeps taking peers' replies until the workers are done.
  bool replies_done = !rx || shared.peers.empty();
  rte_rcu_qsbr* rcu = (rx && shared.metering) ? shared.metering->rcu() : nullptr;
  if (rcu) {
    rte_rcu_qsbr_thread_register(rcu, p.rx.index);
    rte_rcu_qsbr_thread_online(rcu, p.rx.index);
  }
  // Large per-burst scratch stays off the hot structures and out of the heap.
  RxBurst rx_scratch;
  WorkerBurst worker_scratch;
  p.worker_scratch = &worker_scratch;

  SEGX_STAGE_START(p);
  while (!(rx_done && replies_done && worker_done && tx_done)) {
    SEGX_STAGE(p, other);  // the previous turn's checks and pause
    apply_quiet_links(p);
    unsigned work = 0;
    if (rx_done && !replies_done) {
      if (all_done(shared.worker_lcores, &LcorePlan::worker_done)) {
        replies_done = true;
      } else {
        work += rx_tunnel_step(p, rx_scratch);
      }
      if (rcu) rte_rcu_qsbr_quiescent(rcu, p.rx.index);  // it still reads the snapshot
    }
    if (!rx_done) {
      if (shared.stop_rx.load(std::memory_order_acquire)) {
        if (rx_flush_segments(p)) {
          rx_done = true;
          p.rx_done.store(true, std::memory_order_release);
          if (p.rtc) {
            // Its last segments went through the chain and out with that flush.
            worker_done = tx_done = true;
            p.worker_done.store(true, std::memory_order_release);
            p.tx_done.store(true, std::memory_order_release);
          }
        }
      } else {
        work += rx_reload_step(p);
        work += rx_step(p, rx_scratch);
      }
      if (rcu) rte_rcu_qsbr_quiescent(rcu, p.rx.index);
    }
    // A stage with nothing to do checks whether it is finished: all its producers done
    // (read first: a producer's last enqueue happens before its done flag) and then its
    // input still empty, which after that read is final.
    if (!worker_done && !p.rtc) {
      const unsigned n = worker_step(p, worker_scratch);
      work += n;
      // Held packets wait for their peer's reply or timeout; a reply that comes after the
      // worker finished stays in its ring, and stop() frees it.
      if (n == 0 && all_done(shared.rx_lcores, &LcorePlan::rx_done) &&
          rings_empty(p.worker.from_rx) && subcontracts_idle(p)) {
        served_flush(p);
        worker_done = true;
        p.worker_done.store(true, std::memory_order_release);
      }
    }
    if (!tx_done && !p.rtc) {
      const unsigned n = tx_step(p);
      work += n;
      if (n == 0 && all_done(shared.worker_lcores, &LcorePlan::worker_done) &&
          rings_empty(p.tx.from_workers)) {
        // Sequence numbers have no gaps, so every reorder buffer empties; anything left
        // would be a bug, and is freed (and reported) when the buffers are freed.
        tx_done = true;
        p.tx_done.store(true, std::memory_order_release);
      }
    }
    if (work == 0) rte_pause();
  }
  if (rcu) {
    rte_rcu_qsbr_thread_offline(rcu, p.rx.index);
    rte_rcu_qsbr_thread_unregister(rcu, p.rx.index);
  }
  return 0;
}

}  // namespace segx::dataplane
