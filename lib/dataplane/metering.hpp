#pragma once
// Time-block metering, the data-plane side of the auction. A block (won at auction or
// provisioned in the configuration) covers one metered profile and a set of members; each
// member is an IP prefix, a MAC address or a VLAN (devices, subscribers and telephone
// numbers resolve to those). Each block has a two-rate three-colour meter (RFC 2698, via
// rte_meter trTCM): up to the minimum rate is green, up to the maximum yellow, above it
// red and dropped. Packets and bytes are counted per block and per member by colour.
//
// The control plane changes blocks while the data plane runs, without stopping or locking
// it: tables are immutable snapshots published with a release store, IPv4 prefixes live in
// one rte_lpm updated in place under RCU, IPv6 prefixes in a pair of rte_lpm6 that swap
// with the snapshot, and nothing is freed or reused before every rx lcore has passed a
// quiescent state (rte_rcu_qsbr). Each rx lcore has its own meters and counters; a block's
// rates are split evenly between the rx lcores.

#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_meter.h>
#include <rte_rcu_qsbr.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "config/config.hpp"
#include "dataplane/counters.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/packet.hpp"

namespace segx::dataplane {

/// A member identifier after resolution: what the data plane can recognise.
struct MemberId {
  enum class Kind : uint8_t { ip, mac, vlan };
  Kind kind = Kind::ip;
  config::IpPrefix ip;
  config::MacAddress mac{};
  uint16_t vlan = 0;
  /// "ip 10.1.0.5/32", "mac 02:00:00:00:00:07", "vlan 100": names it in usage reports.
  std::string label() const;
};

/// Resolves configured members: a device is its addresses, MACs and VLANs; a subscriber
/// all its devices; a telephone number the addresses of the devices that carry it.
Result<std::vector<MemberId>> resolve_members(const config::Config& config,
                                              const std::vector<config::MemberConfig>& members);

/// A block to activate.
struct BlockSpec {
  std::string id;
  /// The profile's meter id (ProfileRuntime::meter_id): one per profile name, kept across
  /// reloads, so a block outlives a change of its profile. At start, the profile's index.
  size_t profile = 0;
  uint64_t min_rate = 0;  ///< bits per second, 0 for none (then nothing is green)
  uint64_t max_rate = 0;  ///< bits per second, 0 for none (then nothing is red)
  std::vector<MemberId> members;
};

/// Counters one rx lcore keeps for one block or member reference.
struct ColourCounters {
  std::array<Counter, 3> packets;
  std::array<Counter, 3> bytes;
};

/// The block's packets the meter passed that were dropped afterwards on the rx lcore.
struct DropCounters {
  Counter packets;
  Counter bytes;
};

/// An immutable view of the active blocks, read by rx lcores between quiescent states.
struct MeterSnapshot;

/// What metering decided about a packet.
struct MeterVerdict {
  bool member = false;        ///< it belongs to an active block of its profile
  uint8_t colour = 0;         ///< RTE_COLOR_GREEN, _YELLOW or _RED (drop)
  uint16_t slot = 0;          ///< the block's slot, when member (for count_drop)
  uint64_t block_serial = 0;  ///< the block, when member
};

/// The block and member tables with their meters.
class Metering {
 public:
  /// Creates empty tables for `rx_lcores` rx lcores; `name` keeps DPDK object names unique.
  static Result<std::unique_ptr<Metering>> create(const config::Config& config, unsigned rx_lcores,
                                                  const std::string& name);
  ~Metering();
  Metering(const Metering&) = delete;
  Metering& operator=(const Metering&) = delete;

  // ---- control plane: one thread only --------------------------------------------------

  /// Activates a block now and returns its serial (unique in this run). Errors: unknown or
  /// unmetered profile, id already active, no free block slot or member entry, a member
  /// already in another active block of the same profile.
  Result<uint64_t> activate(const BlockSpec& spec);
  /// Deactivates a block; once it returns no packet is metered by it. Returns its final usage.
  Result<BlockUsage> deactivate(const std::string& id);
  /// Usage of an active block so far.
  Result<BlockUsage> usage(const std::string& id) const;
  /// Names meter id `id` (a new one, or after a reload) and says whether it is metered.
  void set_profile(size_t id, const std::string& name, bool metered);
  /// Ids of the active blocks.
  std::vector<std::string> active() const;

  // ---- data plane ------------------------------------------------------------------------

  /// The RCU variable the rx lcores report to (thread id = rx index).
  rte_rcu_qsbr* rcu() const { return rcu_; }
  /// The snapshot to use for one burst (load-acquire).
  const MeterSnapshot* snapshot() const { return current_.load(std::memory_order_acquire); }
  /// Meters one packet of a metered profile on rx lcore `rx`. `frame` is the Ethernet
  /// header (for MAC members); `now` the TSC.
  MeterVerdict meter(unsigned rx, const MeterSnapshot& s, const PacketInfo& info,
                     const uint8_t* frame, uint32_t profile, uint32_t bytes, uint64_t now);
  /// A packet meter() passed (green or yellow) in `slot` was dropped afterwards on rx
  /// lcore `rx` (a full ring): it counts against what the block delivered.
  void count_drop(unsigned rx, uint16_t slot, uint32_t bytes);

 private:
  struct Lcore;
  struct Active;
  Metering() = default;
  Status publish(std::unique_ptr<MeterSnapshot> next);
  BlockUsage sum_usage(const Active& a) const;
  Status rebuild_lpm6(MeterSnapshot& next);

  std::string name_;
  std::vector<std::string> profile_names_;  ///< by meter id
  std::vector<bool> profile_metered_;       ///< by meter id
  unsigned rx_lcores_ = 0;
  uint32_t max_blocks_ = 0, max_members_ = 0;
  uint64_t burst_ns_ = 0;
  rte_rcu_qsbr* rcu_ = nullptr;
  rte_lpm* lpm4_ = nullptr;
  std::array<rte_lpm6*, 2> lpm6_{};  ///< created at the first IPv6 member
  std::atomic<const MeterSnapshot*> current_{nullptr};
  std::unique_ptr<MeterSnapshot> owned_;  ///< the published snapshot
  std::vector<std::unique_ptr<Lcore>> lcores_;
  std::map<std::string, std::unique_ptr<Active>> active_;
  std::map<std::string, uint32_t> member_by_label_;  ///< member entry of each identifier
  std::vector<uint16_t> free_slots_;
  std::vector<uint32_t> free_members_;
  uint64_t next_serial_ = 1;
};

}  // namespace segx::dataplane
