// Subcontracting on the worker lcore (docs/architecture.md, "Subcontracting").
//
// Origin side: a profile's chain runs up to its subcontracted entry; from there each packet
// is held in a per-worker table, with the sequence number rx gave it, and a copy goes to the
// peer inside GENEVE. A reply puts the returned frame in the original's place; held packets
// are released in flow order, each exactly once (on reply, on the fallback after a timeout
// or a refusal), so the tx lcore's reorder buffer never waits for a packet that will not
// come. Timeouts are found by a scan each loop turn: no lcore waits.
//
// Served side: a peer's request runs through this provider's providers.serve entry for the
// service, in a segment descriptor of its own; each packet goes back as a reply in the same
// mbuf, and the segment's end message comes back with the service's result.
//
// Everything is sized at start: mbufs come from the pool, slots from free stacks, nothing
// locks, nothing is allocated from the heap.

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>

#include <cstring>

#include "dataplane/lcore_plan.hpp"

namespace segx::dataplane {
namespace {

constexpr uint32_t none = SubcontractRole::none;
// Subcontracts (and served segments) looked at per loop turn for timeouts and idleness.
constexpr unsigned scan_budget = 32;
// A segment descriptor's subcontract field when the segment could not be subcontracted.
constexpr uint32_t not_subcontracted = 0xffffffff;

uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

void observe_round_trip(const Shared& sh, PeerCounters& c, uint64_t cycles) {
  c.round_trip[latency_bucket(sh, cycles)].add(1);
  c.round_trip_tsc.add(cycles);
}

void set_bypass(rte_mbuf* m, uint8_t port) {
  PacketMeta* meta = packet_meta(m);
  meta->segment = nullptr;
  meta->rx_tsc = 0;
  meta->flow_seq = 0;
  meta->out_port = port;
  meta->mirror_port = no_mirror;
  meta->rx_index = 0;
  meta->flags = meta_bypass;
}

// A request message in a new mbuf: outer headers for the peer, then `m`'s bytes (none for
// an end message). Null when no mbuf is free or the frame is longer than the link carries.
rte_mbuf* make_request(const Shared& sh, const PeerRuntime& peer, const rte_mbuf* m,
                       const geneve::Message& msg) {
  const uint32_t len = m ? rte_pktmbuf_pkt_len(m) : 0;
  if (len > peer.max_inner) return nullptr;
  rte_mbuf* c = rte_pktmbuf_alloc(sh.pool);
  if (c == nullptr) return nullptr;
  const uint32_t outer = geneve::outer_bytes(peer.request.family);
  auto* dst = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(c, static_cast<uint16_t>(outer + len)));
  if (dst == nullptr) {
    rte_pktmbuf_free(c);
    return nullptr;
  }
  geneve::Endpoints e = peer.request;
  // One source port per segment: a path that balances on it keeps the segment's order.
  e.src_port = static_cast<uint16_t>(0xc000 | (msg.segment & 0x3fff));
  geneve::encode(dst, e, msg, len);
  if (m != nullptr) {
    const void* src = rte_pktmbuf_read(m, 0, len, dst + outer);
    if (src != dst + outer) std::memcpy(dst + outer, src, len);
  }
  geneve::set_udp_checksum(dst, outer + len);
  set_bypass(c, peer.port);
  return c;
}

Subcontract* subcontract_of(SubcontractRole& sc, const Segment& s) {
  if (s.subcontract == 0 || s.subcontract == not_subcontracted) return nullptr;
  return &sc.subs[s.subcontract - 1];
}

uint32_t sub_alloc(SubcontractRole& sc, Segment& s, uint16_t peer) {
  if (sc.subs_free.empty()) return none;
  const uint32_t i = sc.subs_free.back();
  sc.subs_free.pop_back();  // capacity reserved at start: no reallocation
  Subcontract& u = sc.subs[i];
  const uint32_t generation = u.generation;
  u = Subcontract{};
  u.generation = generation;
  u.segment = &s;
  u.head = u.tail = none;
  u.peer = peer;
  u.active_pos = static_cast<uint32_t>(sc.active.size());
  sc.active.push_back(i);
  return i;
}

void sub_free(SubcontractRole& sc, uint32_t i) {
  Subcontract& u = sc.subs[i];
  u.segment = nullptr;
  ++u.generation;  // a reply still on its way is now late
  const uint32_t pos = u.active_pos;
  sc.active[pos] = sc.active.back();
  sc.subs[sc.active[pos]].active_pos = pos;
  sc.active.pop_back();
  sc.subs_free.push_back(i);
}

void held_append(SubcontractRole& sc, Subcontract& u, uint32_t slot) {
  sc.held[slot].next = none;
  if (u.tail == none) {
    u.head = slot;
  } else {
    sc.held[u.tail].next = slot;
  }
  u.tail = slot;
}

// The fallback's decision on a packet the peer will not process.
void fallback(LcorePlan& p, rte_mbuf* m, const PeerRuntime& peer, PeerCounters& pc) {
  pc.packets_fallback.add(1);
  if (peer.fallback_drop) {
    packet_meta(m)->flags |= meta_drop;
    p.counters.drops[static_cast<size_t>(Drop::service_drop)].add(1);
  }
}

// Runs the chain entries after the subcontracted one over released packets of a segment.
void run_after(LcorePlan& p, Segment& s, rte_mbuf** pkts, uint16_t n) {
  const WorkerRole& w = p.worker;
  const size_t from = static_cast<size_t>(w.sub_pos[s.profile]) + 1;
  const size_t to = w.chains[s.profile].size();
  if (n == 0 || from >= to) return;
  uint8_t verdict[2 * max_burst];
  for (uint16_t done = 0; done < n;) {
    const unsigned left = n - done;
    const uint16_t k = static_cast<uint16_t>(left < 2 * max_burst ? left : 2 * max_burst);
    run_services(p, s, pkts + done, k, verdict, from, to);
    done = static_cast<uint16_t>(done + k);
  }
}

// The subcontracted entry's member of the record when the peer's result is not there:
// `"dpi": {"peer": "b", "status": "timeout", "fallback": "pass"}`.
void write_status(LcorePlan& p, Segment& s, const PeerRuntime& peer, std::string_view status) {
  ResultWriter out(s);
  out.begin(p.worker.sub_name[s.profile]);
  out.field("peer", std::string_view(peer.id));
  out.field("status", status);
  out.field("fallback", std::string_view(peer.fallback_drop ? "drop" : "pass"));
  out.end();
}

// Appends the peer's result member (`"dpi": {...}`) to the record, with `"peer": "<id>"`
// put first in its object. False when it does not look like one member (left out).
bool append_result(Segment& s, const PeerRuntime& peer, const uint8_t* text, uint32_t len) {
  if (len < 4 || text[0] != '"' || text[len - 1] != '}') return false;
  uint32_t brace = 0;
  for (uint32_t i = 0; i < len; ++i) {
    if (text[i] < 0x20 || text[i] > 0x7e) return false;  // no control bytes into a JSON line
    if (brace == 0 && text[i] == '{') brace = i;
  }
  if (brace == 0) return false;
  const bool empty = text[brace + 1] == '}';
  char peer_member[96];
  const int pm = std::snprintf(peer_member, sizeof peer_member, "\"peer\": \"%s\"%s",
                               peer.id.c_str(), empty ? "" : ", ");
  const uint32_t sep = s.result_len > 0 ? 2 : 0;
  const uint32_t total = sep + len + static_cast<uint32_t>(pm);
  if (pm < 0 || s.result_len + total > segment_result_bytes) {
    s.result_len = segment_result_bytes;  // the record says services_truncated
    return true;
  }
  char* out = s.result + s.result_len;
  if (sep) {
    std::memcpy(out, ", ", 2);
    out += 2;
  }
  std::memcpy(out, text, brace + 1);
  out += brace + 1;
  std::memcpy(out, peer_member, static_cast<size_t>(pm));
  out += pm;
  std::memcpy(out, text + brace + 1, len - brace - 1);
  s.result_len = static_cast<uint16_t>(s.result_len + total);
  return true;
}

// Finishes a subcontracted segment once nothing of it is outstanding: the status member if
// the peer's result is not in, the entries after the subcontracted one, the record.
bool try_finish(LcorePlan& p, uint32_t i) {
  SubcontractRole& sc = p.worker.sc;
  Subcontract& u = sc.subs[i];
  if (!u.closed || u.head != none) return false;
  if (u.end_sent && u.outcome == Outcome::pending) return false;
  Segment& s = *u.segment;
  const PeerRuntime& peer = p.shared->peers[u.peer];
  switch (u.outcome) {
    case Outcome::timeout:
      write_status(p, s, peer, "timeout");
      break;
    case Outcome::refused:
      write_status(p, s, peer, "refused");
      break;
    case Outcome::not_sent:
      write_status(p, s, peer, "not_sent");
      break;
    case Outcome::bad:
      write_status(p, s, peer, "bad_result");
      break;
    case Outcome::empty:
      write_status(p, s, peer, "empty");
      break;
    case Outcome::pending:  // closed without an end message: nothing was awaited
    case Outcome::returned:
      break;
  }
  const size_t k = static_cast<size_t>(p.worker.sub_pos[s.profile]);
  p.counters.services[s.profile][k].segments.add(1);
  close_services(p, s, k + 1, p.worker.chains[s.profile].size());
  s.subcontract = 0;
  sub_free(sc, i);
  record_segment(p, s);
  return true;
}

// Releases a subcontract's held packets that are ready, in flow order, up to budget; runs
// the rest of the chain over them and finishes the segment when nothing is left. Returns
// the outputs written.
uint16_t drain(LcorePlan& p, uint32_t i, rte_mbuf** out, uint32_t budget) {
  SubcontractRole& sc = p.worker.sc;
  Subcontract& u = sc.subs[i];
  uint16_t n = 0;
  while (u.head != none && sc.held[u.head].ready && n < budget) {
    const uint32_t slot = u.head;
    out[n++] = sc.held[slot].m;
    u.head = sc.held[slot].next;
    if (u.head == none) u.tail = none;
    sc.held[slot].m = nullptr;
    sc.held_free.push_back(slot);
  }
  run_after(p, *u.segment, out, n);
  try_finish(p, i);
  return n;
}

// Applies the fallback to every packet of the subcontract still waiting for the peer.
void fail_waiting(LcorePlan& p, Subcontract& u, Outcome outcome) {
  SubcontractRole& sc = p.worker.sc;
  const PeerRuntime& peer = p.shared->peers[u.peer];
  PeerCounters& pc = p.counters.peers[u.peer];
  u.outcome = outcome;
  for (uint32_t slot = u.head; slot != none; slot = sc.held[slot].next) {
    if (sc.held[slot].ready) continue;
    fallback(p, sc.held[slot].m, peer, pc);
    sc.held[slot].ready = true;
  }
}

// ---- served side -------------------------------------------------------------------------

// Returns a served segment's descriptor and table entry (its service already closed).
void served_release(LcorePlan& p, int32_t pos) {
  SubcontractRole& sc = p.worker.sc;
  Served& v = sc.served[static_cast<size_t>(pos)];
  rte_mempool_put(p.shared->segments, v.segment);
  rte_hash_del_key(sc.served_table, &v.key);
  v.segment = nullptr;
  const uint32_t ap = v.active_pos;
  sc.served_active[ap] = sc.served_active.back();
  sc.served[static_cast<size_t>(sc.served_active[ap])].active_pos = ap;
  sc.served_active.pop_back();
}

// Ends a served segment without answering: its service closes (releasing what it holds
// per segment, a Hyperscan stream say) into a result nobody reads.
void served_end(LcorePlan& p, int32_t pos) {
  SubcontractRole& sc = p.worker.sc;
  Served& v = sc.served[static_cast<size_t>(pos)];
  ResultWriter discard(*v.segment);
  sc.serve[v.serve]->close(*v.segment, v.segment->state, discard);
  served_release(p, pos);
}

// Finds (or, for a packet, starts) the served segment of a request; -1 when it cannot be
// served: the service is not in providers.serve, or the table or pool is full.
int32_t served_find(LcorePlan& p, const geneve::Message& msg, uint16_t peer, uint64_t now) {
  SubcontractRole& sc = p.worker.sc;
  ServedKey key{msg.segment, msg.service, peer, 0};
  int32_t pos = rte_hash_lookup(sc.served_table, &key);
  if (pos >= 0) return pos;
  if (msg.kind != geneve::Kind::packet) return -1;
  uint32_t serve = 0;
  while (serve < sc.serve_ids.size() && sc.serve_ids[serve] != msg.service)
    ++serve;
  if (serve == sc.serve_ids.size()) return -1;
  void* obj = nullptr;
  if (rte_mempool_get(p.shared->segments, &obj) != 0) return -1;
  pos = rte_hash_add_key(sc.served_table, &key);
  if (pos < 0) {
    rte_mempool_put(p.shared->segments, obj);
    return -1;
  }
  auto* s = static_cast<Segment*>(obj);
  std::memset(static_cast<void*>(s), 0, offsetof(Segment, result));
  s->id = msg.segment;
  s->first_seq = msg.first_seq;
  s->first_tsc = s->last_tsc = now;
  s->reason = CloseReason::open;
  s->worker_open = true;
  s->result_len = 0;
  sc.serve[serve]->open(*s, s->state);
  Served& v = sc.served[static_cast<size_t>(pos)];
  v.segment = s;
  v.key = key;
  v.last_tsc = now;
  v.serve = serve;
  v.position = pos;
  v.active_pos = static_cast<uint32_t>(sc.served_active.size());
  sc.served_active.push_back(pos);
  return pos;
}

// A request from a peer: a packet is processed and goes back in the same mbuf; an end
// message gets the service's result. Refused ones go back unprocessed, flagged.
uint16_t serve_request(LcorePlan& p, rte_mbuf* m, const geneve::Decoded& d, uint32_t off,
                       uint16_t peer_i, uint64_t now, rte_mbuf** out) {
  const Shared& sh = *p.shared;
  SubcontractRole& sc = p.worker.sc;
  const PeerRuntime& peer = sh.peers[peer_i];
  PeerCounters& pc = p.counters.peers[peer_i];
  const uint8_t* frame = rte_pktmbuf_mtod(m, const uint8_t*);
  // The reply goes back the way the request came: to its source MAC and UDP port.
  geneve::Endpoints e = peer.request;
  std::memcpy(e.dst_mac.data(), frame + 6, 6);
  e.src_port = get16(frame + off - 8);
  geneve::Message r = d.message;
  r.reply = true;
  r.flags = 0;
  const int32_t pos = served_find(p, d.message, peer_i, now);
  const uint32_t outer = geneve::outer_bytes(e.family);

  if (d.message.kind == geneve::Kind::packet) {
    // The inner frame alone, then this provider's outer headers in front of it again.
    rte_pktmbuf_adj(m, static_cast<uint16_t>(off + d.payload_offset));
    if (rte_pktmbuf_pkt_len(m) > d.payload_len)
      rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_pkt_len(m) - d.payload_len));
    if (pos < 0) {
      r.flags |= geneve::flag_refused;
      pc.served_refused.add(1);
    } else {
      Served& v = sc.served[static_cast<size_t>(pos)];
      uint8_t verdict = 0;
      v.segment->packets++;
      v.segment->bytes += rte_pktmbuf_pkt_len(m);
      v.segment->last_tsc = now;
      v.last_tsc = now;
      sc.serve[v.serve]->process(*v.segment, v.segment->state, &m, 1, &verdict);
      if (verdict & verdict_drop) r.flags |= geneve::flag_dropped;
      pc.served_packets.add(1);
    }
    auto* head = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, static_cast<uint16_t>(outer)));
    if (head == nullptr) {  // no headroom left: cannot answer; the origin's timeout decides
      rte_pktmbuf_free(m);
      return 0;
    }
    geneve::encode(head, e, r, d.payload_len);
    geneve::set_udp_checksum(head, rte_pktmbuf_data_len(m));
    set_bypass(m, peer.port);
    out[0] = m;
    return 1;
  }

  // End: the result, in a message of its own.
  rte_pktmbuf_free(m);
  rte_mbuf* c = rte_pktmbuf_alloc(sh.pool);
  if (c == nullptr) {
    if (pos >= 0) served_end(p, pos);
    return 0;
  }
  const char* text = "";
  uint16_t len = 0;
  Segment* s = nullptr;
  if (pos < 0) {
    r.flags |= geneve::flag_refused;
    pc.served_refused.add(1);
  } else {
    s = sc.served[static_cast<size_t>(pos)].segment;
    ResultWriter w(*s);
    sc.serve[sc.served[static_cast<size_t>(pos)].serve]->close(*s, s->state, w);
    if (s->result_len >= segment_result_bytes) {
      r.flags |= geneve::flag_truncated;
    } else {
      text = s->result;
      len = s->result_len;
    }
    pc.served_segments.add(1);
  }
  auto* dst = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(c, static_cast<uint16_t>(outer + len)));
  if (dst != nullptr) {
    geneve::encode(dst, e, r, len);
    std::memcpy(dst + outer, text, len);
    geneve::set_udp_checksum(dst, outer + len);
  }
  if (s != nullptr) served_release(p, pos);  // the service closed above
  if (dst == nullptr) {
    rte_pktmbuf_free(c);
    return 0;
  }
  set_bypass(c, peer.port);
  out[0] = c;
  return 1;
}

