// The market's and the ledger's figures for /metrics, read from their stats at scrape time
// (one shared lock of the market, no per-event bookkeeping on the paths that change it).

#include "api/api.hpp"

namespace segx::api {

void add_market_collector(metrics::Registry& registry, const market::Market& market,
                          const ledger::Ledger& ledger) {
  registry.add_collector([&market, &ledger](std::vector<metrics::FamilySnapshot>& out) {
    using metrics::FamilySnapshot;
    using metrics::Type;
    const market::MarketStats s = market.stats();
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

}  // namespace segx::api
