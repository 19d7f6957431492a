#include "dataplane/pipeline.hpp"

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_mbuf_dyn.h>
#include <rte_pause.h>
#include <rte_rcu_qsbr.h>

#include <cstring>

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

// How many flows the rx lcore looks at per loop for expired segments and idle flows.
constexpr unsigned scan_budget = 32;
// Bursts a worker or tx stage takes from one input per loop. An rx burst becomes more
// ring entries than packets (close events), so a stage taking one burst per loop would
// fall behind its producer on a shared lcore; a bound keeps the loop turning.
constexpr unsigned drain_bursts = 4;

SegmentProgress progress(const Segment& s) {
  return {s.packets, s.bytes, s.first_tsc, s.last_tsc};
}

// ---- rx ---------------------------------------------------------------------------------

// Per-burst scratch of the rx step; lives on the lcore's stack.
struct RxBurst {
  PacketInfo info[max_burst];
  FlowKey keys[max_burst];
  const void* key_ptrs[max_burst];
  int32_t positions[max_burst];
  uint16_t ip_index[max_burst];  // burst position of each looked-up key
  uint8_t linear[parse_window];  // one header window for a frame whose headers span segments
};

// Closes a flow's open segment: counts it and stages the close event for the worker, after
// the packets already staged there.
inline void close_segment(LcorePlan& p, FlowState& f, CloseReason reason) {
  Segment* s = f.segment;
  s->reason = reason;
  f.segment = nullptr;
  p.counters.profiles[s->profile].segments[static_cast<size_t>(reason)].add(1);
  RxRole& rx = p.rx;
  const uint32_t per_worker = entries_per_packet * p.shared->burst;
  rx.staging[f.worker * per_worker + rx.staged[f.worker]++] = close_event(s);
}

// Sends what was staged for each worker. Room was checked before staging, and this lcore is
// the ring's only producer, so the bulk enqueue succeeds.
inline void flush_staging(LcorePlan& p) {
  RxRole& rx = p.rx;
  const uint32_t per_worker = entries_per_packet * p.shared->burst;
  for (size_t w = 0; w < rx.to_worker.size(); ++w) {
    const uint32_t n = rx.staged[w];
    if (n == 0) continue;
    rte_ring_enqueue_bulk(rx.to_worker[w], &rx.staging[w * per_worker], n, nullptr);
    p.counters.ring_enqueued[rx.ring_index[w]].add(n);
    rx.staged[w] = 0;
  }
}

