#pragma once
// The control plane beside the data plane in one segx process: the ledger, the market and
// its settlement thread, and the bridge that turns leases into metered blocks. main() owns
// one and calls tick() from its loop; no DPDK type appears here.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/api.hpp"
#include "api/auth.hpp"
#include "api/server.hpp"
#include "common/result.hpp"
#include "config/config.hpp"
#include "dataplane/dataplane.hpp"
#include "ledger/ledger.hpp"
#include "market/market.hpp"
#include "market/series.hpp"
#include "metrics/metrics.hpp"

namespace segx::app {

/// Leases become blocks in the running data plane; their usage comes back at the end.
/// A data-plane block's counters as the series store takes them.
market::BlockSample block_sample(const dataplane::BlockUsage& u);

/// Leases become blocks in the running data plane; their usage (with the compliance summary
/// of their per-second series) comes back at the end.
class DataplaneActivator final : public market::Activator {
 public:
  DataplaneActivator(dataplane::Dataplane& dp, market::BlockSeries& series)
      : dp_(dp), series_(series) {}
  Status activate(const market::BlockRequest& block) override;
  Result<market::Usage> deactivate(const std::string& id) override;

 private:
  dataplane::Dataplane& dp_;
  market::BlockSeries& series_;
};

/// The market side of a running appliance.
class ControlPlane {
 public:
  /// Opens the ledger (and verifies its chain: a broken chain is not extended), the payment
  /// gateway and the market, replaying the journal. Lines for the start-up banner go to
  /// `log`.
  static Result<std::unique_ptr<ControlPlane>> open(const config::Config& config,
                                                    std::vector<std::string>& log);
  ~ControlPlane();
  /// Confines the threads started by open() (the ledger's writer, settlement) to the CPUs
  /// the calling thread may run on: called by the main thread after EAL init, that is the
  /// main lcore's CPUs, where the API's threads run too, off every data-plane lcore's CPU.
  Status confine_to_callers_cpus();
  /// Serves the REST API and the board on market.api.listen and adds the API's, the
  /// market's and the ledger's families to `registry` (which must stay valid until stop()).
  /// With no token at all (none configured, none issued in the ledger) the API is not
  /// served: no one could use it, and its port stays free.
  /// Errors: the token events in the ledger cannot be read, TLS files cannot be loaded, the
  /// address cannot be bound. Lines for the banner go to `log`.
  /// `reload` answers POST /v1/admin/reload (empty: 503).
  Status start_api(const config::Config& config, metrics::Registry& registry,
                   std::vector<std::string>& log, std::function<api::AdminAnswer()> reload = {});
  /// Whether the market can take a reloaded configuration's subscribers (Market::check_rules).
  Status check_reload(const config::Config& next) const;
  /// Hands the market the reloaded configuration's sellable profiles and subscribers, and
  /// the API its profiles. Call from the thread that runs tick() (the main lcore): leases
  /// are awarded only there, so a check_reload() that passed still holds.
  Status apply_reload(const config::Config& next);
  /// Called from the main loop: closes lots, starts and ends leases' blocks (at most every
  /// 100 ms). Returns lines to log.
  std::vector<std::string> tick(dataplane::Dataplane* dp);
  /// At shutdown, before the data plane stops: stops the API (requests in progress finish),
  /// records the usage of active blocks, stops settlement and closes the ledger.
  std::vector<std::string> stop(dataplane::Dataplane* dp);
  market::Market& market() { return *market_; }
  /// Every active block's per-second series (sampled by tick()).
  const market::BlockSeries& series() const { return *series_; }
  /// Figures for the exit report.
  nlohmann::json report() const;

 private:
  ControlPlane() = default;
  void settlement_loop();
  void sample(dataplane::Dataplane& dp);

  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<market::PaymentGateway> gateway_;
  market::SystemClock clock_;
  std::unique_ptr<market::Market> market_;
  std::unique_ptr<api::TokenStore> tokens_;
  std::unique_ptr<api::Api> api_;
  std::unique_ptr<api::Server> api_server_;
  std::chrono::steady_clock::time_point last_tick_{};
  std::unique_ptr<market::BlockSeries> series_;
  std::chrono::steady_clock::time_point next_sample_{};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<bool> stop_settling_{false};  // settlement stops between gateway calls
  std::thread settlement_;
};

/// `segx ledger verify --config FILE`: checks the configured ledger's whole chain. Prints
/// the result; returns 0 when intact, 5 when broken, 1 on a configuration or open error.
int ledger_command(int argc, char** argv);

}  // namespace segx::app
