// The rx stage: parse, flow table, classification, metering, segmentation, numbering, and
// staging for the workers' rings; the scan of flows for expired segments and idle flows.

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_prefetch.h>

#include <cerrno>
#include <cstring>

#include "dataplane/lcore_plan.hpp"

namespace segx::dataplane {

namespace {

// Flows the scan looks at per step; steps are paced by time (RxRole::scan_due).
constexpr unsigned scan_chunk = 64;
// Flow table positions a reload pass looks at per loop turn (most are empty or current).
constexpr unsigned pass_chunk = 256;

// The open segment's progress, kept in the flow's own line.
SegmentProgress progress(const FlowState& f) {
  return {f.seg_packets, f.seg_bytes, f.seg_first_tsc, f.seg_last_tsc};
}

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
  if (e == geneve::Error::none && d.message.kind == geneve::Kind::goodbye) {
    // The peer stops: the main lcore quiets the link and answers (links.cpp). Consumed here.
    if (!d.message.reply) {
      p.goodbye_ports.fetch_or(1u << q.port_index, std::memory_order_relaxed);
      c.events[static_cast<size_t>(Event::peer_goodbye)].add(1);
    }
    return false;
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
  s->packets = f.seg_packets;
  s->bytes = f.seg_bytes;
  s->first_tsc = f.seg_first_tsc;
  s->last_tsc = f.seg_last_tsc;
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
  if (p.rtc) {
    // Run to completion: the lcore's own worker and tx role take them now.
    const unsigned w = p.worker.index;
    const uint32_t n = rx.staged[w];
    if (n == 0) return;
    rx.staged[w] = 0;
    rtc_deliver(p, &rx.staging[w * per_worker], n);
    return;
  }
  for (uint16_t w : rx.fed) {
    const uint32_t n = rx.staged[w];
    if (n == 0) continue;
    rte_ring_enqueue_bulk(rx.to_worker[w], &rx.staging[w * per_worker], n, nullptr);
    p.counters.ring_enqueued[rx.ring_index[w]].add(n);
    rx.staged[w] = 0;
  }
}

// The profile slot + 1 (0: none) the lcore's current classifier gives a packet.
inline uint16_t classify(const RxRole& rx, const PacketInfo& info, uint8_t port_index) {
  uint32_t profile = 0;
  if (info.family == 4) {
    const AclKey4 key = make_acl_key4(info, port_index);
    const AclKey4* kp = &key;
    rx.classifier->classify4(&kp, &profile, 1);
  } else {
    const AclKey6 key = make_acl_key6(info, port_index);
    const AclKey6* kp = &key;
    rx.classifier->classify6(&kp, &profile, 1);
  }
  return static_cast<uint16_t>(profile);
}

// A flow classified before the current generation, at its next packet: classified again.
// An unchanged profile keeps its slot, and the flow its open segment; any other outcome
// closes the segment (reason reload) and the flow starts anew under what it matches now.
// Returns false, leaving the flow as it was, when that close finds no room in the ring
// (the packet is then dropped for want of room anyway).
template <bool Rtc>
inline bool migrate_flow(LcorePlan& p, FlowState& f, const PacketInfo& info, uint8_t port_index,
                         uint32_t* room) {
  RxRole& rx = p.rx;
  const uint16_t profile = classify(rx, info, port_index);
  if (profile != f.profile && f.segment) {
    if constexpr (!Rtc) {
      if (room[f.worker] < entries_per_packet) return false;
      room[f.worker] -= 1;
    }
    close_segment(p, f, CloseReason::reload);
  }
  f.profile = profile;
  f.gen = rx.gen_tag;
  return true;
}

// Parses every packet of a burst, finds or creates its flow, classifies new flows, meters,
// segments, and stages it for its worker; drops are freed once at the end. The features a
// queue or lcore does not use are compiled out of the per-packet loop: Rtc (run to
// completion: no ring room, no numbering), Links (a peer link: tunnel messages), Metering.
template <bool Rtc, bool Links, bool Metering>
void rx_burst(LcorePlan& p, const RxQueue& q, rte_mbuf** pkts, uint16_t n, uint64_t now, RxBurst& b,
              bool stopping) {
  const Shared& sh = *p.shared;
  RxRole& rx = p.rx;
  LcoreCounters& c = p.counters;
  rte_mbuf* dropped[max_burst];
  uint16_t nd = 0;
  uint64_t bytes = 0;
  const ParseOptions options{q.gtpu};
  // Frames ahead of the one parsed whose headers are fetched early (real NICs DMA them to
  // memory, not to the cache).
  constexpr uint16_t ahead = 4;
  for (uint16_t i = 0; i < n && i < ahead; ++i)
    rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));