// A reply from the peer a segment was subcontracted to.
uint16_t take_reply(LcorePlan& p, rte_mbuf* m, const geneve::Decoded& d, uint32_t off,
                    uint16_t peer_i, uint64_t now, rte_mbuf** out, uint32_t budget) {
  const Shared& sh = *p.shared;
  SubcontractRole& sc = p.worker.sc;
  const PeerRuntime& peer = sh.peers[peer_i];
  PeerCounters& pc = p.counters.peers[peer_i];
  const geneve::Message& msg = d.message;
  const uint32_t i = msg.handle & 0xffffff;
  Subcontract* u = nullptr;
  if (i < sc.subs.size() && sc.subs[i].segment != nullptr &&
      sc.subs[i].generation == msg.generation && sc.subs[i].peer == peer_i)
    u = &sc.subs[i];
  if (u == nullptr || (u->outcome != Outcome::pending && u->outcome != Outcome::returned)) {
    pc.replies_late.add(1);
    rte_pktmbuf_free(m);
    return 0;
  }
  if (msg.kind == geneve::Kind::end) {
    if (!u->end_sent || u->outcome != Outcome::pending) {
      pc.replies_late.add(1);
    } else if (msg.flags & geneve::flag_refused) {
      pc.segments_refused.add(1);
      fail_waiting(p, *u, Outcome::refused);
    } else if (msg.flags & geneve::flag_truncated) {
      pc.segments_returned.add(1);
      u->outcome = Outcome::returned;
      u->segment->result_len = segment_result_bytes;  // the record says services_truncated
    } else {
      const uint8_t* text = rte_pktmbuf_mtod_offset(m, const uint8_t*, off + d.payload_offset);
      const bool contiguous = rte_pktmbuf_data_len(m) >= off + d.payload_offset + d.payload_len;
      if (contiguous && append_result(*u->segment, peer, text, d.payload_len)) {
        pc.segments_returned.add(1);
        u->outcome = Outcome::returned;
      } else {
        pc.replies_bad.add(1);
        fail_waiting(p, *u, Outcome::bad);
      }
    }
    rte_pktmbuf_free(m);
    return drain(p, i, out, budget + 1);
  }
  const uint32_t slot = msg.slot;
  if (slot >= sc.held.size() || sc.held[slot].m == nullptr || sc.held[slot].sub != i ||
      sc.held[slot].generation != msg.generation || sc.held[slot].ready) {
    pc.replies_late.add(1);
    rte_pktmbuf_free(m);
    return 0;
  }
  Held& h = sc.held[slot];
  rte_mbuf* orig = h.m;
  const uint32_t inner_off = off + d.payload_offset;
  if (d.payload_len != rte_pktmbuf_pkt_len(orig) || rte_pktmbuf_data_len(m) < inner_off ||
      rte_pktmbuf_pkt_len(m) < inner_off + d.payload_len) {
    // Not the frame that was sent (services never change a length): wait on; the timeout
    // decides if nothing better comes.
    pc.replies_bad.add(1);
    rte_pktmbuf_free(m);
    return 0;
  }
  observe_round_trip(sh, pc, now > h.sent_tsc ? now - h.sent_tsc : 0);
  if (msg.flags & geneve::flag_refused) {
    fallback(p, orig, peer, pc);
    rte_pktmbuf_free(m);
  } else if (msg.flags & geneve::flag_dropped) {
    pc.packets_returned.add(1);
    packet_meta(orig)->flags |= meta_drop;
    p.counters.drops[static_cast<size_t>(Drop::service_drop)].add(1);
    rte_pktmbuf_free(m);
  } else {
    // The returned frame takes the original's place, with its metadata and number.
    rte_pktmbuf_adj(m, static_cast<uint16_t>(inner_off));
    if (rte_pktmbuf_pkt_len(m) > d.payload_len)
      rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_pkt_len(m) - d.payload_len));
    *packet_meta(m) = *packet_meta(orig);
    *rte_reorder_seqn(m) = *rte_reorder_seqn(orig);
    // What the input port said about the original, not what the link said about the
    // message; how each buffer is attached stays its own.
    constexpr uint64_t attach = RTE_MBUF_F_EXTERNAL | RTE_MBUF_F_INDIRECT;
    m->ol_flags = (m->ol_flags & attach) | (orig->ol_flags & ~attach);
    m->vlan_tci = orig->vlan_tci;
    m->vlan_tci_outer = orig->vlan_tci_outer;
    m->packet_type = orig->packet_type;
    m->port = orig->port;
    rte_pktmbuf_free(orig);
    h.m = m;
    pc.packets_returned.add(1);
  }
  h.ready = true;
  return drain(p, i, out, budget + 1);
}

}  // namespace

