// The worker stage: runs a profile's service chain over runs of consecutive packets of one
// segment, finishes segments at their close events, hands subcontracted parts to
// subcontract.cpp, and passes its outputs to its tx lcore's ring.

#include <rte_cycles.h>
#include <rte_ring.h>

#include <cstring>

#include "dataplane/lcore_plan.hpp"

namespace segx::dataplane {

namespace {

void open_chain(WorkerRole& w, Segment& s) {
  auto& chain = w.chains[s.profile];
  for (size_t i = 0; i < chain.size(); ++i)
    chain[i]->open(s, s.state + w.offsets[s.profile][i]);
  s.worker_open = true;
  s.subcontract = 0;
}

}  // namespace

// Runs chain entries [from, to) over consecutive packets of one segment and applies the
// verdicts: a drop is a mark the tx lcore acts on in order, a mirror names the port of the
// service that asked (each service's mirror bits are taken before the next service runs).
void run_services(LcorePlan& p, Segment& s, rte_mbuf** pkts, uint16_t n, uint8_t* verdict,
                  size_t from, size_t to) {
  WorkerRole& w = p.worker;
  if (!s.worker_open) open_chain(w, s);
  std::memset(verdict, 0, n);
  auto& chain = w.chains[s.profile];
  auto& counters = p.counters.services[s.profile];
  for (size_t i = from; i < to; ++i) {
    chain[i]->process(s, s.state + w.offsets[s.profile][i], pkts, n, verdict);
    counters[i].calls.add(1);
    counters[i].packets.add(n);
    const int mirror = chain[i]->mirror_port();
    if (mirror < 0) continue;
    for (uint16_t k = 0; k < n; ++k) {
      if (!(verdict[k] & verdict_mirror)) continue;
      verdict[k] &= static_cast<uint8_t>(~verdict_mirror);
      packet_meta(pkts[k])->mirror_port = static_cast<uint8_t>(mirror);
    }
  }
  for (uint16_t i = 0; i < n; ++i) {
    if (verdict[i] & verdict_drop) {
      packet_meta(pkts[i])->flags |= meta_drop;
      p.counters.drops[static_cast<size_t>(Drop::service_drop)].add(1);
    }
  }
}

void close_services(LcorePlan& p, Segment& s, size_t from, size_t to) {
  WorkerRole& w = p.worker;
  if (!s.worker_open) open_chain(w, s);
  auto& chain = w.chains[s.profile];
  auto& counters = p.counters.services[s.profile];
  ResultWriter out(s);
  for (size_t i = from; i < to; ++i) {
    chain[i]->close(s, s.state + w.offsets[s.profile][i], out);
    counters[i].segments.add(1);
  }
}

void record_segment(LcorePlan& p, Segment& s) {
  const Shared& sh = *p.shared;
  // Counted after the hand-over: once a retired slot's finished segments equal its opened
  // ones, its records are in the results ring, and the slot may go after the next write.
  ProfileCounters& pc = p.counters.profiles[s.profile];
  if (sh.results != nullptr && rte_ring_enqueue(sh.results, &s) == 0) {
    pc.finished.add(1);
    return;
  }
  if (sh.results != nullptr) p.counters.events[static_cast<size_t>(Event::records_dropped)].add(1);
  rte_mempool_put(sh.segments, &s);
  pc.finished.add(1);
}

namespace {

// A run of consecutive packets of one segment: the chain, or, when part of it is
// subcontracted, the entries before that part and then the hand-over to the peer (which
// replaces the run's outputs in place). Returns the run's outputs.
uint16_t run_chain(LcorePlan& p, Segment& s, rte_mbuf** pkts, uint16_t n, uint8_t* verdict,
                   uint64_t now) {
  WorkerRole& w = p.worker;
  const int sub = w.sub_pos[s.profile];
  if (sub < 0) {
    run_services(p, s, pkts, n, verdict, 0, w.chains[s.profile].size());
    return n;
  }
  run_services(p, s, pkts, n, verdict, 0, static_cast<size_t>(sub));
  return subcontract_packets(p, s, pkts, n, now, pkts);
}

// The segment's close event: the chain reports, then the record writer gets the descriptor
// (or the pool, without a writer or with its queue full). A subcontracted segment finishes
// once the peer's part is done. Returns outputs written (a subcontract's end message).
uint16_t finish_segment(LcorePlan& p, Segment& s, uint64_t now, rte_mbuf** out) {
  WorkerRole& w = p.worker;
  if (!s.worker_open) open_chain(w, s);
  if (w.sub_pos[s.profile] >= 0) return subcontract_close(p, s, now, out);
  close_services(p, s, 0, w.chains[s.profile].size());
  record_segment(p, s);
  return 0;
}

}  // namespace

uint16_t worker_process(LcorePlan& p, void* const* entries, unsigned n, WorkerBurst& b,
                        uint64_t now, uint32_t spare) {
  WorkerRole& w = p.worker;
  uint16_t nout = 0, run_start = 0;
  Segment* run = nullptr;
  const auto end_run = [&] {
    // A profile with no service (and nothing subcontracted) passes its packets as they
    // are: no chain to open or run, no verdicts (finish_segment opens the empty chain).
    if (run && (w.sub_pos[run->profile] >= 0 || !w.chains[run->profile].empty())) {
      nout =
          static_cast<uint16_t>(run_start + run_chain(p, *run, &b.out[run_start], nout - run_start,
                                                      &b.verdict[run_start], now));
    }
    run = nullptr;
  };
  for (unsigned i = 0; i < n; ++i) {
    void* e = entries[i];
    if (is_close_event(e)) {
      end_run();
      nout += finish_segment(p, *event_segment(e), now, &b.out[nout]);
      continue;
    }
    rte_mbuf* m = static_cast<rte_mbuf*>(e);
    const PacketMeta* meta = packet_meta(m);
    if (meta->flags & meta_tunnel) {
      end_run();
      const uint16_t got = tunnel_message(p, m, now, &b.out[nout], spare);
      nout += got;
      if (got > 1) spare -= got - 1u;
      continue;
    }
    if (meta->segment != run) {
      end_run();
      run = meta->segment;
      run_start = nout;
    }
    // verdict[] is indexed by output position: a run's packets are consecutive there.
    b.out[nout++] = m;
  }
  end_run();
  return nout;
}

unsigned worker_step(LcorePlan& p, WorkerBurst& b) {
  WorkerRole& w = p.worker;
  const unsigned inputs = static_cast<unsigned>(w.from_rx.size());
  const bool peers = !p.shared->peers.empty();
  const uint64_t now = peers ? rte_rdtsc() : 0;
  unsigned total = 0;
  SEGX_STAGE(p, other);
  for (unsigned k = 0; k < inputs * drain_bursts; ++k) {
    rte_ring* in = w.from_rx[(w.next_input + k) % inputs];
    // Take no more than the tx ring can hold: backpressure instead of a drop after the
    // packets got their sequence numbers. Each entry gives at most one output; what a reply
    // releases beyond that comes out of the spare room.
    const unsigned free_room = rte_ring_free_count(w.to_tx);
    const unsigned room = free_room < max_worker_out ? free_room : max_worker_out;
    const unsigned max = room < p.shared->burst ? room : p.shared->burst;
    if (max == 0) break;
    const unsigned n = rte_ring_dequeue_burst(in, b.entries, max, nullptr);
    SEGX_STAGE(p, ring);
    if (n == 0) continue;
    total += n;
    const uint16_t nout = worker_process(p, b.entries, n, b, now, room - n);
    SEGX_STAGE(p, service);
    if (nout > 0) {
      rte_ring_enqueue_bulk(w.to_tx, reinterpret_cast<void**>(b.out), nout, nullptr);
      p.counters.ring_enqueued[w.to_tx_index].add(nout);
    }
    SEGX_STAGE(p, ring);
  }
  if (peers) {
    const unsigned free_room = rte_ring_free_count(w.to_tx);
    const uint16_t nout =
        subcontract_scan(p, now, b.out, free_room < max_worker_out ? free_room : max_worker_out);
    SEGX_STAGE(p, service);
    if (nout > 0) {
      rte_ring_enqueue_bulk(w.to_tx, reinterpret_cast<void**>(b.out), nout, nullptr);
      p.counters.ring_enqueued[w.to_tx_index].add(nout);
      total += nout;
    }
    SEGX_STAGE(p, ring);
  }
  w.next_input = (w.next_input + 1) % (inputs ? inputs : 1);
  return total;
}

void rtc_deliver(LcorePlan& p, void* const* entries, unsigned n) {
  WorkerBurst& b = *p.worker_scratch;
  const uint16_t nout = worker_process(p, entries, n, b, 0, 0);
  SEGX_STAGE(p, service);
  if (nout > 0) tx_send(p, b.out, nout);
  SEGX_STAGE(p, tx);
}

}  // namespace segx::dataplane