  // 1. Parse (the common shapes fast, anything else in full). A frame whose headers do not
  // fit its first segment is parsed from a copy. Each flow key's signature once.
  uint16_t nip = 0;
  for (uint16_t i = 0; i < n; ++i) {
    if (i + ahead < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + ahead], void*));
    rte_mbuf* m = pkts[i];
    const uint32_t frame_len = rte_pktmbuf_pkt_len(m);
    bytes += frame_len;
    const uint32_t window = frame_len < parse_window ? frame_len : parse_window;
    const uint8_t* data = rte_pktmbuf_mtod(m, const uint8_t*);
    if (rte_pktmbuf_data_len(m) < window) [[unlikely]] {
      data = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, window, b.linear));
    }
    const ParseError e = parse_packet(data, window, frame_len, b.info[i], options);
    if (e != ParseError::none) [[unlikely]] {
      c.parse[static_cast<size_t>(e)].add(1);
      b.info[i].family = family_dropped;
      dropped[nd++] = m;
      continue;
    }
    if constexpr (Links) {
      if (to_our_tunnel(sh, b.info[i])) {
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
    }
    if (b.info[i].family == 0) [[unlikely]] {
      c.events[static_cast<size_t>(Event::non_ip)].add(1);
      continue;
    }
    // The key built and hashed in registers, stored whole.
    uint64_t w[6];
    flow_key_words(data, b.info[i], q.port_index, w);
    std::memcpy(&b.keys[nip], w, sizeof w);
    b.key_ptrs[nip] = &b.keys[nip];
    b.sigs[nip] = flow_signature(w);
    b.ip_index[nip] = i;
    ++nip;
  }
  c.rx_packets.add(n);
  c.rx_bytes.add(bytes);
  SEGX_STAGE(p, parse);

  // 2. Flow lookup for the whole burst with the signatures already computed, in chunks of
  // at most lookup_bulk_max (more: -EINVAL, nothing written; a failed chunk counts as
  // misses, and adding a key that is there finds it). Then new flows: classify and insert.
  for (uint16_t k = 0; k < nip; k += lookup_bulk_max) {
    const uint32_t left = static_cast<uint32_t>(nip - k);
    const uint32_t chunk = left < lookup_bulk_max ? left : lookup_bulk_max;
    uint64_t hits = 0;
    if (rte_hash_lookup_with_hash_bulk_data(rx.flows, &b.key_ptrs[k], &b.sigs[k], chunk, &hits,
                                            &b.flows[k]) < 0)
      hits = 0;
    if (hits == (chunk == 64 ? ~uint64_t{0} : (uint64_t{1} << chunk) - 1)) [[likely]]
      continue;
    for (uint32_t j = 0; j < chunk; ++j) {
      if (hits >> j & 1) continue;
      b.flows[k + j] = nullptr;
      const uint16_t x = static_cast<uint16_t>(k + j);
      const PacketInfo& info = b.info[b.ip_index[x]];
      const uint16_t profile = classify(rx, info, q.port_index);
      const int32_t pos = rte_hash_add_key_with_hash(rx.flows, b.key_ptrs[x], b.sigs[x]);
      if (pos < 0) {
        c.events[static_cast<size_t>(Event::flow_table_full)].add(1);
        continue;  // stays null: the packet takes the default action
      }
      FlowState& f = rx.flow_state[static_cast<size_t>(pos)];
      b.flows[x] = &f;
      // Lookups return the state itself. (Adding a key that is there, when an earlier
      // packet of this burst created the flow, cleared its data: set it again.)
      rte_hash_add_key_with_hash_data(rx.flows, b.key_ptrs[x], b.sigs[x], &f);
      if (f.position >= 0) continue;  // an earlier packet of this burst created it
      f = FlowState{};
      f.position = pos;
      f.signature = b.sigs[x];
      f.profile = profile;
      f.gen = rx.gen_tag;
      f.worker = static_cast<uint8_t>(
          rx.targets.size() == 1 ? rx.targets[0] : rx.targets[b.sigs[x] % rx.targets.size()]);
      f.active_index = static_cast<uint32_t>(rx.active.size());
      rx.active.push_back(pos);
      c.events[static_cast<size_t>(Event::flows_created)].add(1);
    }
  }
  for (uint16_t k = 0; k < nip; ++k)
    rte_prefetch0(b.flows[k]);
  SEGX_STAGE(p, classify);

  // 3. In arrival order: meter, admit to the worker's ring, segment, stage.
  const MeterSnapshot* snap = nullptr;
  if constexpr (Metering) snap = sh.metering->snapshot();
  const uint32_t per_worker = entries_per_packet * sh.burst;
  // Room in the rings of the workers it feeds, and what each of their tx lcores has
  // released of this lcore's numbers: numbering may run a reorder window ahead of it. Run
  // to completion neither matters: the staging slice holds a burst's entries, and it goes
  // through the chain right after this burst.
  uint32_t room[max_workers];
  uint64_t released[max_tx_lcores];
  // The default action for this port, as of the latest reload.
  const int32_t default_output = sh.default_output[q.port_index].load(std::memory_order_relaxed);
  if constexpr (!Rtc) {
    for (uint16_t w : rx.fed) {
      room[w] = rte_ring_free_count(rx.to_worker[w]) - rx.staged[w];
      released[sh.worker_tx[w]] = sh.tx_lcores[sh.worker_tx[w]]->tx.released[rx.index].get();
    }
  }
  // Profile counters are added once per run of packets of one profile, not per packet.
  uint16_t run_profile = 0;
  uint64_t run_packets = 0, run_bytes = 0;
  const auto count_run = [&] {
    if (run_profile == 0) return;
    ProfileCounters& pc = c.profiles[run_profile - 1u];
    pc.packets.add(run_packets);
    pc.bytes.add(run_bytes);
  };
  uint16_t k = 0;
  for (uint16_t i = 0; i < n; ++i) {
    const PacketInfo& info = b.info[i];
    if (info.family == family_dropped) [[unlikely]]
      continue;
    rte_mbuf* m = pkts[i];
    if constexpr (Links) {
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
    }
    const uint32_t len = rte_pktmbuf_pkt_len(m);
    FlowState* f = nullptr;
    const FlowKey* key = nullptr;
    if (info.family != 0) [[likely]] {
      key = &b.keys[k];
      f = static_cast<FlowState*>(b.flows[k++]);
      if (f && f->gen != rx.gen_tag) [[unlikely]] {
        if (!migrate_flow<Rtc>(p, *f, info, q.port_index, room)) {
          c.drops[static_cast<size_t>(Drop::ring_full)].add(1);
          c.ring_dropped[rx.ring_index[f->worker]].add(1);
          dropped[nd++] = m;
          continue;
        }
      }
    }
    const ProfileRuntime* prof = (f && f->profile) ? &sh.profiles[f->profile - 1u] : nullptr;
    if (f) f->last_tsc = now;

    uint64_t block = 0;
    [[maybe_unused]] uint16_t block_slot = 0;
    // A packet its block's meter passed and a full ring drops counts against the block's
    // delivery (BlockUsage::dropped_*).
    [[maybe_unused]] const auto count_block_drop = [&] {
      if constexpr (Metering) {
        if (block != 0) sh.metering->count_drop(rx.index, block_slot, len);
      }
    };
    if constexpr (Metering) {
      if (prof && prof->metered) {
        SEGX_STAGE(p, segment);
        const MeterVerdict v = sh.metering->meter(
            rx.index, *snap, info, rte_pktmbuf_mtod(m, const uint8_t*), prof->meter_id, len, now);
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
        block_slot = v.slot;
      }
    }
    if (!prof && default_output < 0) {
      c.drops[static_cast<size_t>(Drop::no_profile)].add(1);
      dropped[nd++] = m;
      continue;
    }
    const uint16_t w = f ? f->worker : q.default_worker;
    uint16_t t = 0;
    uint32_t staged_before = 0;
    if constexpr (!Rtc) {
      if (room[w] < entries_per_packet) {
        c.drops[static_cast<size_t>(Drop::ring_full)].add(1);
        c.ring_dropped[rx.ring_index[w]].add(1);
        count_block_drop();
        dropped[nd++] = m;
        continue;
      }
      t = sh.worker_tx[w];
      if (!rx.next_seqn[t].room(released[t], sh.reorder_window)) {
        c.drops[static_cast<size_t>(Drop::reorder_full)].add(1);
        count_block_drop();
        dropped[nd++] = m;
        continue;
      }
      staged_before = rx.staged[w];
    }

    PacketMeta* meta = packet_meta(m);
    meta->segment = nullptr;
    meta->rx_tsc = now;
    meta->flow_seq = f ? f->next_seq++ : 0;
    meta->rx_index = static_cast<uint8_t>(rx.index);
    meta->mirror_port = no_mirror;
    meta->flags = 0;
    if (prof) {
      meta->out_port = static_cast<uint8_t>(prof->output);
      if (f->profile != run_profile) {
        count_run();
        run_profile = f->profile;
        run_packets = run_bytes = 0;
      }
      ++run_packets;
      run_bytes += len;
      if (f->segment) {
        const CloseReason r = close_before(prof->rules, progress(*f), now);
        if (r != CloseReason::open) close_segment(p, *f, r);
      }
      if (!f->segment) {
        void* obj = nullptr;
        if (rte_mempool_get(sh.segments, &obj) == 0) {
          Segment* s = static_cast<Segment*>(obj);
          s->id = rx.segment_id_base | ++rx.segment_counter;
          s->first_seq = meta->flow_seq;
          s->block_serial = block;
          s->profile = static_cast<uint16_t>(f->profile - 1u);
          c.profiles[s->profile].opened.add(1);
          s->reason = CloseReason::open;
          s->rx_index = static_cast<uint8_t>(rx.index);
          s->worker_open = false;
          s->result_len = 0;
          s->key = *key;
          f->segment = s;
          f->seg_first_tsc = now;
          f->seg_packets = 0;
          f->seg_bytes = 0;
        } else {
          c.events[static_cast<size_t>(Event::segment_pool_empty)].add(1);
        }
      }
      if (Segment* s = f->segment) {
        ++f->seg_packets;
        f->seg_bytes += len;
        f->seg_last_tsc = now;
        meta->segment = s;
      }
    } else {
      meta->out_port = static_cast<uint8_t>(default_output);
    }
    if constexpr (!Rtc) *rte_reorder_seqn(m) = rx.next_seqn[t].take();
    rx.staging[w * per_worker + rx.staged[w]++] = m;
    if (prof && f->segment) {
      const CloseReason r = close_after(prof->rules, progress(*f), info.proto, info.tcp_flags);
      if (r != CloseReason::open) close_segment(p, *f, r);
    }
    if constexpr (!Rtc) room[w] -= rx.staged[w] - staged_before;
  }
  count_run();
  if (nd > 0) rte_pktmbuf_free_bulk(dropped, nd);
  SEGX_STAGE(p, segment);
}

