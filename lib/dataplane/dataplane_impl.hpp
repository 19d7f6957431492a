#pragma once
// Internal: the state behind Dataplane, shared by the files that implement it: build.cpp
// (create: pools, ports, rings, lcore plans, services, peers), collect.cpp (counters summed
// for readers), records.cpp (segment records), schedule.cpp (blocks and the control loop's
// poll) and dataplane.cpp (start, stop, the report).

#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/classifier.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/lcore_plan.hpp"
#include "dataplane/metering.hpp"
#include "dataplane/record_socket.hpp"
#include "dataplane/service.hpp"
#include "dataplane/stats.hpp"

namespace segx::dataplane {

// A configured block's place in time: activated once its start passes, deactivated when
// its duration has run out (or at stop).
struct ScheduledBlock {
  config::BlockConfig block;  ///< a copy: a reload replaces the configuration
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

/// A configured duration in TSC cycles.
inline uint64_t ns_to_tsc(config::Duration d) {
  return static_cast<uint64_t>(static_cast<long double>(d.count()) * rte_get_tsc_hz() / 1e9L);
}

/// Adds one lcore's counters of one profile slot to a profile's figures.
inline void add_counters(ProfileReport& r, const ProfileCounters& pc) {
  r.packets += pc.packets.get();
  r.bytes += pc.bytes.get();
  for (size_t reason = 1; reason < pc.segments.size(); ++reason) {
    const uint64_t n = pc.segments[reason].get();
    r.segments += n;
    r.closed_by[std::string(close_reason_name(static_cast<CloseReason>(reason)))] += n;
  }
}

/// What telemetry says of each profile of a configuration.
std::vector<ProfileInfo> profile_infos(const config::Config& c);

/// A chain built for one profile on one worker, not yet installed (reload.cpp).
struct ChainBuild {
  std::vector<std::unique_ptr<Service>> chain;
  std::vector<uint32_t> offsets;
  int sub_pos = -1;
  uint16_t sub_peer = 0;
  uint32_t sub_service = 0;
  std::string sub_name;
  LcoreArray<ServiceCounters> counters;
  bool mirrors = false;  ///< a service of it mirrors packets to a port
};

/// What a profile slot holds (lcore_plan.hpp, ProfileRuntime).
struct ProfileSlot {
  enum class State : uint8_t { free, live, retiring } state = State::free;
  std::string name;
  std::string version;                ///< profile_version() of what it holds
  std::vector<std::string> services;  ///< its chain's service names, in order
  uint64_t retired_in = 0;            ///< the generation that retired it
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

  // Reloads (reload.cpp). Slot i of Shared::profiles and of each worker's chains.
  std::vector<ProfileSlot> slots;
  std::vector<uint32_t> live_slots;      // by index in config.profiles
  std::vector<std::string> meter_names;  // meter id -> profile name (never shrinks)
  uint64_t generation = 1;
  // Classifiers replaced by a reload, with that reload's generation: freed once every rx
  // lcore finished its pass of that generation (and so no longer reads them).
  std::vector<std::pair<uint64_t, std::unique_ptr<Classifier>>> old_classifiers;
  // Counters of slots gone, by profile name and by (profile, service): totals never go back.
  std::map<std::string, ProfileReport> profile_carry;
  std::map<std::pair<std::string, std::string>, ServiceStats> service_carry;
  /// The profile's meter id, a new one for a name not seen before.
  uint16_t meter_id(const std::string& name);
  /// Builds profile `profile`'s chain for worker lcore `w`.
  Result<ChainBuild> build_chain(const LcorePlan& w, const config::Config& c,
                                 const config::ProfileConfig& profile);
  /// Puts a built chain in slot `slot` of worker `w` (the slot is free: no lcore reads it).
  void install_chain(LcorePlan& w, uint32_t slot, ChainBuild&& b);
  /// Fills slot `slot` of Shared::profiles with a profile (the slot is free).
  void fill_slot(uint32_t slot, const config::ProfileConfig& profile, const config::Config& c);
  /// The lowest generation every rx lcore finished its reload pass of.
  uint64_t settled() const;
  /// Frees retired slots and old classifiers nothing refers to any more (main lcore, poll).
  void retire();
  /// The default action and the scan period, from `config`.
  void apply_defaults();

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