uint16_t subcontract_packets(LcorePlan& p, Segment& s, rte_mbuf** pkts, uint16_t n, uint64_t now,
                             rte_mbuf** out) {
  WorkerRole& w = p.worker;
  SubcontractRole& sc = w.sc;
  const Shared& sh = *p.shared;
  const uint16_t peer_i = w.sub_peer[s.profile];
  const PeerRuntime& peer = sh.peers[peer_i];
  PeerCounters& pc = p.counters.peers[peer_i];
  const size_t k = static_cast<size_t>(w.sub_pos[s.profile]);
  p.counters.services[s.profile][k].calls.add(1);
  p.counters.services[s.profile][k].packets.add(n);
  if (s.subcontract == 0) {
    const uint32_t i = sub_alloc(sc, s, peer_i);
    s.subcontract = i == none ? not_subcontracted : i + 1;
  }
  const uint32_t sub_index = s.subcontract == not_subcontracted ? none : s.subcontract - 1;
  Subcontract* u = subcontract_of(sc, s);
  uint16_t nout = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    if (packet_meta(m)->flags & meta_drop) {
      out[nout++] = m;  // dropped before the peer's part: freed in its place, never sent
      continue;
    }
    if (u != nullptr && u->outcome == Outcome::pending && !sc.held_free.empty()) {
      const uint32_t slot = sc.held_free.back();
      geneve::Message msg;
      msg.segment = s.id;
      msg.first_seq = s.first_seq;
      msg.index = u->sent;
      msg.service = w.sub_service[s.profile];
      msg.handle = (w.index << 24) | sub_index;
      msg.slot = slot;
      msg.generation = u->generation;
      if (rte_mbuf* c = make_request(sh, peer, m, msg)) {
        sc.held_free.pop_back();
        sc.held[slot] = Held{m, now, sub_index, u->generation, none, false};
        held_append(sc, *u, slot);
        ++u->sent;
        pc.packets_sent.add(1);
        out[nout++] = c;
        continue;
      }
    }
    // Not sent (no subcontract slot or held slot free, no mbuf, too long for the link, or
    // the peer already failed this segment): the fallback decides it now. While earlier
    // packets are still held it queues behind them, so what follows in the chain sees the
    // segment in order.
    fallback(p, m, peer, pc);
    if (u != nullptr && u->head != none && !sc.held_free.empty()) {
      const uint32_t slot = sc.held_free.back();
      sc.held_free.pop_back();
      sc.held[slot] = Held{m, now, sub_index, u->generation, none, true};
      held_append(sc, *u, slot);
      continue;
    }
    run_after(p, s, &m, 1);
    out[nout++] = m;
  }
  return nout;
}

