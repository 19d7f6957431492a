#pragma once
// The market's families for /metrics: producers register with the generic registry
// (lib/metrics), so the API and the app need not know what the market counts.

#include "ledger/ledger.hpp"
#include "market/market.hpp"
#include "market/series.hpp"
#include "metrics/metrics.hpp"

namespace segx::market {

/// Families of the market and ledger for /metrics, read at scrape time: lots, open lots,
/// bids, groups, leases, active leases, charges by result, ratings, ledger events, commits,
/// failures and commit latency.
void add_market_collector(metrics::Registry& registry, const Market& market,
                          const ledger::Ledger& ledger);

/// Per-block families of the active blocks' series, read at scrape time:
/// segx_block_rate_bytes_per_second{block,kind,window},
/// segx_block_promised_rate_bytes_per_second{block,bound} and
/// segx_block_compliance_seconds{block,kind}. `series` must outlive the registry's scrapes.
void add_series_collector(metrics::Registry& registry, const BlockSeries& series);

}  // namespace segx::market
