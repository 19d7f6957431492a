#pragma once
// The rules a market runs by: its role in a shared ledger, its limits, and who holds which
// member identifiers (from the configuration's subscribers).

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace segx::market {

/// What this segx does in a market shared by several appliances (docs/scale-out.md).
enum class MarketRole {
  standalone,  ///< the only appliance; runs the market
  moderator,   ///< runs the market and meters blocks; others meter too
  appliance,   ///< meters blocks and reports usage; takes no market requests
};

/// Rules of this market. Times in ns.
struct MarketOptions {
  MarketRole role = MarketRole::standalone;
  std::string appliance = "local";    ///< this appliance's name in activation and usage events
  double rate_share = 1.0;            ///< share of each block's rates this appliance enforces
  std::string provider_id = "local";  ///< who this appliance sells as (providers.id)
  std::string currency = "EUR";
  int64_t rating_window_ns = 60LL * 86400 * 1'000'000'000;       ///< after a lease ends
  int64_t reputation_window_ns = 365LL * 86400 * 1'000'000'000;  ///< ratings that count
  uint32_t bids_per_lot = 1000;
  uint32_t charge_retries = 0;  ///< extra attempts with the same key within one settle() pass
  int64_t settlement_deadline_ns = 24LL * 3600 * 1'000'000'000;  ///< from the lot's close
  int64_t settlement_backoff_ns = 1'000'000'000;                 ///< first wait, doubling ...
  int64_t settlement_max_backoff_ns = 300LL * 1'000'000'000;     ///< ... up to this
  uint32_t activation_attempts = 5;               ///< then the lease fails and is refunded
  int64_t activation_backoff_ns = 1'000'000'000;  ///< after the first failure, doubling
  std::set<std::string> profiles;                 ///< profiles that may be sold (metered ones)
  /// Who holds which devices, phones, prefixes, MACs and VLANs: a bid names only its
  /// bidder's (a subscriber's id is the principal that holds it).
  std::vector<config::SubscriberConfig> subscribers;
};

/// The options a configuration stands for.
MarketOptions market_options(const config::Config& config);

}  // namespace segx::market
