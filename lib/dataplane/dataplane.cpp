// Dataplane's life: start (ports, links, lcores), stop (the drain in order, the report),
// and the start-up banner's lcore lines. Building is in build.cpp, counters in collect.cpp,
// records in records.cpp, blocks and the control loop's poll in schedule.cpp.

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_reorder.h>

#include <chrono>
#include <thread>

#include "dataplane/dataplane_impl.hpp"

namespace segx::dataplane {

namespace {

std::string role_names(uint8_t roles) {
  std::string out;
  if (roles & config::role_rx) out += "rx ";
  if (roles & config::role_worker) out += "worker ";
  if (roles & config::role_tx) out += "tx ";
  if (!out.empty()) out.pop_back();
  return out;
}

std::string describe_link(const rte_eth_link& link) {
  if (!link.link_status) return "link down";
  char text[RTE_ETH_LINK_MAX_STR_LEN];
  rte_eth_link_to_str(text, sizeof text, &link);
  return text;
}

}  // namespace

Dataplane::Dataplane(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dataplane::~Dataplane() = default;

Status Dataplane::start(std::vector<std::string>& link_status) {
  Impl& d = *impl_;
  for (size_t i = 0; i < d.port_ids.size(); ++i) {
    const config::PortConfig& p = d.config.ports[i];
    if (int ret = rte_eth_dev_start(d.port_ids[i]); ret != 0) {
      return Error{"port '" + p.name + "' (" + p.device + "): start failed: " + rte_strerror(-ret)};
    }
    d.port_started[i] = true;
    if (p.promiscuous) {
      // Virtual devices without the notion answer ENOTSUP; that is not a failure.
      int ret = rte_eth_promiscuous_enable(d.port_ids[i]);
      if (ret != 0 && ret != -ENOTSUP) {
        return Error{"port '" + p.name +
                     "': cannot enable promiscuous mode: " + rte_strerror(-ret)};
      }
    }
  }
  // Links come up a moment after start (a NIC negotiating, a memif peer connecting);
  // sending before that would only drop. All ports are waited for at once.
  const auto begin = std::chrono::steady_clock::now();
  std::vector<rte_eth_link> links(d.port_ids.size());
  while (true) {
    bool waiting = false;
    for (size_t i = 0; i < d.port_ids.size(); ++i) {
      links[i] = {};
      if (rte_eth_link_get_nowait(d.port_ids[i], &links[i]) != 0) continue;
      waiting = waiting || (!links[i].link_status &&
                            std::chrono::steady_clock::now() - begin < d.config.ports[i].link_wait);
    }
    if (!waiting) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (size_t i = 0; i < d.port_ids.size(); ++i) {
    const config::PortConfig& p = d.config.ports[i];
    std::string line = "port " + p.name + " (" + p.device + "): " + describe_link(links[i]);
    if (!links[i].link_status) {
      line += " after " + config::format_duration(p.link_wait) +
              "; packets sent to it are dropped and counted until it comes up";
    }
    link_status.push_back(line);
  }
  for (auto& plan : d.plans) {
    if (int ret = rte_eal_remote_launch(lcore_main, plan.get(), plan->lcore); ret != 0) {
      return Error{"cannot launch lcore " + std::to_string(plan->lcore) + ": " +
                   rte_strerror(-ret)};
    }
    d.launched = true;
  }
  return {};
}

Report Dataplane::stop() {
  return impl_->stop();
}

Report Dataplane::Impl::stop() {
  if (stopped) return report;
  stopped = true;
  shared.stop_rx.store(true, std::memory_order_release);
  if (launched) {
    for (auto& plan : plans)
      rte_eal_wait_lcore(plan->lcore);
  }
  Report r;
  // Before any port closes: peers over shared memory stop polling what our close unmaps.
  r.tunnel_leftover = say_goodbye();
  // Blocks still active end with the run.
  if (metering) {
    for (const std::string& id : metering->active()) {
      auto u = metering->deactivate(id);
      if (u) block_usage.push_back(u.value());
    }
  }
  r.blocks = block_usage;
  r.blocks_expired = blocks_expired;
  write_records();
  r.records = records_written;
  if (record_socket) {
    record_socket->flush();
    r.records_socket_sent = record_socket->sent();
    r.records_socket_dropped = record_socket->dropped();
  }
  // The lcores have stopped and the ports are still open: these counters are final. The
  // report keeps what is not zero; metrics and telemetry get everything.
  auto final_stats = std::make_shared<Stats>(collect());
  const Stats& s = *final_stats;
  for (const PortStats& p : s.ports)
    r.ports.push_back(p.counters);
  for (const RingStats& ring : s.rings)
    r.rings.push_back(RingReport{ring.name, ring.capacity, ring.enqueued});
  for (ProfileReport p : s.profiles) {
    std::erase_if(p.closed_by, [](const auto& kv) { return kv.second == 0; });
    r.profiles.push_back(std::move(p));
  }
  for (const auto& [reason, n] : s.drops) {
    if (n != 0) r.drops[reason] = n;
  }
  for (const auto& [event, n] : s.events) {
    if (n != 0) r.events[event] = n;
  }
  r.received = s.received;
  r.transmitted = s.transmitted;
  r.peers = s.peers;
  // A peer's reply that arrived after its worker had finished is still in a ring: free it.
  for (rte_ring* ring : rings) {
    void* e = nullptr;
    while (rte_ring_dequeue(ring, &e) == 0) {
      if (is_close_event(e)) continue;
      rte_pktmbuf_free(static_cast<rte_mbuf*>(e));
      ++r.tunnel_leftover;
    }
  }
  for (const auto& plan : plans) {
    for (uint64_t n : plan->tx.in_flight)
      r.reorder_stranded += n;
  }
  r.tsc_hz = rte_get_tsc_hz();
  for (const LcorePlan* plan : shared.rx_lcores)
    r.lcores.push_back(LcoreReport{plan->lcore, plan->counters.rx_packets.get()});
#ifdef SEGX_STAGE_CYCLES
  for (size_t k = 0; k < stage_count; ++k) {
    StageCyclesReport sc{std::string(stage_name(static_cast<Stage>(k))), 0};
    for (const auto& plan : plans)
      sc.cycles += plan->counters.stage_clock.cycles[k].get();
    r.stage_cycles.push_back(std::move(sc));
  }
#endif
  // Packets a bug left in a reorder buffer go back to the pool with the buffer.
  for (auto& plan : plans) {
    for (rte_reorder_buffer*& b : plan->tx.reorder) {
      rte_reorder_free(b);
      b = nullptr;
    }
    plan->tx.reorder.clear();
  }
  // Closing releases the mbufs the devices hold in their descriptor rings, so the pool's
  // in-use count is only meaningful after every port is closed.
  for (size_t i = 0; i < port_ids.size(); ++i) {
    if (port_started[i]) rte_eth_dev_stop(port_ids[i]);
    if (port_open[i]) rte_eth_dev_close(port_ids[i]);
    port_started[i] = port_open[i] = false;
  }
  r.mempool_size = pool->size;
  r.mempool_in_use = rte_mempool_in_use_count(pool);
  r.segments_in_use = rte_mempool_in_use_count(segments);
  final_stats->mempool_in_use = r.mempool_in_use;
  final_stats->segments_in_use = r.segments_in_use;
  exchange->publish(std::move(final_stats), UINT64_MAX, true);
  report = r;
  return report;
}

std::vector<std::string> Dataplane::describe_lcores() const {
  std::vector<std::string> out;
  for (const auto& plan : impl_->plans) {
    std::string line = "lcore " + std::to_string(plan->lcore) + ": " + role_names(plan->roles);
    if (plan->rtc) line += " (run to completion)";
    for (const RxQueue& q : plan->rx.queues) {
      line += ", polls " + impl_->config.ports[q.port_index].name + "/" + std::to_string(q.queue);
    }
    out.push_back(line);
  }
  if (!impl_->shared.peers.empty()) {
    out.push_back("subcontracting: " + std::to_string(impl_->shared.peers.size()) +
                  " peer(s), reorder window " + std::to_string(impl_->shared.reorder_window) +
                  " packets, " + std::to_string(impl_->config.providers.hold) +
                  " held packets per worker");
  }
  const auto& c = *impl_->classifier;
  out.push_back("classifier: " + std::to_string(impl_->config.profiles.size()) + " profile(s), " +
                std::to_string(c.rules4()) + " IPv4 and " + std::to_string(c.rules6()) +
                " IPv6 rule(s)");
  return out;
}

}  // namespace segx::dataplane
