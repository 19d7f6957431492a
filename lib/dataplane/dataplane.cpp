#include "dataplane/dataplane.hpp"
#include "dataplane/record_socket.hpp"

#include <arpa/inet.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_hash_crc.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "dataplane/classifier.hpp"
#include "dataplane/metering.hpp"
#include "dataplane/pipeline.hpp"
#include "dataplane/ports.hpp"
#include "dataplane/stats.hpp"

namespace segx::dataplane {

namespace {

// A block's totals for the log line of its end, which outlives the statistics (keep_ended).
std::string usage_summary(const BlockUsage& u) {
  static constexpr const char* colours[] = {"green", "yellow", "red"};
  std::string s;
  for (size_t c = 0; c < 3; ++c) {
    s += std::string(c ? ", " : "") + colours[c] + " " + std::to_string(u.total.packets[c]) +
         " packets " + std::to_string(u.total.bytes[c]) + " bytes";
  }
  return s;
}

// Most workers an rx lcore can feed (the rx step keeps a room count per worker).
constexpr size_t max_workers = 64;
// rx lcores are identified in 8 bits in packet metadata and segment ids.
constexpr size_t max_rx_lcores = 64;

std::string role_names(uint8_t roles) {
  std::string out;
  if (roles & config::role_rx) out += "rx ";
  if (roles & config::role_worker) out += "worker ";
  if (roles & config::role_tx) out += "tx ";
  if (!out.empty()) out.pop_back();
  return out;
}

uint64_t ns_to_tsc(config::Duration d) {
  return static_cast<uint64_t>(static_cast<long double>(d.count()) * rte_get_tsc_hz() / 1e9L);
}

uint32_t next_pow2(uint64_t v) {
  uint32_t p = 1;
  while (p < v)
    p <<= 1;
  return p;
}

std::string address(uint8_t family, const uint8_t* bytes) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 4 ? AF_INET : AF_INET6, bytes, buf, sizeof buf);
  return buf;
}

}  // namespace

// A configured block's place in time: activated once its start passes, deactivated when
// its duration has run out (or at stop).
struct ScheduledBlock {
  const config::BlockConfig* block;
  enum class State { waiting, active, done } state = State::waiting;
  // When activation completed: the block lasts its full duration from then, however long
  // activation took (a first IPv6 member builds a table).
  std::chrono::steady_clock::time_point active_since;
};

struct Dataplane::Impl {
  config::Config config;
  rte_mempool* pool = nullptr;
  rte_mempool* segments = nullptr;
  rte_ring* results = nullptr;
  std::FILE* records = nullptr;
  std::unique_ptr<RecordSocket> record_socket;
  uint64_t records_written = 0;
  std::unique_ptr<Classifier> classifier;
  std::unique_ptr<Metering> metering;
  std::vector<uint16_t> port_ids;  // by configured port index
  std::vector<bool> port_started;
  std::vector<bool> port_open;
  std::vector<rte_ring*> rings;  // by report index
  std::vector<std::string> ring_names;
  std::vector<std::unique_ptr<LcorePlan>> plans;
  Shared shared;
  std::vector<ScheduledBlock> schedule;
  std::map<uint64_t, std::string> block_ids;  // serial -> id, for records
  std::vector<BlockUsage> block_usage;        // final usage of blocks that ended recently
  uint64_t blocks_expired = 0;                // ended longer than keep_ended ago, forgotten
  bool launched = false;
  bool stopped = false;
  Report report;
  std::shared_ptr<StatsExchange> exchange = std::make_shared<StatsExchange>();
  std::vector<std::vector<std::string>> xstat_names;  // by port, read once

