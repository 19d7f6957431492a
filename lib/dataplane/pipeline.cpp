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
  uint16_t ip_index[max_burst];       // burst position of each looked-up key
  uint16_t tunnel_worker[max_burst];  // worker of each tunnel message
  uint8_t tunnel_peer[max_burst];     // and the peer it came from
  uint8_t linear[parse_window];       // one header window for a frame whose headers span segments
};

// Marks in PacketInfo::family for the steps after parsing.
constexpr uint8_t family_dropped = 0xff;
constexpr uint8_t family_tunnel = 0xfe;

// Is this packet, received on a peer link, GENEVE addressed to this provider?
inline bool to_our_tunnel(const Shared& sh, const PacketInfo& info) {
  return info.proto == 17 && info.dst_port == geneve::udp_port && info.family == sh.family &&
         std::memcmp(info.dst.data(), sh.address.data(), 16) == 0;
}

// Checks a tunnel message and picks its worker: a reply goes back to the worker that holds
// the originals (named in its handle); a request to a worker chosen by its segment, so all
// of one segment's messages meet on one worker, in order. False when refused (counted).
bool route_tunnel(LcorePlan& p, const RxQueue& q, const uint8_t* data, uint32_t window,
                  const PacketInfo& info, uint16_t& worker, uint8_t& peer) {
  const Shared& sh = *p.shared;
  LcoreCounters& c = p.counters;
  int found = -1;
  for (size_t k = 0; k < sh.peers.size(); ++k) {
    if (sh.peers[k].port == q.port_index &&
        std::memcmp(sh.peers[k].request.dst.data(), info.src.data(), 16) == 0) {
      found = static_cast<int>(k);
      break;
    }
  }
  if (found < 0) {
    c.drops[static_cast<size_t>(Drop::tunnel_stranger)].add(1);
    return false;
  }
  peer = static_cast<uint8_t>(found);
  geneve::Decoded d;
  geneve::Error e = geneve::Error::truncated;
  if (info.l4_payload_offset < window) {
    const uint32_t avail = window - info.l4_payload_offset;
    e = geneve::decode(data + info.l4_payload_offset,
                       info.l4_payload_len < avail ? info.l4_payload_len : avail, d);
  }
  if (e == geneve::Error::none && d.message.reply &&
      (d.message.handle >> 24) >= sh.worker_lcores.size())
    e = geneve::Error::no_option;  // names no worker of ours: not a reply to us
  if (e != geneve::Error::none) {
    c.tunnel[static_cast<size_t>(e)].add(1);
    return false;
  }
  if (d.message.reply) {
    worker = static_cast<uint16_t>(d.message.handle >> 24);
  } else {
    const uint64_t h = (d.message.segment ^ (uint64_t{peer} << 56)) * 0x9E3779B97F4A7C15ull;
    worker = static_cast<uint16_t>((h >> 32) % sh.worker_lcores.size());
  }
  return true;
}

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
void rx_burst(LcorePlan& p, const RxQueue& q, rte_mbuf** pkts, uint16_t n, uint64_t now, RxBurst& b,
              bool stopping) {
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
      b.info[i].family = family_dropped;
      dropped[nd++] = m;
      continue;
    }
    if (q.link && to_our_tunnel(sh, b.info[i])) {
      const bool ok =
          route_tunnel(p, q, data, window, b.info[i], b.tunnel_worker[i], b.tunnel_peer[i]);
      b.info[i].family = ok ? family_tunnel : family_dropped;
      if (!ok) dropped[nd++] = m;
      continue;
    }
    if (stopping) {
      c.drops[static_cast<size_t>(Drop::stopping)].add(1);
      b.info[i].family = family_dropped;
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
  SEGX_STAGE(p, parse);

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
  SEGX_STAGE(p, classify);

  // 3. In arrival order: meter, admit to the worker's ring, segment, stage.
  const MeterSnapshot* snap = sh.metering ? sh.metering->snapshot() : nullptr;
  uint32_t room[64];
  for (size_t w = 0; w < rx.to_worker.size(); ++w) {
    room[w] = rte_ring_free_count(rx.to_worker[w]) - rx.staged[w];
  }
  // How far each reorder buffer lets numbering run ahead of what its tx lcore released.
  uint64_t limit[64];
  for (size_t t = 0; t < sh.tx_lcores.size(); ++t)
    limit[t] = sh.tx_lcores[t]->tx.released[rx.index].get() + sh.reorder_window;
  const uint32_t per_worker = entries_per_packet * sh.burst;
  uint16_t k = 0;
  for (uint16_t i = 0; i < n; ++i) {
    const PacketInfo& info = b.info[i];
    if (info.family == family_dropped) continue;
    rte_mbuf* m = pkts[i];
    if (info.family == family_tunnel) {
      // Unnumbered: a tunnel message is not part of the second stream.
      const uint16_t w = b.tunnel_worker[i];
      if (room[w] < 1) {
        c.drops[static_cast<size_t>(Drop::ring_full)].add(1);
        c.ring_dropped[rx.ring_index[w]].add(1);
        dropped[nd++] = m;
        continue;
      }
      PacketMeta* meta = packet_meta(m);
      meta->segment = nullptr;
      meta->rx_tsc = now;
      meta->flow_seq = info.l4_payload_offset;
      meta->out_port = q.port_index;
      meta->mirror_port = b.tunnel_peer[i];
      meta->rx_index = static_cast<uint8_t>(rx.index);
      meta->flags = meta_tunnel;
      rx.staging[w * per_worker + rx.staged[w]++] = m;
      room[w] -= 1;
      continue;
    }
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
      SEGX_STAGE(p, segment);
      const MeterVerdict v = sh.metering->meter(
          rx.index, *snap, info, rte_pktmbuf_mtod(m, const uint8_t*), f->profile - 1u, len, now);
      SEGX_STAGE(p, meter);
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
    if (rx.next_seqn[sh.worker_tx[w]] - 1 >= limit[sh.worker_tx[w]]) {
      c.drops[static_cast<size_t>(Drop::reorder_full)].add(1);
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
  SEGX_STAGE(p, segment);
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
    SEGX_STAGE(p, rx);
    if (n == 0) continue;
    total += n;
    rx_burst(p, q, pkts, n, rte_rdtsc(), b, false);
    flush_staging(p);
    SEGX_STAGE(p, ring);
  }
  rx_scan(p, rte_rdtsc());
  SEGX_STAGE(p, scan);
  return total;
}

// After stop, until every worker is done: polls the peer links for replies to what the
// workers still hold; anything else arriving there is dropped (stopping).
unsigned rx_tunnel_step(LcorePlan& p, RxBurst& b) {
  rte_mbuf* pkts[max_burst];
  unsigned total = 0;
  const uint16_t burst = static_cast<uint16_t>(p.shared->burst);
  for (const RxQueue& q : p.rx.queues) {
    if (!q.link) continue;
    const uint16_t n = rte_eth_rx_burst(q.port_id, q.queue, pkts, burst);
    SEGX_STAGE(p, rx);
    if (n == 0) continue;
    total += n;
    rx_burst(p, q, pkts, n, rte_rdtsc(), b, true);
    flush_staging(p);
    SEGX_STAGE(p, ring);
  }
  return total;
}

// ---- worker -----------------------------------------------------------------------------

// Most outputs of one worker pass: a burst of entries, plus what replies release.
constexpr unsigned max_worker_out = 2 * max_burst;

struct WorkerBurst {
  void* entries[max_burst];
  rte_mbuf* out[max_worker_out];
  uint8_t verdict[max_worker_out];
};

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
  if (sh.results != nullptr && rte_ring_enqueue(sh.results, &s) == 0) return;
  if (sh.results != nullptr) p.counters.events[static_cast<size_t>(Event::records_dropped)].add(1);
  rte_mempool_put(sh.segments, &s);
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
    uint32_t spare = room - n;
    uint16_t nout = 0, run_start = 0;
    Segment* run = nullptr;
    const auto end_run = [&] {
      // A profile with no service (and nothing subcontracted) passes its packets as they
      // are: no chain to open or run, no verdicts (finish_segment opens the empty chain).
      if (run && (w.sub_pos[run->profile] >= 0 || !w.chains[run->profile].empty())) {
        nout = static_cast<uint16_t>(run_start + run_chain(p, *run, &b.out[run_start],
                                                           nout - run_start, &b.verdict[run_start],
                                                           now));
      }
      run = nullptr;
    };
    for (unsigned i = 0; i < n; ++i) {
      void* e = b.entries[i];
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
      if (!(meta->flags & meta_bypass)) {
        // TSCs of different cores may differ by a few cycles: never a negative latency.
        const uint64_t cycles = now > meta->rx_tsc ? now - meta->rx_tsc : 0;
        latency_sum += cycles;
        observe_latency(p, cycles);
      }
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

  SEGX_STAGE_START(p);
  while (!(rx_done && replies_done && worker_done && tx_done)) {
    SEGX_STAGE(p, other);  // the previous turn's checks and pause
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
      // Held packets wait for their peer's reply or timeout; a reply that comes after the
      // worker finished stays in its ring, and stop() frees it.
      if (n == 0 && all_done(shared.rx_lcores, &LcorePlan::rx_done) &&
          rings_empty(p.worker.from_rx) && subcontracts_idle(p)) {
        served_flush(p);
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
