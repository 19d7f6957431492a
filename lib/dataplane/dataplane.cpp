#include "dataplane/dataplane.hpp"

#include <chrono>
#include <thread>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dataplane/packet_meta.hpp"
#include "dataplane/pipeline.hpp"
#include "dataplane/ports.hpp"

namespace segx::dataplane {

struct Dataplane::Impl {
  config::Config config;
  rte_mempool* pool = nullptr;
  std::vector<uint16_t> port_ids;  // by configured port index
  std::vector<bool> port_started;
  std::vector<bool> port_open;
  std::vector<rte_ring*> rings;  // by ring index: workers first, then tx lcores
  std::vector<std::string> ring_names;
  std::vector<std::unique_ptr<LcorePlan>> plans;
  Shared shared;
  bool launched = false;
  bool stopped = false;
  Report report;

  ~Impl() {
    if (!stopped) stop();
    for (rte_ring* r : rings)
      rte_ring_free(r);
    rte_mempool_free(pool);
  }

  Status build_rings_and_plans();
  Report stop();
};

namespace {

std::string role_names(uint8_t roles) {
  std::string out;
  if (roles & config::role_rx) out += "rx ";
  if (roles & config::role_worker) out += "worker ";
  if (roles & config::role_tx) out += "tx ";
  if (!out.empty()) out.pop_back();
  return out;
}

rte_ring* make_ring(const std::string& name, uint32_t size, bool single_producer) {
  // EXACT_SZ: a ring of 4096 holds 4096 entries, as the operator wrote.
  unsigned flags = RING_F_EXACT_SZ | RING_F_SC_DEQ;
  if (single_producer) flags |= RING_F_SP_ENQ;
  return rte_ring_create(name.c_str(), size, static_cast<int>(rte_socket_id()), flags);
}

}  // namespace

Status Dataplane::Impl::build_rings_and_plans() {
  const config::PipelineConfig& pl = config.pipeline;
  std::vector<LcorePlan*> rx, workers, tx;
  for (const config::LcoreConfig& lc : pl.lcores) {
    auto plan = std::make_unique<LcorePlan>();
    plan->lcore = lc.lcore;
    plan->roles = lc.roles;
    plan->shared = &shared;
    if (lc.roles & config::role_rx) rx.push_back(plan.get());
    if (lc.roles & config::role_worker) workers.push_back(plan.get());
    if (lc.roles & config::role_tx) tx.push_back(plan.get());
    plans.push_back(std::move(plan));
  }
  if (workers.size() + tx.size() > max_rings) return Error{"too many worker and tx lcores"};
  shared.burst = pl.burst;
  shared.rx_lcores = rx;
  shared.worker_lcores = workers;

  for (LcorePlan* w : workers) {
    const std::string name = "worker" + std::to_string(w->lcore);
    rte_ring* r = make_ring("segx_" + name, pl.ring_size, rx.size() == 1);
    if (r == nullptr) {
      return Error{"cannot create ring " + name + ": " + rte_strerror(rte_errno)};
    }
    w->worker_in = r;
    rings.push_back(r);
    ring_names.push_back(name);
  }
  for (size_t k = 0; k < tx.size(); ++k) {
    LcorePlan* t = tx[k];
    size_t producers = 0;
    for (size_t i = 0; i < workers.size(); ++i)
      producers += (i % tx.size() == k);
    const std::string name = "tx" + std::to_string(t->lcore);
    rte_ring* r = make_ring("segx_" + name, pl.ring_size, producers == 1);
    if (r == nullptr) {
      return Error{"cannot create ring " + name + ": " + rte_strerror(rte_errno)};
    }
    t->tx_in = r;
    t->tx_queue = static_cast<uint16_t>(k);
    t->port_ids = port_ids;
    t->tx_buckets.assign(port_ids.size() * pl.burst, nullptr);
    t->tx_counts.assign(port_ids.size(), 0);
    rings.push_back(r);
    ring_names.push_back(name);
  }
  // Worker i feeds tx lcore i mod T, so each worker's output keeps one order.
  for (size_t i = 0; i < workers.size(); ++i) {
    workers[i]->worker_out_index = static_cast<unsigned>(workers.size() + i % tx.size());
    workers[i]->worker_out = rings[workers[i]->worker_out_index];
  }
  // Rx queues are spread over rx lcores in order; all packets of one queue go to one
  // worker, which keeps each flow (pinned to a queue by the NIC's RSS) in order.
  unsigned j = 0;
  for (size_t port = 0; port < config.ports.size(); ++port) {
    for (uint16_t q = 0; q < config.ports[port].rx_queues; ++q, ++j) {
      const unsigned w = j % static_cast<unsigned>(workers.size());
      LcorePlan* r = rx[j % rx.size()];
      r->rx_queues.push_back(
          {port_ids[port], q, config.default_output_index(port), workers[w]->worker_in, w});
    }
  }
  return {};
}

Result<std::unique_ptr<Dataplane>> Dataplane::create(const config::Config& config) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  if (config.ports.size() > max_ports) {
    return Error{"at most " + std::to_string(max_ports) + " ports are supported"};
  }
  if (!register_packet_meta()) {
    return Error{std::string("cannot register the mbuf dynamic field: ") + rte_strerror(rte_errno)};
  }
  const config::MempoolConfig& mp = config.pipeline.mempool;
  impl->pool = rte_pktmbuf_pool_create("segx_mbufs", mp.size, mp.cache, 0,
                                       static_cast<uint16_t>(mp.data_room),
                                       static_cast<int>(rte_socket_id()));
  if (impl->pool == nullptr) {
    return Error{"cannot create the mbuf pool (" + std::to_string(mp.size) + " mbufs of " +
                 std::to_string(mp.data_room) + " bytes): " + rte_strerror(rte_errno) +
                 "; raise eal.memory or lower pipeline.mempool.size"};
  }
  for (const config::PortConfig& p : config.ports) {
    auto id = configure_port(p, impl->pool);
    if (!id) return Error{id.error()};
    impl->port_ids.push_back(id.value());
    impl->port_open.push_back(true);
    impl->port_started.push_back(false);
  }
  if (Status s = impl->build_rings_and_plans(); !s) return Error{s.error()};
  return std::unique_ptr<Dataplane>(new Dataplane(std::move(impl)));
}

