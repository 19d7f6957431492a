#pragma once
// Internal: the state behind Dataplane, shared by the files that implement it: build.cpp
// (create: pools, ports, rings, lcore plans, services, peers), collect.cpp (counters summed
// for readers), records.cpp (segment records), schedule.cpp (blocks and the control loop's
// poll) and dataplane.cpp (start, stop, the report).

#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/classifier.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/lcore_plan.hpp"
#include "dataplane/metering.hpp"
#include "dataplane/record_socket.hpp"
#include "dataplane/stats.hpp"

namespace segx::dataplane {

// A configured block's place in time: activated once its start passes, deactivated when
// its duration has run out (or at stop).
struct ScheduledBlock {
  const config::BlockConfig* block;
  enum class State { waiting, active, done } state = State::waiting;
  // When activation completed: the block lasts its full duration from then, however long
  // activation took (a first IPv6 member builds a table).
  std::chrono::steady_clock::time_point active_since;
};

// LcorePlans live in DPDK's memory on their lcore's socket.
struct PlanDeleter {
  void operator()(LcorePlan* p) const {
    p->~LcorePlan();
    rte_free(p);
  }
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
  std::vector<std::unique_ptr<LcorePlan, PlanDeleter>> plans;
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

  // Peer links over shared memory (links.cpp).
  struct LinkState {
    enum class State : uint8_t { open, quieting, quiet } state = State::open;
    uint32_t epoch = 0;  ///< quiet_epoch that made it quiet
    std::chrono::steady_clock::time_point since{}, down_since{};
    bool down_seen = false;
  };
  std::vector<bool> port_shared_memory;  // by port: net_memif, whose peer's disconnect unmaps
  std::vector<LinkState> links;          // by port

  ~Impl();
  /// Main lcore, every poll: quiets the links whose peer said goodbye, answers once every
  /// lcore stopped touching them, and lets them be polled again after the disconnect.
  std::vector<std::string> poll_links();
  /// At stop (lcores finished, ports open): goodbye to the peers of shared-memory links, and
  /// up to a second for their replies. Returns the other frames received meanwhile (freed).
  uint64_t say_goodbye();
  Stats collect();
  Status build(const config::Config& c);
  Status build_rings_and_plans();
  Status build_services();
  Status build_peers();
  size_t write_records();
  std::string record_json(const Segment& s) const;
  Report stop();
};

}  // namespace segx::dataplane