// Parses every packet of a burst, finds or creates its flow, classifies new flows, meters,
// segments, and stages it for its worker; drops are freed once at the end.
void rx_burst(LcorePlan& p, const RxQueue& q, rte_mbuf** pkts, uint16_t n, uint64_t now,
              RxBurst& b) {
  const Shared& sh = *p.shared;
  RxRole& rx = p.rx;
  LcoreCounters& c = p.counters;
  rte_mbuf* dropped[max_burst];
  uint16_t nd = 0;
  uint64_t bytes = 0;
  const ParseOptions options{q.gtpu};

  // 1. Parse. A frame whose headers do not fit its first segment is parsed from a copy.
  uint16_t nip = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    const uint32_t frame_len = rte_pktmbuf_pkt_len(m);
    bytes += frame_len;
    const uint32_t window = frame_len < parse_window ? frame_len : parse_window;
    const uint8_t* data = rte_pktmbuf_mtod(m, const uint8_t*);
    if (rte_pktmbuf_data_len(m) < window) {
      data = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, window, b.linear));
    }
    const ParseError e = parse_frame(data, window, frame_len, b.info[i], options);
    if (e != ParseError::none) {
      c.parse[static_cast<size_t>(e)].add(1);
      b.info[i].family = 0xff;  // dropped
      dropped[nd++] = m;
      continue;
    }
    if (b.info[i].family == 0) {
      c.events[static_cast<size_t>(Event::non_ip)].add(1);
      continue;
    }
    b.keys[nip] = make_flow_key(b.info[i], q.port_index);
    b.key_ptrs[nip] = &b.keys[nip];
    b.ip_index[nip] = i;
    ++nip;
  }
  c.rx_packets.add(n);
  c.rx_bytes.add(bytes);

  // 2. Flow lookup for the whole burst, then new flows: classify and insert.
  if (nip > 0) rte_hash_lookup_bulk(rx.flows, b.key_ptrs, nip, b.positions);
  for (uint16_t k = 0; k < nip; ++k) {
    if (b.positions[k] >= 0) continue;
    const PacketInfo& info = b.info[b.ip_index[k]];
    uint32_t profile = 0;
    if (info.family == 4) {
      const AclKey4 key = make_acl_key4(info, q.port_index);
      const AclKey4* kp = &key;
      sh.classifier->classify4(&kp, &profile, 1);
    } else {
      const AclKey6 key = make_acl_key6(info, q.port_index);
      const AclKey6* kp = &key;
      sh.classifier->classify6(&kp, &profile, 1);
    }
    const int32_t pos = rte_hash_add_key(rx.flows, b.key_ptrs[k]);
    if (pos < 0) {
      c.events[static_cast<size_t>(Event::flow_table_full)].add(1);
      continue;  // stays negative: the packet takes the default action
    }
    b.positions[k] = pos;
    FlowState& f = rx.flow_state[static_cast<size_t>(pos)];
    if (f.valid) continue;  // an earlier packet of this burst created it
    f = FlowState{};
    f.valid = true;
    f.profile = static_cast<uint16_t>(profile);
    f.worker = static_cast<uint16_t>(rte_hash_hash(rx.flows, b.key_ptrs[k]) % rx.to_worker.size());
    f.active_index = static_cast<uint32_t>(rx.active.size());
    rx.active.push_back(pos);
    c.events[static_cast<size_t>(Event::flows_created)].add(1);
  }

  // 3. In arrival order: meter, admit to the worker's ring, segment, stage.
  const MeterSnapshot* snap = sh.metering ? sh.metering->snapshot() : nullptr;
  uint32_t room[64];
  for (size_t w = 0; w < rx.to_worker.size(); ++w) {
    room[w] = rte_ring_free_count(rx.to_worker[w]) - rx.staged[w];
  }
  const uint32_t per_worker = entries_per_packet * sh.burst;
  uint16_t k = 0;
  for (uint16_t i = 0; i < n; ++i) {
    const PacketInfo& info = b.info[i];
    if (info.family == 0xff) continue;
    rte_mbuf* m = pkts[i];
    const uint32_t len = rte_pktmbuf_pkt_len(m);
    FlowState* f = nullptr;
    const FlowKey* key = nullptr;
    if (info.family != 0) {
      key = &b.keys[k];
      const int32_t pos = b.positions[k++];
      if (pos >= 0) f = &rx.flow_state[static_cast<size_t>(pos)];
    }
    const ProfileRuntime* prof = (f && f->profile) ? &sh.profiles[f->profile - 1u] : nullptr;
    if (f) f->last_tsc = now;

    uint64_t block = 0;
    if (prof && prof->metered) {
      const MeterVerdict v = sh.metering->meter(
          rx.index, *snap, info, rte_pktmbuf_mtod(m, const uint8_t*), f->profile - 1u, len, now);
      if (v.member && v.colour == RTE_COLOR_RED) {
        c.drops[static_cast<size_t>(Drop::meter_red)].add(1);
        dropped[nd++] = m;
        continue;
      }
      if (!v.member && prof->unmetered_drop) {
        c.drops[static_cast<size_t>(Drop::unmetered)].add(1);
        dropped[nd++] = m;
        continue;
      }
      block = v.block_serial;
    }
    if (!prof && q.default_output < 0) {
      c.drops[static_cast<size_t>(Drop::no_profile)].add(1);
      dropped[nd++] = m;
      continue;
    }
    const uint16_t w = f ? f->worker : q.default_worker;
    if (room[w] < entries_per_packet) {
      c.drops[static_cast<size_t>(Drop::ring_full)].add(1);
      c.ring_dropped[rx.ring_index[w]].add(1);
      dropped[nd++] = m;
      continue;
    }
    const uint32_t staged_before = rx.staged[w];

    PacketMeta* meta = packet_meta(m);
    meta->segment = nullptr;
    meta->rx_tsc = now;
    meta->flow_seq = f ? f->next_seq++ : 0;
    meta->rx_index = static_cast<uint8_t>(rx.index);
    meta->mirror_port = no_mirror;
    meta->flags = 0;
    if (prof) {
      meta->out_port = static_cast<uint8_t>(prof->output);
      ProfileCounters& pc = c.profiles[f->profile - 1u];
      pc.packets.add(1);
      pc.bytes.add(len);
      if (f->segment) {
        const CloseReason r = close_before(prof->rules, progress(*f->segment), now);
        if (r != CloseReason::open) close_segment(p, *f, r);
      }
      if (!f->segment) {
        void* obj = nullptr;
        if (rte_mempool_get(sh.segments, &obj) == 0) {
          Segment* s = static_cast<Segment*>(obj);
          s->id = rx.segment_id_base | ++rx.segment_counter;
          s->first_tsc = now;
          s->bytes = 0;
          s->packets = 0;
          s->first_seq = meta->flow_seq;
          s->block_serial = block;
          s->profile = static_cast<uint16_t>(f->profile - 1u);
          s->reason = CloseReason::open;
          s->rx_index = static_cast<uint8_t>(rx.index);
          s->worker_open = false;
          s->result_len = 0;
          s->key = *key;
          f->segment = s;
        } else {
          c.events[static_cast<size_t>(Event::segment_pool_empty)].add(1);
        }
      }
      if (Segment* s = f->segment) {
        s->packets++;
        s->bytes += len;
        s->last_tsc = now;
        meta->segment = s;
      }
    } else {
      meta->out_port = static_cast<uint8_t>(q.default_output);
    }
    *rte_reorder_seqn(m) = rx.next_seqn[sh.worker_tx[w]]++;
    rx.staging[w * per_worker + rx.staged[w]++] = m;
    if (prof && f->segment) {
      const CloseReason r =
          close_after(prof->rules, progress(*f->segment), info.proto, info.tcp_flags);
      if (r != CloseReason::open) close_segment(p, *f, r);
    }
    room[w] -= rx.staged[w] - staged_before;
  }
  if (nd > 0) rte_pktmbuf_free_bulk(dropped, nd);
}