uint16_t subcontract_close(LcorePlan& p, Segment& s, uint64_t now, rte_mbuf** out) {
  WorkerRole& w = p.worker;
  const Shared& sh = *p.shared;
  const size_t k = static_cast<size_t>(w.sub_pos[s.profile]);
  const uint16_t peer_i = w.sub_peer[s.profile];
  const PeerRuntime& peer = sh.peers[peer_i];
  PeerCounters& pc = p.counters.peers[peer_i];
  // The entries before the peer's report now, so its result follows theirs in the record.
  close_services(p, s, 0, k);
  if (s.subcontract == 0) {  // no packet reached the peer's part (cannot happen: one did)
    const uint32_t i = sub_alloc(w.sc, s, peer_i);
    s.subcontract = i == none ? not_subcontracted : i + 1;
  }
  Subcontract* u = subcontract_of(w.sc, s);
  if (u == nullptr) {
    pc.segments_refused.add(1);
    write_status(p, s, peer, "not_sent");
    p.counters.services[s.profile][k].segments.add(1);
    close_services(p, s, k + 1, w.chains[s.profile].size());
    s.subcontract = 0;
    record_segment(p, s);
    return 0;
  }
  const uint32_t i = s.subcontract - 1;
  u->closed = true;
  uint16_t nout = 0;
  if (u->outcome == Outcome::pending && u->sent == 0) {
    u->outcome = Outcome::empty;  // every packet was dropped before the peer's part
  } else if (u->outcome == Outcome::pending) {
    geneve::Message msg;
    msg.kind = geneve::Kind::end;
    msg.segment = s.id;
    msg.first_seq = s.first_seq;
    msg.index = u->sent;
    msg.service = w.sub_service[s.profile];
    msg.handle = (w.index << 24) | i;
    msg.slot = geneve::no_slot;
    msg.generation = u->generation;
    if (rte_mbuf* c = make_request(sh, peer, nullptr, msg)) {
      out[nout++] = c;
      u->end_sent = true;
      u->end_tsc = now;
      pc.segments_sent.add(1);
    } else {
      fail_waiting(p, *u, Outcome::not_sent);
    }
  }
  try_finish(p, i);
  return nout;
}

