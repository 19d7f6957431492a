#pragma once
// The data plane's metrics: a collector that turns dataplane::Stats (plain counters, read
// without stopping an lcore) into segx_* families at every scrape. The names, types and help
// texts are here and only here; docs/observability.md lists the same names (a unit test
// checks that it does).

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/dataplane.hpp"
#include "metrics/metrics.hpp"

namespace segx::metrics {

/// Where the collector gets counters; returns null when there are none.
using StatsSource = std::function<std::shared_ptr<const dataplane::Stats>()>;

/// The data-plane families for one Stats (what a scrape of it shows).
std::vector<FamilySnapshot> dataplane_families(const dataplane::Stats& stats);

/// Registers a collector that calls `source` at each scrape.
void add_dataplane_collector(Registry& registry, StatsSource source);

/// Registers segx_build_info{version, dpdk} (always 1) and segx_start_time_seconds.
void add_process_info(Registry& registry, const std::string& version,
                      const std::string& dpdk_version, double start_time_seconds);

}  // namespace segx::metrics
