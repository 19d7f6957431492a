#pragma once
// Internal: a worker's subcontracting state and the calls between the worker and
// subcontract.cpp (docs/architecture.md, "Subcontracting"). Everything is sized at start.

#include <rte_hash.h>
#include <rte_mbuf.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "common/result.hpp"
#include "config/config.hpp"
#include "dataplane/lcore_array.hpp"
#include "dataplane/segment.hpp"
#include "dataplane/service.hpp"

namespace segx::dataplane {

/// A packet a worker holds while a peer processes its copy; the held list of a
/// subcontract links them in flow order.
struct Held {
  rte_mbuf* m = nullptr;
  uint64_t sent_tsc = 0;
  uint32_t sub = 0;         ///< subcontract slot
  uint32_t generation = 0;  ///< of that slot when this packet was sent
  uint32_t next = 0;        ///< next held slot of the subcontract, or none
  bool ready = false;       ///< returned (or decided by the fallback): releasable in turn
};

/// How a subcontract ended.
enum class Outcome : uint8_t {
  pending,   ///< the peer's result is awaited
  returned,  ///< the result arrived in time
  timeout,   ///< the peer did not answer in time: the fallback applied
  refused,   ///< the peer does not serve the service (or was full): the fallback applied
  not_sent,  ///< the end message could not be sent (no mbuf)
  bad,       ///< the result could not be read
  empty,     ///< no packet was left to send (all dropped before the peer's part)
};

/// One segment (or the part of it after a chain's local services) subcontracted to a peer.
struct Subcontract {
  Segment* segment = nullptr;  ///< null: the slot is free
  uint32_t generation = 0;
  uint32_t head = 0, tail = 0;  ///< held list, flow order; `none` when empty
  uint32_t sent = 0;            ///< packets sent (the next packet's index)
  uint32_t active_pos = 0;      ///< position in SubcontractRole::active
  uint64_t end_tsc = 0;         ///< when the end message went out
  uint16_t peer = 0;
  bool closed = false;    ///< the segment's close event came
  bool end_sent = false;  ///< the end message went out
  Outcome outcome = Outcome::pending;
};

/// What identifies a segment a peer subcontracted here. Hashed as raw bytes.
struct ServedKey {
  uint64_t segment;  ///< the origin's segment id
  uint32_t service;  ///< geneve::service_id()
  uint16_t peer;     ///< peer index
  uint16_t zero;
};
static_assert(sizeof(ServedKey) == 16);

/// A segment a peer subcontracted to this provider, being served.
struct Served {
  Segment* segment = nullptr;  ///< from this provider's pool; null when free
  ServedKey key{};
  uint64_t last_tsc = 0;
  uint32_t serve = 0;  ///< index in providers.serve
  uint32_t active_pos = 0;
  int32_t position = -1;  ///< in the serve table
};

/// A worker's subcontracting state, all sized at start: packets held for peers, outstanding
/// subcontracts, and segments it serves for peers.
struct SubcontractRole {
  static constexpr uint32_t none = 0xffffffff;
  LcoreArray<Held> held;
  LcoreArray<uint32_t> held_free;  ///< stack of free held slots
  LcoreArray<Subcontract> subs;
  LcoreArray<uint32_t> subs_free;
  LcoreArray<uint32_t> active;  ///< outstanding subcontract slots, for the timeout scan
  size_t scan_next = 0;
  // Served side.
  rte_hash* served_table = nullptr;  ///< (peer, origin segment, service) -> position
  LcoreArray<Served> served;         ///< by table position
  LcoreArray<int32_t> served_active;
  size_t served_scan_next = 0;
  std::vector<std::unique_ptr<Service>> serve;  ///< providers.serve, this worker's instances
  std::vector<uint32_t> serve_ids;              ///< their geneve::service_id()
};

struct LcorePlan;

/// Worker: packets of a subcontracted segment after the chain's local entries before the
/// subcontracted one. Each is held and a copy sent to the peer (written to out), or, when
/// that cannot be, decided by the fallback. Returns the outputs written.
uint16_t subcontract_packets(LcorePlan& p, Segment& s, rte_mbuf** pkts, uint16_t n, uint64_t now,
                             rte_mbuf** out);
/// Worker: a subcontracted segment's close event. May write the end message to out (returns
/// how many outputs, 0 or 1).
uint16_t subcontract_close(LcorePlan& p, Segment& s, uint64_t now, rte_mbuf** out);
/// Worker: a tunnel message from a peer (a reply, or a request to serve). Writes at most
/// 1 + budget outputs; returns how many.
uint16_t tunnel_message(LcorePlan& p, rte_mbuf* m, uint64_t now, rte_mbuf** out, uint32_t budget);
/// Worker, every loop turn: times out subcontracts the peer left unanswered, releases held
/// packets in order as room allows, ends served segments idle too long. Returns outputs.
uint16_t subcontract_scan(LcorePlan& p, uint64_t now, rte_mbuf** out, uint32_t budget);
/// Worker: nothing held for a peer and no subcontract outstanding.
bool subcontracts_idle(const LcorePlan& p);
/// Worker, at stop: ends every served segment (its service state is released).
void served_flush(LcorePlan& p);
/// Creates the worker's subcontracting state (sizes from providers.hold).
Status subcontract_init(LcorePlan& p, const config::Config& config, rte_mempool* segments);
/// Frees what subcontract_init made.
void subcontract_free(LcorePlan& p);

}  // namespace segx::dataplane
