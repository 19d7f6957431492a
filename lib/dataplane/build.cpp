// Dataplane::create: pools, ports, the classifier and metering, rings and lcore plans,
// service chains and peers, all sized before any lcore starts.

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_reorder.h>

#include <algorithm>
#include <cstring>

#include "dataplane/dataplane_impl.hpp"
#include "dataplane/ports.hpp"

namespace segx::dataplane {

namespace {

uint32_t next_pow2(uint64_t v) {
  uint32_t p = 1;
  while (p < v)
    p <<= 1;
  return p;
}

}  // namespace

Dataplane::Impl::~Impl() {
  telemetry_detach();
  if (!stopped) stop();
  for (auto& plan : plans) {
    if (plan->rx.flows) rte_hash_free(plan->rx.flows);
    subcontract_free(*plan);
    for (rte_reorder_buffer* b : plan->tx.reorder)
      rte_reorder_free(b);
  }
  for (rte_ring* r : rings)
    rte_ring_free(r);
  rte_ring_free(results);
  if (records) std::fclose(records);
  metering.reset();
  classifier.reset();
  rte_mempool_free(segments);
  rte_mempool_free(pool);
}

Status Dataplane::Impl::build_rings_and_plans() {
  const config::PipelineConfig& pl = config.pipeline;
  std::vector<LcorePlan*> rx, workers, tx;
  for (const config::LcoreConfig& lc : pl.lcores) {
    // On the lcore's own socket, like every array it writes (lcore_array.hpp).
    void* mem = rte_zmalloc_socket("segx_plan", sizeof(LcorePlan), RTE_CACHE_LINE_SIZE,
                                   lcore_socket(lc.lcore));
    if (mem == nullptr) return Error{"cannot allocate lcore state: raise eal.memory"};
    std::unique_ptr<LcorePlan, PlanDeleter> plan(new (mem) LcorePlan);
    plan->lcore = lc.lcore;
    plan->roles = lc.roles;
    plan->shared = &shared;
    if (lc.roles & config::role_rx) rx.push_back(plan.get());
    if (lc.roles & config::role_worker) workers.push_back(plan.get());
    if (lc.roles & config::role_tx) tx.push_back(plan.get());
    plans.push_back(std::move(plan));
  }
  if (workers.size() > max_workers) return Error{"at most 64 worker lcores are supported"};
  if (rx.size() > max_rx_lcores) return Error{"at most 64 rx lcores are supported"};
  if (tx.size() > max_tx_lcores) return Error{"at most 64 tx lcores are supported"};
  shared.burst = pl.burst;
  shared.rx_lcores = rx;
  shared.worker_lcores = workers;
  shared.tx_lcores = tx;
  // A worker sends to the tx role of its own lcore when it has one, else round robin.
  for (size_t i = 0; i < workers.size(); ++i) {
    uint16_t t = static_cast<uint16_t>(i % tx.size());
    for (size_t k = 0; k < tx.size(); ++k) {
      if (tx[k] == workers[i]) t = static_cast<uint16_t>(k);
    }
    shared.worker_tx.push_back(t);
  }

  // Local affinity: an rx lcore that also holds the worker role keeps its flows on its own
  // worker, unless the configuration has worker-only lcores (there to share the service
  // work: then flows spread over every worker by hash). Peers' tunnel messages go to the
  // worker a message names, so with peers every rx lcore has a ring to every worker.
  const bool peers = !config.providers.peers.empty();
  bool worker_only = false;
  for (const LcorePlan* w : workers)
    worker_only = worker_only || !(w->roles & config::role_rx);
  const auto worker_of = [&](const LcorePlan* plan) -> int {
    for (size_t i = 0; i < workers.size(); ++i)
      if (workers[i] == plan) return static_cast<int>(i);
    return -1;
  };
  std::vector<unsigned> fed_by(workers.size(), 0);  // rx lcores feeding each worker
  for (LcorePlan* r : rx) {
    const int own = worker_of(r);
    RxRole& role = r->rx;
    if (own >= 0 && !worker_only) {
      role.targets = {static_cast<uint16_t>(own)};
    } else {
      for (size_t w = 0; w < workers.size(); ++w)
        role.targets.push_back(static_cast<uint16_t>(w));
    }
    if (peers) {
      for (size_t w = 0; w < workers.size(); ++w)
        role.fed.push_back(static_cast<uint16_t>(w));
    } else {
      role.fed = role.targets;
    }
    for (uint16_t w : role.fed)
      ++fed_by[w];
  }
  // Run to completion where nothing crosses cores: rx, worker and tx on one lcore, its flows
  // on its own worker, no other rx lcore feeding that worker, no other worker feeding its
  // tx role, no peer.
  std::vector<unsigned> workers_of_tx(tx.size(), 0);
  for (uint16_t t : shared.worker_tx)
    ++workers_of_tx[t];
  for (LcorePlan* r : rx) {
    const int own = worker_of(r);
    if (peers || own < 0 || !(r->roles & config::role_tx) || r->rx.targets.size() != 1 ||
        fed_by[static_cast<size_t>(own)] != 1)
      continue;
    const uint16_t t = shared.worker_tx[static_cast<size_t>(own)];
    r->rtc = tx[t] == r && workers_of_tx[t] == 1;
  }

  const auto make_ring = [&](const std::string& name) -> rte_ring* {
    // One producer and one consumer each; EXACT_SZ: a ring of 4096 holds 4096 entries.
    rte_ring* r =
        rte_ring_create(("segx_" + name).c_str(), pl.ring_size, static_cast<int>(rte_socket_id()),
                        RING_F_EXACT_SZ | RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (r != nullptr) {
      rings.push_back(r);
      ring_names.push_back(name);
    }
    return r;
  };
  // Per-lcore arrays: a failed allocation is remembered and reported once.
  bool allocated = true;
  const auto alloc = [&](auto& array, const LcorePlan* plan, size_t n, size_t capacity = 0) {
    allocated = array.init(n, lcore_socket(plan->lcore), capacity) && allocated;
  };
  const auto no_memory = [] {
    return Error{"cannot allocate per-lcore state from DPDK's memory: raise eal.memory"};
  };
  for (auto& plan : plans) {
    alloc(plan->counters.profiles, plan.get(), max_profile_slots);
    alloc(plan->counters.peers, plan.get(), config.providers.peers.size());
  }

  // rx lcore r -> worker w: one ring per pair that needs one.
  for (size_t r = 0; r < rx.size(); ++r) {
    RxRole& role = rx[r]->rx;
    role.index = static_cast<unsigned>(r);
    role.segment_id_base = static_cast<uint64_t>(r + 1) << 56;
    alloc(role.next_seqn, rx[r], tx.size());  // 0 started each reorder buffer
    alloc(role.staging, rx[r], workers.size() * entries_per_packet * pl.burst);
    alloc(role.staged, rx[r], workers.size());
    role.to_worker.assign(workers.size(), nullptr);
    role.ring_index.assign(workers.size(), 0);
    for (uint16_t w : rx[r]->rtc ? std::vector<uint16_t>{} : role.fed) {
      const std::string name =
          "rx" + std::to_string(rx[r]->lcore) + ">w" + std::to_string(workers[w]->lcore);
      rte_ring* ring = make_ring(name);
      if (ring == nullptr)
        return Error{"cannot create ring " + name + ": " + rte_strerror(rte_errno)};
      role.to_worker[w] = ring;
      role.ring_index[w] = static_cast<unsigned>(rings.size() - 1);
      workers[w]->worker.from_rx.push_back(ring);
    }
    rte_hash_parameters hp{};
    const std::string hname = "segx_flows_" + std::to_string(rx[r]->lcore);
    hp.name = hname.c_str();
    hp.entries = pl.flow_table.size;
    hp.key_len = sizeof(FlowKey);
    hp.hash_func = flow_table_hash;  // what rx computes once per packet
    hp.socket_id = lcore_socket(rx[r]->lcore);
    role.flows = rte_hash_create(&hp);
    if (role.flows == nullptr) {
      return Error{"cannot create the flow table of lcore " + std::to_string(rx[r]->lcore) + ": " +
                   rte_strerror(rte_errno) +
                   "; lower pipeline.flow_table.size or raise eal.memory"};
    }
    // Positions go up to the table's bucket capacity, which can exceed the requested size.
    const size_t positions = static_cast<size_t>(rte_hash_max_key_id(role.flows)) + 1;
    alloc(role.flow_state, rx[r], positions);
    alloc(role.active, rx[r], 0, positions);
  }
  if (!allocated) return no_memory();
  // worker w -> its tx lcore.
  for (size_t w = 0; w < workers.size(); ++w) {
    WorkerRole& role = workers[w]->worker;
    role.index = static_cast<unsigned>(w);
    if (workers[w]->rtc) continue;  // its outputs go straight to its own tx role
    LcorePlan* t = tx[shared.worker_tx[w]];
    const std::string name =
        "w" + std::to_string(workers[w]->lcore) + ">tx" + std::to_string(t->lcore);
    rte_ring* ring = make_ring(name);
    if (ring == nullptr)
      return Error{"cannot create ring " + name + ": " + rte_strerror(rte_errno)};
    role.to_tx = ring;
    role.to_tx_index = static_cast<unsigned>(rings.size() - 1);
    t->tx.from_workers.push_back(ring);
  }
  for (auto& plan : plans) {
    alloc(plan->counters.ring_enqueued, plan.get(), rings.size());
    alloc(plan->counters.ring_dropped, plan.get(), rings.size());
  }

  // tx lcores: one reorder buffer per rx lcore, large enough for every packet that can be
  // between that rx lcore and this tx lcore at once: what the rings hold, and, with peers,
  // what the workers hold for them. The rx lcore numbers no more than that beyond what the
  // tx lcore released (RxRole, reorder_full), so the window is never overrun.
  size_t most_workers = 0;
  for (LcorePlan* t : tx)
    most_workers = std::max(most_workers, t->tx.from_workers.size());
  uint64_t in_flight = uint64_t(2) * pl.ring_size * most_workers + 4 * pl.burst;
  shared.reorder_window = next_pow2(in_flight);
  if (!config.providers.peers.empty()) {
    // Held packets stall the window for up to a peer's timeout, and everything numbered
    // behind them waits in the buffer: give room for the held ones too, but keep the
    // window within half the mbuf pool, so that a silent peer makes rx drop what it cannot
    // number (reorder_full, counted) before the pool runs dry for rx and tunnel messages.
    in_flight += uint64_t(config.providers.hold) * most_workers;
    uint64_t cap = 1;
    while (cap * 2 <= pool->size / 2)
      cap *= 2;
    shared.reorder_window =
        std::max<uint64_t>(std::min<uint64_t>(next_pow2(in_flight), cap), next_pow2(4 * pl.burst));
  }
  for (size_t k = 0; k < tx.size(); ++k) {
    TxRole& role = tx[k]->tx;
    role.index = static_cast<unsigned>(k);
    role.port_ids = port_ids;
    alloc(role.buckets, tx[k], port_ids.size() * 2 * pl.burst);
    alloc(role.bucket_counts, tx[k], port_ids.size());
    alloc(role.released, tx[k], rx.size());
    alloc(role.in_flight, tx[k], 0, rx.size());
    if (!allocated) return no_memory();
    // Run to completion there is nothing to reorder: packets leave in arrival order.
    for (size_t r = 0; r < (tx[k]->rtc ? 0 : rx.size()); ++r) {
      const std::string name = "segx_ro" + std::to_string(tx[k]->lcore) + "_" + std::to_string(r);
      rte_reorder_buffer* b =
          rte_reorder_create(name.c_str(), static_cast<unsigned>(lcore_socket(tx[k]->lcore)),
                             static_cast<unsigned>(shared.reorder_window));
      if (b == nullptr)
        return Error{"cannot create reorder buffer " + name + ": " + rte_strerror(rte_errno)};
      // DPDK 22.11 takes the first packet inserted as the start of the sequence, which may
      // not be the lowest in flight: start it at 0 with a placeholder so that packets
      // numbered from 1 all fit the window.
      rte_mbuf* first = rte_pktmbuf_alloc(pool);
      if (first == nullptr) return Error{"cannot allocate an mbuf to initialise " + name};
      *rte_reorder_seqn(first) = 0;
      rte_reorder_insert(b, first);
      rte_mbuf* out = nullptr;
      rte_reorder_drain(b, &out, 1);
      rte_pktmbuf_free(out);
      role.reorder.push_back(b);
      role.in_flight.push_back(0);
    }
  }
  if (!allocated) return no_memory();
  // rx queues are spread over rx lcores in configuration order.
  unsigned j = 0;
  for (size_t port = 0; port < config.ports.size(); ++port) {
    for (uint16_t q = 0; q < config.ports[port].rx_queues; ++q, ++j) {
      LcorePlan* r = rx[j % rx.size()];
      bool link = false;
      for (const auto& peer : config.providers.peers)
        link = link || peer.port == config.ports[port].name;
      r->rx.queues.push_back({port_ids[port], q, static_cast<uint8_t>(port),
                              config.ports[port].gtpu, link,
                              r->rx.targets[port % r->rx.targets.size()]});
    }
  }
  return {};
}

Result<ChainBuild> Dataplane::Impl::build_chain(const LcorePlan& w, const config::Config& c,
                                                const config::ProfileConfig& profile) {
  const ServiceRegistry& reg = ServiceRegistry::instance();
  const auto offered_here = [&](const std::string& name) {
    return std::find(c.providers.offers.begin(), c.providers.offers.end(), name) !=
           c.providers.offers.end();
  };
  ChainBuild b;
  if (!b.counters.init(profile.services.size(), lcore_socket(w.lcore)))
    return Error{"cannot allocate per-lcore state from DPDK's memory: raise eal.memory"};
  uint32_t offset = 0;
  for (const auto& s : profile.services) {
    const ServiceFactory* f = reg.find(s.name);
    if (!offered_here(s.name)) {
      // Offered only by peers: the first that offers it runs it. The chain keeps a neutral
      // entry in its place, so positions and counters stay as configured.
      if (b.sub_pos >= 0) {
        return Error{s.path + ": a chain may subcontract one entry; '" + b.sub_name +
                     "' is subcontracted already"};
      }
      size_t peer = 0;
      while (peer < c.providers.peers.size() &&
             std::find(c.providers.peers[peer].offers.begin(), c.providers.peers[peer].offers.end(),
                       s.name) == c.providers.peers[peer].offers.end())
        ++peer;
      if (peer == c.providers.peers.size())
        return Error{s.path + ": no peer offers '" + s.name + "'"};
      b.sub_pos = static_cast<int>(b.chain.size());
      b.sub_peer = static_cast<uint16_t>(peer);
      b.sub_service = geneve::service_id(s.name);
      b.sub_name = s.name;
      f = reg.find("pass");
    }
    if (f == nullptr) return Error{s.path + ": no service '" + s.name + "' in this build"};
    auto service = f->create(s, c);
    if (!service) return Error{s.path + ": " + service.error()};
    // Keep every service's state 16-byte aligned.
    offset = (offset + 15u) & ~15u;
    b.offsets.push_back(offset);
    offset += service.value()->state_size();
    if (offset > segment_state_bytes) {
      return Error{"profile '" + profile.name + "': its services need more than " +
                   std::to_string(segment_state_bytes) + " bytes of state per segment"};
    }
    b.mirrors = b.mirrors || service.value()->mirror_port() >= 0;
    b.chain.push_back(std::move(service).value());
  }
  return b;
}

void Dataplane::Impl::install_chain(LcorePlan& w, uint32_t slot, ChainBuild&& b) {
  WorkerRole& role = w.worker;
  role.chains[slot] = std::move(b.chain);
  role.offsets[slot] = std::move(b.offsets);
  role.sub_pos[slot] = b.sub_pos;
  role.sub_peer[slot] = b.sub_peer;
  role.sub_service[slot] = b.sub_service;
  role.sub_name[slot] = std::move(b.sub_name);
  w.counters.services[slot] = std::move(b.counters);
}

Status Dataplane::Impl::build_services() {
  for (LcorePlan* w : shared.worker_lcores) {
    WorkerRole& role = w->worker;
    role.chains.resize(max_profile_slots);
    role.offsets.resize(max_profile_slots);
    role.sub_pos.assign(max_profile_slots, -1);
    role.sub_peer.assign(max_profile_slots, 0);
    role.sub_service.assign(max_profile_slots, 0);
    role.sub_name.assign(max_profile_slots, "");
    if (!w->counters.services.init(max_profile_slots, lcore_socket(w->lcore)))
      return Error{"cannot allocate per-lcore state from DPDK's memory: raise eal.memory"};
    for (size_t p = 0; p < config.profiles.size(); ++p) {
      auto b = build_chain(*w, config, config.profiles[p]);
      if (!b) return Error{b.error()};
      shared.mirroring = shared.mirroring || b.value().mirrors;
      install_chain(*w, live_slots[p], std::move(b).value());
    }
    if (Status st = subcontract_init(*w, config, segments); !st) return st;
  }
  return {};
}

Status Dataplane::Impl::build_peers() {
  const config::ProvidersConfig& pr = config.providers;
  shared.pool = pool;
  shared.served_idle_tsc = ns_to_tsc(config.pipeline.flow_table.idle_timeout);
  for (size_t i = 0; i < port_ids.size(); ++i) {
    rte_ether_addr mac{};
    if (rte_eth_macaddr_get(port_ids[i], &mac) == 0)
      std::copy(mac.addr_bytes, mac.addr_bytes + 6, shared.port_macs[i].begin());
  }
  if (pr.peers.empty()) return {};
  if (pr.peers.size() > 255) return Error{"at most 255 peers are supported"};
  shared.family = pr.address->family;
  shared.address = pr.address->bytes;
  const uint32_t room = config.pipeline.mempool.data_room - RTE_PKTMBUF_HEADROOM;
  for (const config::PeerConfig& c : pr.peers) {
    PeerRuntime peer;
    peer.id = c.id;
    const int port = config.port_index(c.port);
    if (port < 0) return Error{"peer '" + c.id + "': no port '" + c.port + "'"};
    peer.port = static_cast<uint8_t>(port);
    peer.request.family = shared.family;
    peer.request.src_mac = shared.port_macs[static_cast<size_t>(port)];
    // Without a next hop the link is a point-to-point wire: broadcast reaches the peer.
    peer.request.dst_mac = c.mac ? *c.mac : config::MacAddress{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    peer.request.src = shared.address;
    peer.request.dst = c.address.bytes;
    peer.timeout_tsc = ns_to_tsc(c.timeout);
    peer.fallback_drop = c.fallback == config::Fallback::drop;
    // The largest inner frame whose message fits the link's MTU and one mbuf.
    const uint32_t outer = geneve::outer_bytes(shared.family);
    const uint32_t by_mtu = config.ports[static_cast<size_t>(port)].mtu + 14u - outer;
    const uint32_t by_mbuf = room > outer ? room - outer : 0;
    peer.max_inner = std::min(by_mtu, by_mbuf);
    shared.peers.push_back(peer);
  }
  return {};
}

Status Dataplane::Impl::build(const config::Config& c) {
  config = c;
  if (config.ports.size() > max_ports) return Error{"at most 32 ports are supported"};
  if (!register_packet_meta()) {
    return Error{std::string("cannot register the mbuf dynamic field: ") + rte_strerror(rte_errno)};
  }
  const config::MempoolConfig& mp = config.pipeline.mempool;
  pool = rte_pktmbuf_pool_create("segx_mbufs", mp.size, mp.cache, 0,
                                 static_cast<uint16_t>(mp.data_room),
                                 static_cast<int>(rte_socket_id()));
  if (pool == nullptr) {
    return Error{"cannot create the mbuf pool (" + std::to_string(mp.size) + " mbufs of " +
                 std::to_string(mp.data_room) + " bytes): " + rte_strerror(rte_errno) +
                 "; raise eal.memory or lower pipeline.mempool.size"};
  }
  segments =
      rte_mempool_create("segx_segments", config.pipeline.segment_pool, sizeof(Segment), 32, 0,
                         nullptr, nullptr, nullptr, nullptr, static_cast<int>(rte_socket_id()), 0);
  if (segments == nullptr) {
    return Error{"cannot create the segment pool (" + std::to_string(config.pipeline.segment_pool) +
                 " descriptors): " + rte_strerror(rte_errno) +
                 "; raise eal.memory or lower pipeline.segment_pool"};
  }
  if (!config.results.file.empty() || !config.results.socket.empty()) {
    if (!config.results.file.empty()) {
      // Appending lets log rotation truncate the file under segx (copytruncate).
      records = std::fopen(config.results.file.c_str(), "a");
      if (records == nullptr) {
        return Error{"results.file " + config.results.file + ": " + std::strerror(errno)};
      }
    }
    if (!config.results.socket.empty())
      record_socket = std::make_unique<RecordSocket>(config.results.socket);
    // Half of the descriptors may wait for the writer; beyond that records are dropped
    // (and counted) rather than segments going unsegmented for want of descriptors.
    results = rte_ring_create("segx_results", std::max(64u, config.pipeline.segment_pool / 2),
                              static_cast<int>(rte_socket_id()), RING_F_EXACT_SZ | RING_F_SC_DEQ);
    if (results == nullptr)
      return Error{std::string("cannot create the results ring: ") + rte_strerror(rte_errno)};
  }
  for (const config::PortConfig& p : config.ports) {
    auto id = configure_port(p, pool);
    if (!id) return Error{id.error()};
    port_ids.push_back(id.value());
    port_open.push_back(true);
    port_started.push_back(false);
    rte_eth_dev_info info{};
    port_shared_memory.push_back(rte_eth_dev_info_get(id.value(), &info) == 0 &&
                                 info.driver_name != nullptr &&
                                 std::strcmp(info.driver_name, "net_memif") == 0);
    links.emplace_back();
  }
  auto cls = Classifier::build(config, "segx_acl");
  if (!cls) return Error{cls.error()};
  classifier = std::move(cls).value();

  unsigned rx_lcores = 0;
  for (const auto& lc : config.pipeline.lcores)
    rx_lcores += (lc.roles & config::role_rx) != 0;
  const bool metered = std::any_of(config.profiles.begin(), config.profiles.end(),
                                   [](const config::ProfileConfig& p) { return p.metered; });
  if (metered) {
    auto m = Metering::create(config, rx_lcores, "segx_meter");
    if (!m) return Error{m.error()};
    metering = std::move(m).value();
  }
  if (config.profiles.size() > max_profile_slots / 2) {
    return Error{"at most " + std::to_string(max_profile_slots / 2) + " profiles are supported"};
  }
  // Profile p starts in slot p; reloads move changed profiles to free slots.
  shared.profiles.resize(max_profile_slots);
  slots.resize(max_profile_slots);
  for (size_t p = 0; p < config.profiles.size(); ++p) {
    live_slots.push_back(static_cast<uint32_t>(p));
    fill_slot(static_cast<uint32_t>(p), config.profiles[p], config);
  }
  shared.classifier.store(classifier.get(), std::memory_order_relaxed);
  shared.metering = metering.get();
  shared.segments = segments;
  shared.results = results;
  shared.flow_idle_tsc = ns_to_tsc(config.pipeline.flow_table.idle_timeout);
  apply_defaults();
  for (size_t i = 0; i < latency_bounds.size(); ++i) {
    shared.latency_bounds_tsc[i] =
        static_cast<uint64_t>(latency_bounds[i] * static_cast<double>(rte_get_tsc_hz()));
  }
  for (const auto& b : config.blocks)
    schedule.push_back(ScheduledBlock{b, ScheduledBlock::State::waiting, {}});
  if (Status s = build_peers(); !s) return s;
  if (Status s = build_rings_and_plans(); !s) return s;
  for (LcorePlan* r : shared.rx_lcores)
    r->rx.classifier = classifier.get();
  return build_services();
}

std::vector<ProfileInfo> profile_infos(const config::Config& c) {
  std::vector<ProfileInfo> profiles;
  for (const auto& p : c.profiles) {
    ProfileInfo info{p.name, p.output, "", p.metered};
    for (const auto& s : p.services)
      info.services += (info.services.empty() ? "" : ",") + s.name;
    profiles.push_back(info);
  }
  return profiles;
}

Result<std::unique_ptr<Dataplane>> Dataplane::create(const config::Config& config) {
  auto impl = std::make_unique<Impl>();
  if (Status s = impl->build(config); !s) return Error{s.error()};
  telemetry_attach(impl->exchange, profile_infos(config));
  return std::unique_ptr<Dataplane>(new Dataplane(std::move(impl)));
}

}  // namespace segx::dataplane