Dataplane::Dataplane(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dataplane::~Dataplane() = default;

namespace {

std::string describe_link(const rte_eth_link& link) {
  if (!link.link_status) return "link down";
  char text[RTE_ETH_LINK_MAX_STR_LEN];
  rte_eth_link_to_str(text, sizeof text, &link);
  return text;
}

}  // namespace

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

uint64_t Dataplane::received() const {
  uint64_t n = 0;
  for (const auto& plan : impl_->plans)
    n += plan->counters.rx_packets.get();
  return n;
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
  for (size_t i = 0; i < port_ids.size(); ++i) {
    PortReport pr;
    pr.name = config.ports[i].name;
    pr.device = config.ports[i].device;
    rte_eth_stats st{};
    if (rte_eth_stats_get(port_ids[i], &st) == 0) {
      pr.rx_packets = st.ipackets;
      pr.rx_bytes = st.ibytes;
      pr.rx_missed = st.imissed;
      pr.rx_errors = st.ierrors;
      pr.rx_nombuf = st.rx_nombuf;
      pr.tx_packets = st.opackets;
      pr.tx_bytes = st.obytes;
      pr.tx_errors = st.oerrors;
    }
    for (const auto& plan : plans)
      pr.tx_dropped += plan->counters.tx_dropped[i].get();
    r.ports.push_back(pr);
  }
  for (size_t k = 0; k < rings.size(); ++k) {
    RingReport rr;
    rr.name = ring_names[k];
    rr.capacity = rte_ring_get_capacity(rings[k]);
    for (const auto& plan : plans) {
      rr.enqueued += plan->counters.ring_enqueued[k].get();
      rr.dropped_full += plan->counters.ring_full[k].get();
    }
    r.rings.push_back(rr);
  }
  for (const auto& plan : plans) {
    r.received += plan->counters.rx_packets.get();
    r.default_drops += plan->counters.default_drops.get();
    for (size_t i = 0; i < port_ids.size(); ++i)
      r.transmitted += plan->counters.tx_packets[i].get();
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
  report = r;
  return report;
}

std::vector<std::string> Dataplane::describe_lcores() const {
  std::vector<std::string> out;
  for (const auto& plan : impl_->plans) {
    std::string line = "lcore " + std::to_string(plan->lcore) + ": " + role_names(plan->roles);
    for (const RxQueue& q : plan->rx_queues) {
      for (size_t i = 0; i < impl_->port_ids.size(); ++i) {
        if (impl_->port_ids[i] == q.port_id) {
          line += ", polls " + impl_->config.ports[i].name + "/" + std::to_string(q.queue);
        }
      }
    }
    out.push_back(line);
  }
  return out;
}

}  // namespace segx::dataplane