  ~Impl();
  Stats collect();
  Status build(const config::Config& c);
  Status build_rings_and_plans();
  Status build_services();
  Status build_peers();
  size_t write_records();
  std::string record_json(const Segment& s) const;
  Report stop();
};

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
    auto plan = std::make_unique<LcorePlan>();
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
  if (tx.size() > 64) return Error{"at most 64 tx lcores are supported"};
  shared.burst = pl.burst;
  shared.rx_lcores = rx;
  shared.worker_lcores = workers;
  shared.tx_lcores = tx;
  for (size_t i = 0; i < workers.size(); ++i)
    shared.worker_tx.push_back(static_cast<uint16_t>(i % tx.size()));

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
  for (auto& plan : plans) {
    plan->counters.profiles = std::vector<ProfileCounters>(config.profiles.size());
    plan->counters.peers = std::vector<PeerCounters>(config.providers.peers.size());
  }

  // rx lcore r -> worker w: one ring per pair.
  for (size_t r = 0; r < rx.size(); ++r) {
    RxRole& role = rx[r]->rx;
    role.index = static_cast<unsigned>(r);
    role.segment_id_base = static_cast<uint64_t>(r + 1) << 56;
    role.next_seqn.assign(tx.size(), 1);  // 0 initialised each reorder buffer
    role.staging.assign(workers.size() * entries_per_packet * pl.burst, nullptr);
    role.staged.assign(workers.size(), 0);
    for (size_t w = 0; w < workers.size(); ++w) {
      const std::string name =
          "rx" + std::to_string(rx[r]->lcore) + ">w" + std::to_string(workers[w]->lcore);
      rte_ring* ring = make_ring(name);
      if (ring == nullptr)
        return Error{"cannot create ring " + name + ": " + rte_strerror(rte_errno)};
      role.to_worker.push_back(ring);
      role.ring_index.push_back(static_cast<unsigned>(rings.size() - 1));
      workers[w]->worker.from_rx.push_back(ring);
    }
    rte_hash_parameters hp{};
    const std::string hname = "segx_flows_" + std::to_string(rx[r]->lcore);
    hp.name = hname.c_str();
    hp.entries = pl.flow_table.size;
    hp.key_len = sizeof(FlowKey);
    hp.hash_func = rte_hash_crc;
    hp.socket_id = static_cast<int>(rte_socket_id());
    role.flows = rte_hash_create(&hp);
    if (role.flows == nullptr) {
      return Error{"cannot create the flow table of lcore " + std::to_string(rx[r]->lcore) + ": " +
                   rte_strerror(rte_errno) +
                   "; lower pipeline.flow_table.size or raise eal.memory"};
    }
    // Positions go up to the table's bucket capacity, which can exceed the requested size.
    role.flow_state.resize(static_cast<size_t>(rte_hash_max_key_id(role.flows)) + 1);
    role.active.reserve(role.flow_state.size());
  }
  // worker w -> its tx lcore.
  for (size_t w = 0; w < workers.size(); ++w) {
    WorkerRole& role = workers[w]->worker;
    role.index = static_cast<unsigned>(w);
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
    plan->counters.ring_enqueued = std::vector<Counter>(rings.size());
    plan->counters.ring_dropped = std::vector<Counter>(rings.size());
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
    role.buckets.assign(port_ids.size() * 2 * pl.burst, nullptr);
    role.bucket_counts.assign(port_ids.size(), 0);
    role.released = std::vector<Counter>(rx.size());
    for (size_t r = 0; r < rx.size(); ++r) {
      const std::string name = "segx_ro" + std::to_string(tx[k]->lcore) + "_" + std::to_string(r);
      rte_reorder_buffer* b =
          rte_reorder_create(name.c_str(), static_cast<unsigned>(rte_socket_id()),
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
  // rx queues are spread over rx lcores in configuration order.
  unsigned j = 0;
  for (size_t port = 0; port < config.ports.size(); ++port) {
    for (uint16_t q = 0; q < config.ports[port].rx_queues; ++q, ++j) {
      LcorePlan* r = rx[j % rx.size()];
      bool link = false;
      for (const auto& peer : config.providers.peers)
        link = link || peer.port == config.ports[port].name;
      r->rx.queues.push_back({port_ids[port], q, static_cast<uint8_t>(port),
                              config.ports[port].gtpu, link, config.default_output_index(port),
                              static_cast<uint16_t>(port % workers.size())});
    }
  }
  return {};
}

Status Dataplane::Impl::build_services() {
  const ServiceRegistry& reg = ServiceRegistry::instance();
  const auto offered_here = [&](const std::string& name) {
    return std::find(config.providers.offers.begin(), config.providers.offers.end(), name) !=
           config.providers.offers.end();
  };
  for (LcorePlan* w : shared.worker_lcores) {
    WorkerRole& role = w->worker;
    role.chains.resize(config.profiles.size());
    role.offsets.resize(config.profiles.size());
    role.sub_pos.assign(config.profiles.size(), -1);
    role.sub_peer.assign(config.profiles.size(), 0);
    role.sub_service.assign(config.profiles.size(), 0);
    role.sub_name.assign(config.profiles.size(), "");
    w->counters.services.resize(config.profiles.size());
    for (size_t p = 0; p < config.profiles.size(); ++p) {
      w->counters.services[p] = std::vector<ServiceCounters>(config.profiles[p].services.size());
      uint32_t offset = 0;
      for (const auto& s : config.profiles[p].services) {
        const ServiceFactory* f = reg.find(s.name);
        if (!offered_here(s.name)) {
          // Offered only by peers: the first that offers it runs it. The chain keeps a
          // neutral entry in its place, so positions and counters stay as configured.
          if (role.sub_pos[p] >= 0) {
            return Error{s.path + ": a chain may subcontract one entry; '" + role.sub_name[p] +
                         "' is subcontracted already"};
          }
          size_t peer = 0;
          while (peer < config.providers.peers.size() &&
                 std::find(config.providers.peers[peer].offers.begin(),
                           config.providers.peers[peer].offers.end(),
                           s.name) == config.providers.peers[peer].offers.end())
            ++peer;
          if (peer == config.providers.peers.size())
            return Error{s.path + ": no peer offers '" + s.name + "'"};
          role.sub_pos[p] = static_cast<int>(role.chains[p].size());
          role.sub_peer[p] = static_cast<uint16_t>(peer);
          role.sub_service[p] = geneve::service_id(s.name);
          role.sub_name[p] = s.name;
          f = reg.find("pass");
        }
        if (f == nullptr) return Error{s.path + ": no service '" + s.name + "' in this build"};
        auto service = f->create(s, config);
        if (!service) return Error{s.path + ": " + service.error()};
        // Keep every service's state 16-byte aligned.
        offset = (offset + 15u) & ~15u;
        role.offsets[p].push_back(offset);
        offset += service.value()->state_size();
        if (offset > segment_state_bytes) {
          return Error{"profile '" + config.profiles[p].name + "': its services need more than " +
                       std::to_string(segment_state_bytes) + " bytes of state per segment"};
        }
        role.chains[p].push_back(std::move(service).value());
      }
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
  for (const auto& p : config.profiles) {
    ProfileRuntime r;
    r.rules.packets = p.segment.packets;
    r.rules.bytes = p.segment.bytes;
    r.rules.time = ns_to_tsc(p.segment.time);
    r.rules.idle = ns_to_tsc(p.segment.idle);
    r.rules.tcp_close = p.segment.tcp_close;
    r.output = static_cast<uint16_t>(config.port_index(p.output));
    r.metered = p.metered;
    r.unmetered_drop = p.unmetered == config::Unmetered::drop;
    shared.profiles.push_back(r);
  }
  shared.classifier = classifier.get();
  shared.metering = metering.get();
  shared.segments = segments;
  shared.results = results;
  shared.flow_idle_tsc = ns_to_tsc(config.pipeline.flow_table.idle_timeout);
  for (size_t i = 0; i < latency_bounds.size(); ++i) {
    shared.latency_bounds_tsc[i] =
        static_cast<uint64_t>(latency_bounds[i] * static_cast<double>(rte_get_tsc_hz()));
  }
  for (const auto& b : config.blocks)
    schedule.push_back(ScheduledBlock{&b, ScheduledBlock::State::waiting, {}});
  if (Status s = build_peers(); !s) return s;
  if (Status s = build_rings_and_plans(); !s) return s;
  return build_services();
}

Result<std::unique_ptr<Dataplane>> Dataplane::create(const config::Config& config) {
  auto impl = std::make_unique<Impl>();
  if (Status s = impl->build(config); !s) return Error{s.error()};
  std::vector<ProfileInfo> profiles;
  for (const auto& p : config.profiles) {
    ProfileInfo info{p.name, p.output, "", p.metered};
    for (const auto& s : p.services)
      info.services += (info.services.empty() ? "" : ",") + s.name;
    profiles.push_back(info);
  }
  telemetry_attach(impl->exchange, std::move(profiles));
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

std::shared_ptr<const Stats> Dataplane::stats(std::chrono::milliseconds wait) const {
  return impl_->exchange->get(wait);
}

Stats Dataplane::Impl::collect() {
  Stats s;
  s.running = launched && !stopped;
  if (xstat_names.empty()) {
    for (uint16_t id : port_ids) {
      std::vector<std::string> names;
      const int n = rte_eth_xstats_get_names(id, nullptr, 0);
      if (n > 0) {
        std::vector<rte_eth_xstat_name> raw(static_cast<size_t>(n));
        const int got = rte_eth_xstats_get_names(id, raw.data(), static_cast<unsigned>(n));
        for (int i = 0; i < got && i < n; ++i)
          names.emplace_back(raw[static_cast<size_t>(i)].name);
      }
      xstat_names.push_back(std::move(names));
    }
  }
  for (size_t i = 0; i < port_ids.size(); ++i) {
    PortStats ps;
    PortReport& pr = ps.counters;
    pr.name = config.ports[i].name;
    pr.device = config.ports[i].device;
    rte_eth_stats st{};
    if (port_open[i] && rte_eth_stats_get(port_ids[i], &st) == 0) {
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
    const auto& names = xstat_names[i];
    if (port_open[i] && !names.empty()) {
      std::vector<rte_eth_xstat> values(names.size());
      const int n =
          rte_eth_xstats_get(port_ids[i], values.data(), static_cast<unsigned>(names.size()));
      for (int k = 0; k < n && static_cast<size_t>(k) < values.size(); ++k) {
        if (values[static_cast<size_t>(k)].id < names.size()) {
          ps.xstats.emplace_back(names[values[static_cast<size_t>(k)].id],
                                 values[static_cast<size_t>(k)].value);
        }
      }
    }
    s.ports.push_back(std::move(ps));
  }
  for (size_t k = 0; k < rings.size(); ++k) {
    RingStats rs;
    rs.name = ring_names[k];
    rs.capacity = rte_ring_get_capacity(rings[k]);
    rs.entries = rte_ring_count(rings[k]);
    for (const auto& plan : plans) {
      rs.enqueued += plan->counters.ring_enqueued[k].get();
      rs.dropped += plan->counters.ring_dropped[k].get();
    }
    s.rings.push_back(rs);
  }
  for (size_t p = 0; p < config.profiles.size(); ++p) {
    ProfileReport pr;
    pr.name = config.profiles[p].name;
    for (size_t reason = 1; reason < static_cast<size_t>(CloseReason::count_); ++reason)
      pr.closed_by[std::string(close_reason_name(static_cast<CloseReason>(reason)))] = 0;
    for (const auto& plan : plans) {
      const ProfileCounters& pc = plan->counters.profiles[p];
      pr.packets += pc.packets.get();
      pr.bytes += pc.bytes.get();
      for (size_t reason = 1; reason < pc.segments.size(); ++reason) {
        const uint64_t n = pc.segments[reason].get();
        pr.segments += n;
        pr.closed_by[std::string(close_reason_name(static_cast<CloseReason>(reason)))] += n;
      }
    }
    s.profiles.push_back(pr);
    for (size_t i = 0; i < config.profiles[p].services.size(); ++i) {
      ServiceStats ss{pr.name, config.profiles[p].services[i].name};
      for (const LcorePlan* w : shared.worker_lcores) {
        const ServiceCounters& sc = w->counters.services[p][i];
        ss.calls += sc.calls.get();
        ss.packets += sc.packets.get();
        ss.segments += sc.segments.get();
      }
      s.services.push_back(ss);
    }
  }
  for (size_t e = 1; e < static_cast<size_t>(ParseError::count_); ++e)
    s.drops[std::string(parse_error_name(static_cast<ParseError>(e)))] = 0;
  for (size_t e = 0; e < static_cast<size_t>(Drop::count_); ++e)
    s.drops[std::string(drop_name(static_cast<Drop>(e)))] = 0;
  for (size_t e = 0; e < static_cast<size_t>(Event::count_); ++e)
    s.events[std::string(event_name(static_cast<Event>(e)))] = 0;
  s.latency.bounds.assign(latency_bounds.begin(), latency_bounds.end());
  s.latency.counts.assign(latency_bounds.size() + 1, 0);
  uint64_t latency_tsc = 0;
  for (const auto& plan : plans) {
    const LcoreCounters& c = plan->counters;
    s.received += c.rx_packets.get();
    for (size_t e = 1; e < c.parse.size(); ++e)
      s.drops[std::string(parse_error_name(static_cast<ParseError>(e)))] += c.parse[e].get();
    for (size_t e = 0; e < c.drops.size(); ++e)
      s.drops[std::string(drop_name(static_cast<Drop>(e)))] += c.drops[e].get();
    for (size_t e = 0; e < c.events.size(); ++e)
      s.events[std::string(event_name(static_cast<Event>(e)))] += c.events[e].get();
    for (size_t i = 0; i < port_ids.size(); ++i)
      s.transmitted += c.tx_packets[i].get();
    for (size_t b = 0; b < c.latency.size(); ++b)
      s.latency.counts[b] += c.latency[b].get();
    latency_tsc += c.latency_tsc.get();
    if (plan->roles & config::role_rx) {
      FlowTableStats f;
      f.lcore = plan->lcore;
      f.capacity = config.pipeline.flow_table.size;
      f.created = c.events[static_cast<size_t>(Event::flows_created)].get();
      f.evicted = c.events[static_cast<size_t>(Event::flows_evicted)].get();
      // Two relaxed loads taken apart: an eviction may be seen without its creation.
      f.active = f.created > f.evicted ? f.created - f.evicted : 0;
      s.flows.push_back(f);
    }
  }
  s.latency.sum = static_cast<double>(latency_tsc) / static_cast<double>(rte_get_tsc_hz());
  // Tunnel messages refused at rx, by what was wrong with them.
  for (size_t e = 1; e < static_cast<size_t>(geneve::Error::count_); ++e) {
    uint64_t n = 0;
    for (const auto& plan : plans)
      n += plan->counters.tunnel[e].get();
    s.drops["tunnel_" + std::string(geneve::error_name(static_cast<geneve::Error>(e)))] = n;
  }
  for (size_t i = 0; i < config.providers.peers.size(); ++i) {
    PeerStats ps;
    ps.id = config.providers.peers[i].id;
    ps.round_trip.bounds.assign(latency_bounds.begin(), latency_bounds.end());
    ps.round_trip.counts.assign(latency_bounds.size() + 1, 0);
    uint64_t rtt_tsc = 0;
    for (const auto& plan : plans) {
      const PeerCounters& c = plan->counters.peers[i];
      ps.segments_sent += c.segments_sent.get();
      ps.segments_returned += c.segments_returned.get();
      ps.segments_timed_out += c.segments_timed_out.get();
      ps.segments_refused += c.segments_refused.get();
      ps.packets_sent += c.packets_sent.get();
      ps.packets_returned += c.packets_returned.get();
      ps.packets_fallback += c.packets_fallback.get();
      ps.replies_late += c.replies_late.get();
      ps.replies_bad += c.replies_bad.get();
      ps.served_segments += c.served_segments.get();
      ps.served_packets += c.served_packets.get();
      ps.served_refused += c.served_refused.get();
      for (size_t b = 0; b < c.round_trip.size(); ++b)
        ps.round_trip.counts[b] += c.round_trip[b].get();
      rtt_tsc += c.round_trip_tsc.get();
    }
    ps.round_trip.sum = static_cast<double>(rtt_tsc) / static_cast<double>(rte_get_tsc_hz());
    s.peers.push_back(std::move(ps));
  }
  s.blocks = block_usage;
  s.blocks_expired = blocks_expired;
  if (metering) {
    for (const std::string& id : metering->active()) {
      if (auto u = metering->usage(id)) s.blocks.push_back(u.value());
    }
  }
  if (pool != nullptr) {
    s.mempool_size = pool->size;
    s.mempool_in_use = rte_mempool_in_use_count(pool);
  }
  if (segments != nullptr) {
    s.segment_pool_size = segments->size;
    s.segments_in_use = rte_mempool_in_use_count(segments);
  }
  return s;
}

uint64_t Dataplane::received() const {
  uint64_t n = 0;
  for (const auto& plan : impl_->plans)
    n += plan->counters.rx_packets.get();
  return n;
}

std::string Dataplane::Impl::record_json(const Segment& s) const {
  const FlowKey& k = s.key;
  std::string vlan = "[";
  if (k.vlan_count >= 1) vlan += std::to_string(k.outer_vlan);
  if (k.vlan_count >= 2) vlan += ", " + std::to_string(k.inner_vlan);
  vlan += "]";
  std::string block = "null";
  if (s.block_serial != 0) {
    auto it = block_ids.find(s.block_serial);
    block = "\"" + (it != block_ids.end() ? it->second : std::to_string(s.block_serial)) + "\"";
  }
  const uint64_t hz = rte_get_tsc_hz();
  const auto duration =
      static_cast<uint64_t>(static_cast<long double>(s.last_tsc - s.first_tsc) * 1e9L / hz);
  const bool truncated = s.result_len >= segment_result_bytes;
  char head[512];
  std::snprintf(
      head, sizeof head,
      "{\"segment\": %lu, \"profile\": \"%s\", \"block\": %s, \"flow\": {\"port\": \"%s\", "
      "\"vlan\": %s, \"family\": %u, \"proto\": %u, \"src\": \"%s\", \"dst\": \"%s\", "
      "\"sport\": %u, \"dport\": %u}, \"first_seq\": %u, \"packets\": %u, \"bytes\": %lu, "
      "\"duration_ns\": %lu, \"close\": \"%s\", \"services\": {",
      s.id, config.profiles[s.profile].name.c_str(), block.c_str(),
      config.ports[k.in_port].name.c_str(), vlan.c_str(), k.family, k.proto,
      address(k.family, k.src).c_str(), address(k.family, k.dst).c_str(), k.src_port, k.dst_port,
      s.first_seq, s.packets, s.bytes, duration, std::string(close_reason_name(s.reason)).c_str());
  std::string line = head;
  if (!truncated) line.append(s.result, s.result_len);
  line += truncated ? "}, \"services_truncated\": true}\n" : "}}\n";
  return line;
}

// Writes the records waiting in the results ring and returns their descriptors to the pool.
size_t Dataplane::Impl::write_records() {
  if (results == nullptr) return 0;
  void* entries[256];
  size_t total = 0;
  unsigned n;
  while ((n = rte_ring_dequeue_burst(results, entries, 256, nullptr)) > 0) {
    for (unsigned i = 0; i < n; ++i) {
      const std::string line = record_json(*static_cast<Segment*>(entries[i]));
      if (records) std::fwrite(line.data(), 1, line.size(), records);
      if (record_socket) record_socket->write(line);
    }
    rte_mempool_put_bulk(segments, entries, n);
    total += n;
  }
  if (total > 0 && records) std::fflush(records);
  // Also when nothing is new: sends what waited and reconnects a lost collector.
  if (record_socket) record_socket->flush();
  records_written += total;
  return total;
}

Status Dataplane::activate_block(const config::BlockConfig& block) {
  Impl& d = *impl_;
  if (!d.metering) return Error{"no profile is metered, so blocks cannot be activated"};
  auto members = resolve_members(d.config, block.members);
  if (!members) return Error{"block '" + block.id + "': " + members.error()};
  const int profile = d.config.profile_index(block.profile);
  if (profile < 0) return Error{"block '" + block.id + "': no profile '" + block.profile + "'"};
  BlockSpec spec{block.id, static_cast<size_t>(profile), block.min_rate, block.max_rate,
                 std::move(members).value()};
  auto serial = d.metering->activate(spec);
  if (!serial) return Error{serial.error()};
  d.block_ids[serial.value()] = block.id;
  return {};
}

Result<BlockUsage> Dataplane::deactivate_block(const std::string& id) {
  Impl& d = *impl_;
  if (!d.metering) return Error{"no profile is metered"};
  auto usage = d.metering->deactivate(id);
  if (usage) d.block_usage.push_back(usage.value());
  return usage;
}

Result<BlockUsage> Dataplane::block_usage(const std::string& id) const {
  if (!impl_->metering) return Error{"no profile is metered"};
  return impl_->metering->usage(id);
}

std::vector<std::string> Dataplane::poll(int64_t elapsed_ns, int64_t now_ns) {
  Impl& d = *impl_;
  std::vector<std::string> log;
  d.write_records();
  for (ScheduledBlock& sb : d.schedule) {
    const config::BlockConfig& b = *sb.block;
    // Where the block is on its own clock: from segx's start, or from the wall clock.
    const int64_t since_start =
        b.start_at ? now_ns - *b.start_at : elapsed_ns - b.start_after.count();
    if (sb.state == ScheduledBlock::State::waiting && since_start >= 0) {
      if (since_start >= b.duration.count()) {
        sb.state = ScheduledBlock::State::done;
        log.push_back("block " + b.id + " ended before segx started; not activated");
      } else if (Status s = activate_block(b); s) {
        sb.state = ScheduledBlock::State::active;
        sb.active_since = std::chrono::steady_clock::now();
        log.push_back("block " + b.id + " active for " + config::format_duration(b.duration) +
                      " (profile " + b.profile + ")");
      } else {
        sb.state = ScheduledBlock::State::done;
        log.push_back("block " + b.id + " not activated: " + s.error());
      }
    } else if (sb.state == ScheduledBlock::State::active &&
               std::chrono::steady_clock::now() - sb.active_since >= b.duration) {
      sb.state = ScheduledBlock::State::done;
      auto usage = deactivate_block(b.id);
      log.push_back(
          "block " + b.id + " ended" +
          (usage ? ": " + usage_summary(usage.value()) : std::string(" (") + usage.error() + ")"));
    }
  }
  // Ended blocks stay in the statistics long enough for the last scrapes to see their final
  // counts, and no longer: a run that meters a block a minute for a year stays flat.
  const int64_t keep = std::chrono::nanoseconds(d.config.pipeline.metering.keep_ended).count();
  d.blocks_expired += std::erase_if(d.block_usage, [&](const BlockUsage& u) {
    return u.end_ns != 0 && now_ns - u.end_ns > keep;
  });
  // Last, so that a reader sees the blocks this poll started or ended.
  if (uint64_t upto = 0; d.exchange->pending(upto))
    d.exchange->publish(std::make_shared<const Stats>(d.collect()), upto, false);
  return log;
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