uint16_t tunnel_message(LcorePlan& p, rte_mbuf* m, uint64_t now, rte_mbuf** out, uint32_t budget) {
  const PacketMeta* meta = packet_meta(m);
  const uint32_t off = meta->flow_seq;
  const uint16_t peer_i = meta->mirror_port;
  PeerCounters& pc = p.counters.peers[peer_i];
  const uint8_t* frame = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint32_t dlen = rte_pktmbuf_data_len(m);
  // rx checked the message in its header window; here the headers must be in the first
  // segment, where the service and the reply work on them.
  geneve::Decoded d;
  bool ok = off >= 8 && dlen >= off + 8 && dlen >= off + 8 + uint32_t{frame[off] & 0x3fu} * 4u;
  if (ok) {
    const uint32_t udp_len = get16(frame + off - 4);
    ok = udp_len >= 8 && off - 8 + udp_len <= rte_pktmbuf_pkt_len(m) &&
         geneve::decode(frame + off, udp_len - 8, d) == geneve::Error::none &&
         off + d.payload_offset <= dlen;
  }
  if (!ok) {
    pc.replies_bad.add(1);
    rte_pktmbuf_free(m);
    return 0;
  }
  if (d.message.reply) return take_reply(p, m, d, off, peer_i, now, out, budget);
  return serve_request(p, m, d, off, peer_i, now, out);
}

