// Peer links over shared memory (net_memif): a goodbye before a disconnect.
//
// DPDK 22.11's memif PMD unmaps the shared regions when the peer disconnects, from its
// interrupt thread, while the local lcore may be inside rte_eth_rx_burst on them: the side
// that stays crashed in about 1 stop in 25. So the side that stops says goodbye first and
// disconnects only once the peer has answered that it no longer touches the link:
//
// - stopping (Impl::say_goodbye, main lcore, the data-plane lcores already finished, ports
//   still open): a GENEVE goodbye request to each peer of each memif link that is up, then
//   up to goodbye_wait polling those links for the peers' goodbye replies;
// - the peer: its rx role passes the goodbye to the main lcore (LcorePlan::goodbye_ports),
//   which marks the port quiet (Shared::link_quiet, a new quiet_epoch); every lcore applies
//   the epoch at the top of its loop turn and from then on neither polls nor sends on the
//   port (what it would send is freed and counted as the port's tx_dropped); once every
//   lcore has applied it, the main lcore sends the goodbye reply on the port's queue 0,
//   which no lcore uses any more. The port stays quiet until its link has been down for a
//   while (the peer disconnected; the PMD clears its connected flag before it unmaps) or,
//   failing that, for quiet_most.
//
// Other links (af_packet, NICs) do not need this: their PMDs survive the peer going away.

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "dataplane/dataplane_impl.hpp"

namespace segx::dataplane {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// How long a stopping provider waits for its peers' goodbye replies.
constexpr auto goodbye_wait = 1000ms;
// A quiet link goes back to normal once it has been down this long (the disconnect is over),
constexpr auto quiet_after_down = 100ms;
// or at the latest after this long.
constexpr auto quiet_most = 5s;

// A goodbye request or reply to a peer, from the pool; null when no mbuf is free.
rte_mbuf* goodbye_message(const Shared& sh, const PeerRuntime& peer, bool reply) {
  rte_mbuf* m = rte_pktmbuf_alloc(sh.pool);
  if (m == nullptr) return nullptr;
  const uint32_t len = geneve::outer_bytes(peer.request.family);
  auto* frame = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(len)));
  if (frame == nullptr) {
    rte_pktmbuf_free(m);
    return nullptr;
  }
  geneve::Message msg;
  msg.reply = reply;
  msg.kind = geneve::Kind::goodbye;
  geneve::encode(frame, peer.request, msg, 0);
  geneve::set_udp_checksum(frame, len);
  return m;
}

// Sends one frame on queue 0 of a port no lcore touches; false when it was not taken.
bool send_alone(uint16_t port_id, rte_mbuf* m) {
  if (m == nullptr) return false;
  if (rte_eth_tx_burst(port_id, 0, &m, 1) == 1) return true;
  rte_pktmbuf_free(m);
  return false;
}

// What a frame received on a peer link is to the main lcore.
enum class LinkFrame { other, goodbye, goodbye_reply };

// Classifies a frame of configured port `port`; `peer` is the peer a goodbye came from.
LinkFrame classify(const Shared& sh, size_t port, const rte_mbuf* m, size_t& peer) {
  uint8_t copy[parse_window];
  const uint32_t frame_len = rte_pktmbuf_pkt_len(m);
  const uint32_t window = frame_len < parse_window ? frame_len : parse_window;
  const auto* data = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, window, copy));
  if (data == nullptr) return LinkFrame::other;
  PacketInfo info;
  if (parse_frame(data, window, frame_len, info, ParseOptions{}) != ParseError::none)
    return LinkFrame::other;
  if (info.proto != 17 || info.dst_port != geneve::udp_port || info.family != sh.family ||
      std::memcmp(info.dst.data(), sh.address.data(), 16) != 0 || info.l4_payload_offset >= window)
    return LinkFrame::other;
  for (peer = 0; peer < sh.peers.size(); ++peer) {
    if (sh.peers[peer].port == port &&
        std::memcmp(sh.peers[peer].request.dst.data(), info.src.data(), 16) == 0)
      break;
  }
  if (peer == sh.peers.size()) return LinkFrame::other;
  const uint32_t avail = window - info.l4_payload_offset;
  geneve::Decoded d;
  if (geneve::decode(data + info.l4_payload_offset,
                     info.l4_payload_len < avail ? info.l4_payload_len : avail,
                     d) != geneve::Error::none ||
      d.message.kind != geneve::Kind::goodbye)
    return LinkFrame::other;
  return d.message.reply ? LinkFrame::goodbye_reply : LinkFrame::goodbye;
}

}  // namespace