// Removes a flow from the table and the scan list.
void evict(LcorePlan& p, int32_t pos) {
  RxRole& rx = p.rx;
  FlowState& f = rx.flow_state[static_cast<size_t>(pos)];
  void* key = nullptr;
  if (rte_hash_get_key_with_position(rx.flows, pos, &key) == 0) rte_hash_del_key(rx.flows, key);
  const uint32_t i = f.active_index;
  rx.active[i] = rx.active.back();
  rx.flow_state[static_cast<size_t>(rx.active[i])].active_index = i;
  rx.active.pop_back();
  f.valid = false;
  p.counters.events[static_cast<size_t>(Event::flows_evicted)].add(1);
}

// Looks at a few flows: closes segments whose time or idle limit passed, evicts flows idle
// longer than the flow table's timeout. An event that finds its worker's ring full waits for
// the next pass.
void rx_scan(LcorePlan& p, uint64_t now) {
  RxRole& rx = p.rx;
  const Shared& sh = *p.shared;
  for (unsigned i = 0; i < scan_budget && !rx.active.empty(); ++i) {
    if (rx.scan_next >= rx.active.size()) rx.scan_next = 0;
    const int32_t pos = rx.active[rx.scan_next];
    FlowState& f = rx.flow_state[static_cast<size_t>(pos)];
    const bool idle_flow = now - f.last_tsc >= sh.flow_idle_tsc;
    CloseReason r = CloseReason::open;
    if (f.segment) {
      r = idle_flow ? CloseReason::evicted
                    : expired(sh.profiles[f.segment->profile].rules, progress(*f.segment), now);
    }
    if (r != CloseReason::open) {
      if (rte_ring_free_count(rx.to_worker[f.worker]) <= rx.staged[f.worker]) {
        ++rx.scan_next;
        continue;
      }
      close_segment(p, f, r);
    }
    if (idle_flow) {
      evict(p, pos);  // the last flow moved into this place: look at it next
    } else {
      ++rx.scan_next;
    }
  }
  flush_staging(p);
}

// After stop: closes every open segment (reason shutdown) as ring room allows. True once
// none is left.
bool rx_flush_segments(LcorePlan& p) {
  RxRole& rx = p.rx;
  bool done = true;
  for (int32_t pos : rx.active) {
    FlowState& f = rx.flow_state[static_cast<size_t>(pos)];
    if (!f.segment) continue;
    if (rte_ring_free_count(rx.to_worker[f.worker]) <= rx.staged[f.worker] ||
        rx.staged[f.worker] >= entries_per_packet * p.shared->burst) {
      done = false;
      continue;
    }
    close_segment(p, f, CloseReason::shutdown);
  }
  flush_staging(p);
  return done;
}

unsigned rx_step(LcorePlan& p, RxBurst& b) {
  rte_mbuf* pkts[max_burst];
  unsigned total = 0;
  const uint16_t burst = static_cast<uint16_t>(p.shared->burst);
  for (const RxQueue& q : p.rx.queues) {
    const uint16_t n = rte_eth_rx_burst(q.port_id, q.queue, pkts, burst);
    if (n == 0) continue;
    total += n;
    rx_burst(p, q, pkts, n, rte_rdtsc(), b);
    flush_staging(p);
  }
  rx_scan(p, rte_rdtsc());
  return total;
}