uint16_t subcontract_scan(LcorePlan& p, uint64_t now, rte_mbuf** out, uint32_t budget) {
  SubcontractRole& sc = p.worker.sc;
  const Shared& sh = *p.shared;
  uint16_t nout = 0;
  for (unsigned k = 0; k < scan_budget && !sc.active.empty(); ++k) {
    if (sc.scan_next >= sc.active.size()) sc.scan_next = 0;
    const uint32_t i = sc.active[sc.scan_next];
    Subcontract& u = sc.subs[i];
    // A packet's reply can be lost even when the result came back (a full ring on the
    // way): its held packets time out too, or they would hold the stream for ever.
    if (u.outcome == Outcome::pending || u.outcome == Outcome::returned) {
      // The oldest message still unanswered: the first held packet not returned, else the
      // end message. Replies come in order, so this is almost always the head.
      uint64_t oldest = 0;
      bool waiting = false;
      for (uint32_t slot = u.head; slot != none; slot = sc.held[slot].next) {
        if (!sc.held[slot].ready) {
          oldest = sc.held[slot].sent_tsc;
          waiting = true;
          break;
        }
      }
      if (!waiting && u.end_sent && u.outcome == Outcome::pending) {
        oldest = u.end_tsc;
        waiting = true;
      }
      if (waiting && now - oldest > sh.peers[u.peer].timeout_tsc) {
        if (u.outcome == Outcome::pending) {
          p.counters.peers[u.peer].segments_timed_out.add(1);
          fail_waiting(p, u, Outcome::timeout);
        } else {
          fail_waiting(p, u, Outcome::returned);  // the result stays; the lost packets pass
        }
      }
    }
    const size_t before = sc.active.size();
    nout = static_cast<uint16_t>(nout + drain(p, i, out + nout, budget - nout));
    // A finished one was replaced by the last: look at that one next.
    if (sc.active.size() == before) ++sc.scan_next;
  }
  // Served segments whose origin went quiet (it timed out, or stopped) are let go.
  for (unsigned k = 0; k < scan_budget && !sc.served_active.empty(); ++k) {
    if (sc.served_scan_next >= sc.served_active.size()) sc.served_scan_next = 0;
    const int32_t pos = sc.served_active[sc.served_scan_next];
    if (now - sc.served[static_cast<size_t>(pos)].last_tsc > sh.served_idle_tsc) {
      served_end(p, pos);
    } else {
      ++sc.served_scan_next;
    }
  }
  return nout;
}