std::vector<std::string> Dataplane::Impl::poll_links() {
  std::vector<std::string> log;
  if (shared.peers.empty()) return log;
  uint32_t goodbyes = 0;
  for (const auto& plan : plans)
    goodbyes |= plan->goodbye_ports.exchange(0, std::memory_order_acq_rel);
  const auto now = Clock::now();
  for (size_t port = 0; port < links.size(); ++port) {
    LinkState& l = links[port];
    const std::string name = config.ports[port].name;
    if ((goodbyes >> port & 1u) && l.state == LinkState::State::open && port_shared_memory[port]) {
      shared.link_quiet[port].store(true, std::memory_order_relaxed);
      l.epoch = shared.quiet_epoch.fetch_add(1, std::memory_order_acq_rel) + 1;
      l.state = LinkState::State::quieting;
      log.push_back("peer link " + name +
                    ": the peer is stopping; not polled or sent on until it disconnects");
    }
    if (l.state == LinkState::State::quieting) {
      bool applied = true;
      for (const auto& plan : plans) {
        const uint32_t seen = plan->quiet_seen.load(std::memory_order_acquire);
        applied = applied && static_cast<int32_t>(seen - l.epoch) >= 0;
      }
      if (!applied) continue;
      for (const PeerRuntime& peer : shared.peers) {
        if (peer.port == port) send_alone(port_ids[port], goodbye_message(shared, peer, true));
      }
      l.state = LinkState::State::quiet;
      l.since = now;
      l.down_seen = false;
    }
    if (l.state == LinkState::State::quiet) {
      rte_eth_link link{};
      const bool down = rte_eth_link_get_nowait(port_ids[port], &link) == 0 && !link.link_status;
      if (down && !l.down_seen) l.down_since = now;
      l.down_seen = down;
      if ((l.down_seen && now - l.down_since >= quiet_after_down) || now - l.since >= quiet_most) {
        shared.link_quiet[port].store(false, std::memory_order_relaxed);
        shared.quiet_epoch.fetch_add(1, std::memory_order_acq_rel);
        l.state = LinkState::State::open;
        log.push_back("peer link " + name + ": polled again");
      }
    }
  }
  return log;
}

uint64_t Dataplane::Impl::say_goodbye() {
  std::vector<bool> waiting(shared.peers.size(), false);
  std::vector<size_t> ports;
  for (size_t port = 0; port < port_ids.size(); ++port) {
    if (!port_shared_memory[port] || !port_started[port] ||
        links[port].state != LinkState::State::open || config.ports[port].tx_queues == 0)
      continue;
    rte_eth_link link{};
    if (rte_eth_link_get_nowait(port_ids[port], &link) != 0 || !link.link_status) continue;
    bool any = false;
    for (size_t k = 0; k < shared.peers.size(); ++k) {
      if (shared.peers[k].port != port) continue;
      waiting[k] = send_alone(port_ids[port], goodbye_message(shared, shared.peers[k], false));
      any = any || waiting[k];
    }
    if (any) ports.push_back(port);
  }
  uint64_t freed = 0;
  const auto deadline = Clock::now() + goodbye_wait;
  const auto any_waiting = [&] {
    for (bool w : waiting)
      if (w) return true;
    return false;
  };
  while (any_waiting() && Clock::now() < deadline) {
    for (size_t port : ports) {
      for (uint16_t q = 0; q < config.ports[port].rx_queues; ++q) {
        rte_mbuf* pkts[32];
        const uint16_t n = rte_eth_rx_burst(port_ids[port], q, pkts, 32);
        for (uint16_t i = 0; i < n; ++i) {
          size_t peer = 0;
          switch (classify(shared, port, pkts[i], peer)) {
            case LinkFrame::goodbye_reply:
              waiting[peer] = false;
              break;
            case LinkFrame::goodbye:  // it stops too: nothing here polls any more
              send_alone(port_ids[port], goodbye_message(shared, shared.peers[peer], true));
              break;
            case LinkFrame::other:
              ++freed;  // a late message of the peer's
              break;
          }
          rte_pktmbuf_free(pkts[i]);
        }
      }
    }
    std::this_thread::sleep_for(1ms);
  }
  return freed;
}

}  // namespace segx::dataplane
