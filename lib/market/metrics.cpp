// The market's, the ledger's and the blocks' series' figures for /metrics, read at scrape
// time (one shared lock of the market, no per-event bookkeeping on the paths that change it).

#include "market/metrics.hpp"

#include <iterator>

namespace segx::market {

void add_market_collector(metrics::Registry& registry, const market::Market& market,
                          const ledger::Ledger& ledger) {
  registry.add_collector([&market, &ledger](std::vector<metrics::FamilySnapshot>& out) {
    using metrics::FamilySnapshot;
    using metrics::Type;
    const MarketStats s = market.stats();
    const ledger::LedgerStats l = ledger.stats();
    const auto counter = [&](const char* name, const char* help, double v) {
      out.push_back(FamilySnapshot{name, help, Type::counter, {}}.add({}, v));
    };
    const auto gauge = [&](const char* name, const char* help, double v) {
      out.push_back(FamilySnapshot{name, help, Type::gauge, {}}.add({}, v));
    };
    counter("segx_market_lots_total", "Lots put up for sale", static_cast<double>(s.lots));
    gauge("segx_market_open_lots", "Lots open for bids", static_cast<double>(s.open_lots));
    counter("segx_market_bids_total", "Bids taken (a group's bid counts once)",
            static_cast<double>(s.bids));
    counter("segx_market_groups_total", "Group bids organised", static_cast<double>(s.groups));
    counter("segx_market_leases_total", "Leases awarded", static_cast<double>(s.leases));
    gauge("segx_market_active_leases", "Leases whose block is metered now",
          static_cast<double>(s.active_leases));
    FamilySnapshot charges{
        "segx_market_charges", "Charges by current result (pending ones move on)", Type::gauge, {}};
    charges.add({{"result", "accepted"}}, static_cast<double>(s.charges_accepted))
        .add({{"result", "declined"}}, static_cast<double>(s.charges_declined))
        .add({{"result", "error"}}, static_cast<double>(s.charges_error))
        .add({{"result", "pending"}}, static_cast<double>(s.charges_pending));
    out.push_back(std::move(charges));
    counter("segx_market_ratings_total", "Ratings in the ledger, both directions",
            static_cast<double>(s.ratings));
    gauge("segx_market_failed_leases", "Leases that ended failed (never activated): refunded",
          static_cast<double>(s.failed_leases));
    FamilySnapshot refunds{
        "segx_market_refunds", "Refunds of failed leases' charges by state", Type::gauge, {}};
    refunds.add({{"state", "accepted"}}, static_cast<double>(s.refunds_accepted))
        .add({{"state", "pending"}}, static_cast<double>(s.refunds_pending))
        .add({{"state", "failed"}}, static_cast<double>(s.refunds_failed));
    out.push_back(std::move(refunds));
    counter("segx_market_rolled_back_events_total",
            "Market events undone because their ledger commit failed",
            static_cast<double>(s.rolled_back));
    counter("segx_ledger_events_total", "Events appended and durable since segx started",
            static_cast<double>(l.events));
    counter("segx_ledger_commits_total", "Ledger transactions (group commits) since segx started",
            static_cast<double>(l.commits));
    gauge("segx_ledger_max_batch_events", "Most events stored by one commit since segx started",
          static_cast<double>(l.max_batch));
    counter("segx_ledger_commit_failures_total",
            "Ledger commits that failed after their retries (their events were refused)",
            static_cast<double>(l.commit_failures));
    counter("segx_ledger_commit_retries_total",
            "Ledger commit attempts repeated after a transient store error",
            static_cast<double>(l.retries));
    const ledger::LedgerHealth h = ledger.health();
    gauge("segx_ledger_healthy", "1 while the ledger's store takes commits, 0 while it fails",
          h.ok ? 1 : 0);
    metrics::HistogramValue latency;
    latency.bounds.assign(std::begin(ledger::commit_latency_bounds),
                          std::end(ledger::commit_latency_bounds));
    latency.counts.assign(l.commit_latency.begin(), l.commit_latency.end());
    latency.sum = l.commit_seconds;
    out.push_back(FamilySnapshot{
        "segx_ledger_commit_seconds",
        "Time a ledger commit took: numbering, chaining, writing and "
        "fsync of one batch",
        Type::histogram,
        {}}.add({}, std::move(latency)));
  });
}

void add_series_collector(metrics::Registry& registry, const BlockSeries& series) {
  registry.add_collector([&series](std::vector<metrics::FamilySnapshot>& out) {
    using metrics::FamilySnapshot;
    using metrics::Type;
    // Active blocks only: a block's series leave /metrics when it ends, so the number of
    // series is bounded by pipeline.metering.blocks.
    FamilySnapshot rate{"segx_block_rate_bytes_per_second",
                        "A block's rate over the last 1 s or 10 s: offered (green + yellow + "
                        "red) or delivered (green + yellow - dropped after the meter)",
                        Type::gauge,
                        {}};
    FamilySnapshot promised{"segx_block_promised_rate_bytes_per_second",
                            "A block's promised minimum and maximum rates (0: none)",
                            Type::gauge,
                            {}};
    FamilySnapshot seconds{"segx_block_compliance_seconds",
                           "A block's seconds so far: measured, owed (offered >= minimum), "
                           "shortfall (owed, delivered < minimum), at_max (red > 0)",
                           Type::gauge,
                           {}};
    for (const SeriesView& v : series.active()) {
      const auto b = [&](const char* kind, const char* window) {
        return metrics::Labels{{"block", v.id}, {"kind", kind}, {"window", window}};
      };
      rate.add(b("offered", "1s"), v.offered_bps_1s / 8)
          .add(b("offered", "10s"), v.offered_bps_10s / 8)
          .add(b("delivered", "1s"), v.delivered_bps_1s / 8)
          .add(b("delivered", "10s"), v.delivered_bps_10s / 8);
      promised.add({{"block", v.id}, {"bound", "min"}}, static_cast<double>(v.min_rate) / 8)
          .add({{"block", v.id}, {"bound", "max"}}, static_cast<double>(v.max_rate) / 8);
      const Compliance& c = v.compliance;
      seconds.add({{"block", v.id}, {"kind", "measured"}}, static_cast<double>(c.seconds))
          .add({{"block", v.id}, {"kind", "owed"}}, static_cast<double>(c.owed_seconds))
          .add({{"block", v.id}, {"kind", "shortfall"}}, static_cast<double>(c.shortfall_seconds))
          .add({{"block", v.id}, {"kind", "at_max"}}, static_cast<double>(c.at_max_seconds));
    }
    out.push_back(std::move(rate));
    out.push_back(std::move(promised));
    out.push_back(std::move(seconds));
  });
}

}  // namespace segx::market