bool subcontracts_idle(const LcorePlan& p) {
  return p.worker.sc.active.empty();
}

void served_flush(LcorePlan& p) {
  SubcontractRole& sc = p.worker.sc;
  while (!sc.served_active.empty())
    served_end(p, sc.served_active.back());
}

Status subcontract_init(LcorePlan& p, const config::Config& config, rte_mempool*) {
  SubcontractRole& sc = p.worker.sc;
  const uint32_t hold = config.providers.hold;
  const int socket = lcore_socket(p.lcore);
  const Error no_memory{"cannot allocate the subcontracting state of lcore " +
                        std::to_string(p.lcore) + ": raise eal.memory or lower providers.hold"};
  if (!sc.held.init(hold, socket) || !sc.subs.init(hold, socket) ||
      !sc.held_free.init(0, socket, hold) || !sc.subs_free.init(0, socket, hold) ||
      !sc.active.init(0, socket, hold))
    return no_memory;
  for (uint32_t i = hold; i-- > 0;) {
    sc.held_free.push_back(i);
    sc.subs_free.push_back(i);
  }
  if (config.providers.serve.empty()) return {};
  rte_hash_parameters hp{};
  const std::string name = "segx_served_" + std::to_string(p.lcore);
  hp.name = name.c_str();
  hp.entries = hold;
  hp.key_len = sizeof(ServedKey);
  hp.hash_func = rte_hash_crc;
  hp.socket_id = socket;
  sc.served_table = rte_hash_create(&hp);
  if (sc.served_table == nullptr) {
    return Error{"cannot create the served-segment table of lcore " + std::to_string(p.lcore) +
                 ": " + rte_strerror(rte_errno)};
  }
  const size_t positions = static_cast<size_t>(rte_hash_max_key_id(sc.served_table)) + 1;
  if (!sc.served.init(positions, socket) || !sc.served_active.init(0, socket, positions))
    return no_memory;
  const ServiceRegistry& reg = ServiceRegistry::instance();
  for (const config::ServiceConfig& s : config.providers.serve) {
    const ServiceFactory* f = reg.find(s.name);
    if (f == nullptr) return Error{s.path + ": no service '" + s.name + "' in this build"};
    auto service = f->create(s, config);
    if (!service) return Error{s.path + ": " + service.error()};
    if (service.value()->state_size() > segment_state_bytes)
      return Error{s.path + ": the service needs more state than a segment has"};
    sc.serve.push_back(std::move(service).value());
    sc.serve_ids.push_back(geneve::service_id(s.name));
  }
  return {};
}

void subcontract_free(LcorePlan& p) {
  if (p.worker.sc.served_table) rte_hash_free(p.worker.sc.served_table);
  p.worker.sc.served_table = nullptr;
}

}  // namespace segx::dataplane
