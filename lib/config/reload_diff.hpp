#pragma once
// What a reload would change: the running configuration compared with the file read again,
// split into what a running segx can take live (profiles, the default action, subscribers,
// blocks, log.level) and what needs a restart (everything else: EAL, ports, lcores, queues,
// rings, pools, tables, providers, the market and its listeners, metrics, results).
// Only compares; changes nothing.

#include <string>
#include <vector>

#include "config/config.hpp"

namespace segx::config {

/// The differences between two configurations, by key path as written in YAML
/// ("ports[1].rx_queues", "eal.lcores", "pipeline.default.output").
struct ReloadDiff {
  /// Keys that differ and need a restart, in the order of the sections in the file. A list
  /// entry added or removed is one path ("ports[2]"); a list of values ("eal.lcores") is
  /// one path.
  std::vector<std::string> restart;
  /// Keys that differ and may change live: "profiles", "pipeline.default.action",
  /// "pipeline.default.output", "pipeline.default.by_input", "subscribers", "blocks",
  /// "log.level" (each at most once).
  std::vector<std::string> live;
  /// Profiles by name: new in `next`, in both but different (anything in them, or their
  /// place in the list), gone from `next`.
  std::vector<std::string> profiles_added, profiles_changed, profiles_removed;
  /// Blocks by id, like profiles.
  std::vector<std::string> blocks_added, blocks_changed, blocks_removed;

  /// True when `next` may be applied to a running segx (nothing needs a restart).
  bool live_only() const { return restart.empty(); }
  /// True when the two configurations are the same in everything segx runs.
  bool empty() const { return restart.empty() && live.empty(); }
};

/// Compares `running` with `next`. Both are whole, validated configurations. A service's
/// options (YAML) are compared by value: mappings regardless of key order, scalars by their
/// text. `source` (the file name) and positions are not compared.
ReloadDiff reload_diff(const Config& running, const Config& next);

/// Texts equal exactly when reload_diff counts the two the same: a profile (everything in
/// it, not its place in the list), the subscribers, a block. For whoever must tell versions
/// apart the same way (the data plane's profile slots).
std::string profile_text(const ProfileConfig& profile);
std::string subscribers_text(const std::vector<SubscriberConfig>& subscribers);
std::string block_text(const BlockConfig& block);

}  // namespace segx::config