// The rx_burst compiled for what this lcore and queue use.
void rx_burst_for(LcorePlan& p, const RxQueue& q, rte_mbuf** pkts, uint16_t n, uint64_t now,
                  RxBurst& b, bool stopping) {
  const bool metering = p.shared->metering != nullptr;
  if (p.rtc) {
    // Run to completion implies no peers: no link queues.
    if (metering) return rx_burst<true, false, true>(p, q, pkts, n, now, b, stopping);
    return rx_burst<true, false, false>(p, q, pkts, n, now, b, stopping);
  }
  if (q.link) {
    if (metering) return rx_burst<false, true, true>(p, q, pkts, n, now, b, stopping);
    return rx_burst<false, true, false>(p, q, pkts, n, now, b, stopping);
  }
  if (metering) return rx_burst<false, false, true>(p, q, pkts, n, now, b, stopping);
  return rx_burst<false, false, false>(p, q, pkts, n, now, b, stopping);
}

// Removes a flow from the table and the scan list.
void evict(LcorePlan& p, int32_t pos) {
  RxRole& rx = p.rx;
  FlowState& f = rx.flow_state[static_cast<size_t>(pos)];
  void* key = nullptr;
  if (rte_hash_get_key_with_position(rx.flows, pos, &key) == 0)
    rte_hash_del_key_with_hash(rx.flows, key, f.signature);
  const uint32_t i = f.active_index;
  rx.active[i] = rx.active.back();
  rx.flow_state[static_cast<size_t>(rx.active[i])].active_index = i;
  rx.active.pop_back();
  f.position = -1;
  p.counters.events[static_cast<size_t>(Event::flows_evicted)].add(1);
}