// ---- worker -----------------------------------------------------------------------------

struct WorkerBurst {
  void* entries[max_burst];
  rte_mbuf* out[max_burst];
  uint8_t verdict[max_burst];
};

void open_chain(WorkerRole& w, Segment& s) {
  auto& chain = w.chains[s.profile];
  for (size_t i = 0; i < chain.size(); ++i)
    chain[i]->open(s, s.state + w.offsets[s.profile][i]);
  s.worker_open = true;
}

// Runs the chain over consecutive packets of one segment and applies the verdicts: a drop
// is a mark the tx lcore acts on in order, a mirror names the port of the service that
// asked (each service's mirror bits are taken before the next service runs).
void run_chain(LcorePlan& p, Segment& s, rte_mbuf** pkts, uint16_t n, uint8_t* verdict) {
  WorkerRole& w = p.worker;
  if (!s.worker_open) open_chain(w, s);
  std::memset(verdict, 0, n);
  auto& chain = w.chains[s.profile];
  auto& counters = p.counters.services[s.profile];
  for (size_t i = 0; i < chain.size(); ++i) {
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

// The segment's close event: the chain reports, then the record writer gets the descriptor
// (or the pool, without a writer or with its queue full).
void finish_segment(LcorePlan& p, Segment& s) {
  WorkerRole& w = p.worker;
  const Shared& sh = *p.shared;
  if (!s.worker_open) open_chain(w, s);
  auto& chain = w.chains[s.profile];
  auto& counters = p.counters.services[s.profile];
  ResultWriter out(s);
  for (size_t i = 0; i < chain.size(); ++i) {
    chain[i]->close(s, s.state + w.offsets[s.profile][i], out);
    counters[i].segments.add(1);
  }
  if (sh.results != nullptr && rte_ring_enqueue(sh.results, &s) == 0) return;
  if (sh.results != nullptr) p.counters.events[static_cast<size_t>(Event::records_dropped)].add(1);
  rte_mempool_put(sh.segments, &s);
}

unsigned worker_step(LcorePlan& p, WorkerBurst& b) {
  WorkerRole& w = p.worker;
  const unsigned inputs = static_cast<unsigned>(w.from_rx.size());
  unsigned total = 0;
  for (unsigned k = 0; k < inputs * drain_bursts; ++k) {
    rte_ring* in = w.from_rx[(w.next_input + k) % inputs];
    // Take no more than the tx ring can hold: backpressure instead of a drop after the
    // packets got their sequence numbers.
    const unsigned room = rte_ring_free_count(w.to_tx);
    const unsigned max = room < p.shared->burst ? room : p.shared->burst;
    if (max == 0) break;
    const unsigned n = rte_ring_dequeue_burst(in, b.entries, max, nullptr);
    if (n == 0) continue;
    total += n;
    uint16_t nout = 0, run_start = 0;
    Segment* run = nullptr;
    for (unsigned i = 0; i < n; ++i) {
      void* e = b.entries[i];
      Segment* s = is_close_event(e) ? nullptr : packet_meta(static_cast<rte_mbuf*>(e))->segment;
      if (is_close_event(e) || s != run) {
        if (run) run_chain(p, *run, &b.out[run_start], nout - run_start, &b.verdict[run_start]);
        run = nullptr;
      }
      if (is_close_event(e)) {
        finish_segment(p, *event_segment(e));
        continue;
      }
      if (s != run) {
        run = s;
        run_start = nout;
      }
      b.out[nout++] = static_cast<rte_mbuf*>(e);
    }
    if (run) run_chain(p, *run, &b.out[run_start], nout - run_start, &b.verdict[run_start]);
    if (nout > 0) {
      rte_ring_enqueue_bulk(w.to_tx, reinterpret_cast<void**>(b.out), nout, nullptr);
      p.counters.ring_enqueued[w.to_tx_index].add(nout);
    }
  }
  w.next_input = (w.next_input + 1) % (inputs ? inputs : 1);
  return total;
}

// ---- tx ---------------------------------------------------------------------------------

// Counts a packet's time since its rx burst in the latency histogram (a few compares over
// a table in L1; one TSC read per tx_send call, not per packet).
inline void observe_latency(LcorePlan& p, uint64_t cycles) {
  const auto& bounds = p.shared->latency_bounds_tsc;
  size_t lo = 0, hi = bounds.size();  // first bound >= cycles, or bounds.size()
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (bounds[mid] < cycles) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  p.counters.latency[lo].add(1);
}

// Sends drained packets: dropped ones are freed in their place, the rest go out per port. A
// packet a service mirrors goes to the mirror port too, as a second reference to the same
// mbuf (nothing is copied; neither transmission changes it).
void tx_send(LcorePlan& p, rte_mbuf** pkts, unsigned n) {
  TxRole& t = p.tx;
  const uint32_t burst = p.shared->burst;
  const uint32_t room = 2 * burst;  // a chunk's packets plus their mirror copies
  const size_t ports = t.port_ids.size();
  const uint64_t now = rte_rdtsc();
  uint64_t latency_sum = 0;
  unsigned start = 0;
  while (start < n) {
    const unsigned chunk = n - start < burst ? n - start : burst;
    for (unsigned i = start; i < start + chunk; ++i) {
      PacketMeta* meta = packet_meta(pkts[i]);
      if (meta->mirror_port != no_mirror) {
        rte_mbuf_refcnt_update(pkts[i], 1);
        const uint8_t mp = meta->mirror_port;
        t.buckets[mp * room + t.bucket_counts[mp]++] = pkts[i];
      }
      if (meta->flags & meta_drop) {
        rte_pktmbuf_free(pkts[i]);
        continue;
      }
      // TSCs of different cores may differ by a few cycles: never a negative latency.
      const uint64_t cycles = now > meta->rx_tsc ? now - meta->rx_tsc : 0;
      latency_sum += cycles;
      observe_latency(p, cycles);
      const uint8_t out = meta->out_port;
      t.buckets[out * room + t.bucket_counts[out]++] = pkts[i];
    }
    for (size_t port = 0; port < ports; ++port) {
      const uint16_t count = t.bucket_counts[port];
      if (count == 0) continue;
      t.bucket_counts[port] = 0;
      rte_mbuf** bucket = &t.buckets[port * room];
      const uint16_t sent =
          rte_eth_tx_burst(t.port_ids[port], static_cast<uint16_t>(t.index), bucket, count);
      p.counters.tx_packets[port].add(sent);
      if (sent < count) {
        rte_pktmbuf_free_bulk(bucket + sent, count - sent);
        p.counters.tx_dropped[port].add(count - sent);
      }
    }
    start += chunk;
  }
  p.counters.latency_tsc.add(latency_sum);
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
      total += n;
      tx_send(p, pkts, n);
      if (n < max_burst) break;
    }
  }
  return total;
}

