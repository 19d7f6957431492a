#pragma once
// The data plane's metrics: a collector that turns Stats (plain counters, read without
// stopping an lcore) into segx_* families at every scrape, registered with lib/metrics's
// generic registry (a producer depends on the registry, not the reverse). The names, types
// and help texts are here and only here; docs/observability.md lists the same names (a unit
// test checks that it does). No DPDK header.

#include <functional>
#include <memory>
#include <vector>

#include "dataplane/dataplane.hpp"
#include "metrics/metrics.hpp"

namespace segx::dataplane {

/// Where the collector gets counters; returns null when there are none.
using StatsSource = std::function<std::shared_ptr<const Stats>()>;

/// The data-plane families for one Stats (what a scrape of it shows).
std::vector<metrics::FamilySnapshot> metric_families(const Stats& stats);

/// Registers a collector that calls `source` at each scrape.
void add_metrics_collector(metrics::Registry& registry, StatsSource source);

}  // namespace segx::dataplane