// Looks at the next scan_chunk flows once their turn has come: closes segments whose time
// or idle limit passed, evicts flows idle longer than the flow table's timeout. Paced by
// time, not by loop turns: the whole table once per Shared::scan_period_tsc, whatever the
// packet rate. An event that finds its worker's ring full waits for the next pass.
void rx_scan(LcorePlan& p, uint64_t now) {
  RxRole& rx = p.rx;
  if (now < rx.scan_due) [[likely]]
    return;
  const Shared& sh = *p.shared;
  const size_t active = rx.active.size();
  const uint64_t period = sh.scan_period_tsc.load(std::memory_order_relaxed);
  rx.scan_due = now + (active > scan_chunk ? period * scan_chunk / active : period);
  for (unsigned i = 0; i < scan_chunk && i < active && !rx.active.empty(); ++i) {
    if (rx.scan_next >= rx.active.size()) rx.scan_next = 0;
    const int32_t pos = rx.active[rx.scan_next];
    FlowState& f = rx.flow_state[static_cast<size_t>(pos)];
    const bool idle_flow = now - f.last_tsc >= sh.flow_idle_tsc;
    CloseReason r = CloseReason::open;
    if (f.segment) {
      r = idle_flow ? CloseReason::evicted
                    : expired(sh.profiles[f.segment->profile].rules, progress(f), now);
    }
    if (r != CloseReason::open) {
      // A worker's staging slice holds entries_per_packet x burst entries, fewer than one
      // scan may close (burst <= 21): send what it holds before staging more.
      if (rx.staged[f.worker] == entries_per_packet * sh.burst) flush_staging(p);
      if (!p.rtc && rte_ring_free_count(rx.to_worker[f.worker]) <= rx.staged[f.worker]) {
        ++rx.scan_next;  // its ring is full: the next pass closes it
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
}  // namespace

uint32_t flow_table_hash(const void* key, uint32_t /*key_len*/, uint32_t /*init*/) {
  return flow_signature(*static_cast<const FlowKey*>(key));
}

// After stop: closes every open segment (reason shutdown) as ring room allows. True once
// none is left.
bool rx_flush_segments(LcorePlan& p) {
  RxRole& rx = p.rx;
  bool done = true;
  for (int32_t pos : rx.active) {
    FlowState& f = rx.flow_state[static_cast<size_t>(pos)];
    if (!f.segment) continue;
    if (rx.staged[f.worker] == entries_per_packet * p.shared->burst) flush_staging(p);
    if (!p.rtc && rte_ring_free_count(rx.to_worker[f.worker]) <= rx.staged[f.worker]) {
      done = false;
      continue;
    }
    close_segment(p, f, CloseReason::shutdown);
  }
  flush_staging(p);
  return done;
}

bool rx_reload_step(LcorePlan& p) {
  RxRole& rx = p.rx;
  const Shared& sh = *p.shared;
  const uint64_t g = sh.generation.load(std::memory_order_acquire);
  if (g != rx.generation) [[unlikely]] {
    rx.generation = g;
    rx.gen_tag = gen_tag(g);
    rx.classifier = sh.classifier.load(std::memory_order_relaxed);  // published before g
    rx.pass_active = true;
    rx.pass_next = 0;
  }
  if (!rx.pass_active) [[likely]]
    return false;
  // The pass walks table positions, not the list of live flows, so evictions and new flows
  // meanwhile neither move a flow past it nor make it look at one twice. It closes the open
  // segments of flows whose profile version was retired, and marks every flow classified
  // before this generation to be classified again at its next packet.
  const size_t size = rx.flow_state.size();
  const uint32_t per_worker = entries_per_packet * sh.burst;
  for (unsigned looked = 0; rx.pass_next < size && looked < pass_chunk; ++looked) {
    FlowState& f = rx.flow_state[rx.pass_next];
    if (f.position >= 0 && f.gen != rx.gen_tag) {
      if (f.profile != 0 &&
          __atomic_load_n(&sh.profiles[f.profile - 1u].retired, __ATOMIC_ACQUIRE) != 0) {
        if (f.segment) {
          if (rx.staged[f.worker] == per_worker) flush_staging(p);
          if (!p.rtc && rte_ring_free_count(rx.to_worker[f.worker]) <= rx.staged[f.worker])
            break;  // its worker's ring is full: this flow again at the next turn
          close_segment(p, f, CloseReason::reload);
        }
        f.profile = 0;
      }
      f.gen = 0;
    }
    ++rx.pass_next;
  }
  flush_staging(p);
  if (rx.pass_next >= size) {
    rx.pass_active = false;
    // After the close events above went to the workers.
    rx.pass_done.store(rx.generation, std::memory_order_release);
  }
  return true;
}

unsigned rx_step(LcorePlan& p, RxBurst& b) {
  rte_mbuf* pkts[max_burst];
  unsigned total = 0;
  const uint16_t burst = static_cast<uint16_t>(p.shared->burst);
  // One clock read per loop turn: the time of its bursts and of the scan.
  const uint64_t now = rte_rdtsc();
  for (const RxQueue& q : p.rx.queues) {
    if (q.link && (p.quiet_ports >> q.port_index & 1u)) continue;
    const uint16_t n = rte_eth_rx_burst(q.port_id, q.queue, pkts, burst);
    SEGX_STAGE(p, rx);
    if (n == 0) continue;
    total += n;
    rx_burst_for(p, q, pkts, n, now, b, false);
    flush_staging(p);
    SEGX_STAGE(p, ring);
  }
  rx_scan(p, now);
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
    if (!q.link || (p.quiet_ports >> q.port_index & 1u)) continue;
    const uint16_t n = rte_eth_rx_burst(q.port_id, q.queue, pkts, burst);
    SEGX_STAGE(p, rx);
    if (n == 0) continue;
    total += n;
    rx_burst_for(p, q, pkts, n, rte_rdtsc(), b, true);
    flush_staging(p);
    SEGX_STAGE(p, ring);
  }
  return total;
}
}  // namespace segx::dataplane