unsigned tx_step(LcorePlan& p) {
  TxRole& t = p.tx;
  rte_mbuf* pkts[max_burst];
  unsigned total = 0;
  for (unsigned k = 0; k < t.from_workers.size() * drain_bursts; ++k) {
    rte_ring* in = t.from_workers[k % t.from_workers.size()];
    const unsigned n =
        rte_ring_dequeue_burst(in, reinterpret_cast<void**>(pkts), p.shared->burst, nullptr);
    total += n;
    for (unsigned i = 0; i < n; ++i) {
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
  }
  tx_drain(p);
  return total;
}

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
  rte_rcu_qsbr* rcu = (rx && shared.metering) ? shared.metering->rcu() : nullptr;
  if (rcu) {
    rte_rcu_qsbr_thread_register(rcu, p.rx.index);
    rte_rcu_qsbr_thread_online(rcu, p.rx.index);
  }
  // Large per-burst scratch stays off the hot structures and out of the heap.
  RxBurst rx_scratch;
  WorkerBurst worker_scratch;

  while (!(rx_done && worker_done && tx_done)) {
    unsigned work = 0;
    if (!rx_done) {
      if (shared.stop_rx.load(std::memory_order_acquire)) {
        if (rx_flush_segments(p)) {
          rx_done = true;
          p.rx_done.store(true, std::memory_order_release);
        }
      } else {
        work += rx_step(p, rx_scratch);
      }
      if (rcu) rte_rcu_qsbr_quiescent(rcu, p.rx.index);
    }
    // A stage with nothing to do checks whether it is finished: all its producers done
    // (read first: a producer's last enqueue happens before its done flag) and then its
    // input still empty, which after that read is final.
    if (!worker_done) {
      const unsigned n = worker_step(p, worker_scratch);
      work += n;
      if (n == 0 && all_done(shared.rx_lcores, &LcorePlan::rx_done) &&
          rings_empty(p.worker.from_rx)) {
        worker_done = true;
        p.worker_done.store(true, std::memory_order_release);
      }
    }
    if (!tx_done) {
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
