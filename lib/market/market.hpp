#pragma once
// The market: lots, bids, groups, awards, block activation, settlement and ratings, kept
// in the ledger. Every change is an event appended to the ledger and applied to the
// in-memory state in the same order; a call that changes something returns only once its
// event is durable. At open the state is rebuilt by replaying the journal, so a restart
// loses nothing that was acknowledged. No DPDK here: blocks reach the data plane through
// the Activator interface.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "config/config.hpp"
#include "ledger/ledger.hpp"
#include "market/gateway.hpp"
#include "market/types.hpp"

namespace segx::market {

/// The time, injectable so tests decide when auctions close.
class Clock {
 public:
  virtual ~Clock() = default;
  /// ns since the Unix epoch.
  virtual int64_t now_ns() const = 0;
};

/// The wall clock.
class SystemClock final : public Clock {
 public:
  int64_t now_ns() const override;
};

/// A block the data plane should meter, for one lease.
struct BlockRequest {
  std::string id;  ///< "lease-<id>"
  std::string profile;
  int64_t duration_ns = 0;  ///< what is left of the lease
  uint64_t min_rate = 0;    ///< bits per second
  uint64_t max_rate = 0;
  std::vector<config::MemberConfig> members;
};

/// The data plane as the market sees it. The app implements it over dataplane::Dataplane.
class Activator {
 public:
  virtual ~Activator() = default;
  /// Starts metering a block now.
  virtual Status activate(const BlockRequest& block) = 0;
  /// Stops metering it and returns what it carried.
  virtual Result<Usage> deactivate(const std::string& id) = 0;
};

/// What this segx does in a market shared by several appliances (docs/scale-out.md).
enum class MarketRole {
  standalone,  ///< the only appliance; runs the market
  moderator,   ///< runs the market and meters blocks; others meter too
  appliance,   ///< meters blocks and reports usage; takes no market requests
};

/// Rules of this market.
struct MarketOptions {
  MarketRole role = MarketRole::standalone;
  std::string appliance = "local";    ///< this appliance's name in activation and usage events
  double rate_share = 1.0;            ///< share of each block's rates this appliance enforces
  std::string provider_id = "local";  ///< who this appliance sells as (providers.id)
  std::string currency = "EUR";
  int64_t rating_window_ns = 60LL * 86400 * 1'000'000'000;       ///< after a lease ends
  int64_t reputation_window_ns = 365LL * 86400 * 1'000'000'000;  ///< ratings that count
  uint32_t bids_per_lot = 1000;
  uint32_t charge_retries = 3;     ///< more attempts after a gateway error, same key
  std::set<std::string> profiles;  ///< profiles that may be sold (metered ones)
  std::vector<config::SubscriberConfig> subscribers;  ///< for device/user/phone members
};

/// The options a configuration stands for.
MarketOptions market_options(const config::Config& config);

/// A bid taken but not yet durable.
struct PendingBid {
  Bid bid;
  uint64_t ticket = 0;  ///< for Ledger::wait_durable
};

/// Figures for logs and metrics.
struct MarketStats {
  uint64_t lots = 0, open_lots = 0, bids = 0, groups = 0, leases = 0, active_leases = 0;
  uint64_t charges_accepted = 0, charges_declined = 0, charges_error = 0, charges_pending = 0;
  uint64_t ratings = 0;
  uint64_t replayed_events = 0;  ///< read from the ledger at open
};

/// The market. Thread-safe: API threads call it concurrently; the control loop calls tick().
class Market {
 public:
  /// Rebuilds the state from the ledger and takes it from there. Fails if the journal holds
  /// an event this build cannot read.
  static Result<std::unique_ptr<Market>> open(MarketOptions options, ledger::Ledger& ledger,
                                              PaymentGateway& gateway, const Clock& clock);
  ~Market();
  Market(const Market&) = delete;
  Market& operator=(const Market&) = delete;

  // ---- changes: each returns once its event is durable ------------------------------
  /// A provider (or an admin for the appliance) puts blocks up for sale. Returns the lot id.
  Result<uint64_t> create_lot(const Actor& actor, const LotSpec& spec);
  /// Withdraws an open lot; its bids are void.
  Status cancel_lot(const Actor& actor, uint64_t lot);
  /// A recipient (or its device) bids. Refusals name the rule.
  Result<Bid> place_bid(const Actor& actor, const BidSpec& spec);
  /// place_bid without waiting: returns the bid once it is in the market, with the ledger
  /// ticket to ledger().wait_durable() on before acknowledging it.
  Result<PendingBid> submit_bid(const Actor& actor, const BidSpec& spec);
  /// A recipient organises a group bid; members pledge afterwards.
  Result<Group> create_group(const Actor& actor, const GroupSpec& spec);
  /// A group member (or the organiser) pledges to pay up to `amount`; replaces an earlier
  /// pledge of theirs.
  Status pledge(const Actor& actor, uint64_t group, Money amount, const std::string& token);
  /// Withdraws the actor's pledge before the lot closes: the group's cap falls with it.
  Status withdraw_pledge(const Actor& actor, uint64_t group);
  /// A recipient of a finished lease (or its device) rates the provider, once, inside the
  /// rating window. score: 1-5, or 0 for none.
  Result<Rating> rate_provider(const Actor& actor, uint64_t lease, bool satisfied, uint8_t score,
                               const std::string& comment);
  /// The provider adds its note to the rating settlement gave a recipient of a finished
  /// lease (paid or not), once, inside the rating window.
  Result<Rating> note_recipient(const Actor& actor, uint64_t lease, const std::string& recipient,
                                const std::string& note);

  // ---- time -------------------------------------------------------------------------
  /// Applies what other processes sharing the ledger have committed since: the moderator's
  /// lots, bids and awards on an appliance; other appliances' activations and usage on the
  /// moderator. tick() calls it first.
  Status catch_up();
  /// Closes lots whose time has come (winners, leases, charges due), activates leases whose
  /// block starts, ends those whose block is over and records their usage. `activator` may
  /// be null (no data plane): leases then run on the clock alone with no usage. Returns
  /// lines to log.
  std::vector<std::string> tick(Activator* activator);
  /// Runs due charges through the gateway, retrying errors with the same key. Blocks on the
  /// gateway without holding the market's lock. Returns how many charges got a final answer.
  size_t settle();
  /// At shutdown: ends every active block early and records its usage so far; the lease is
  /// suspended and resumes at the next start if time is left.
  std::vector<std::string> suspend(Activator* activator);

  // ---- queries ----------------------------------------------------------------------
  std::vector<LotView> lots() const;
  Result<LotView> lot(uint64_t id) const;
  /// Bids on a lot as `viewer` may see them: all for the lot's provider and admins (with
  /// each bidder's recipient reputation); for others their own, and on an ascending lot
  /// every bid (open outcry).
  Result<std::vector<BidView>> bids(const Actor& viewer, uint64_t lot) const;
  Result<Group> group(const Actor& viewer, uint64_t id) const;
  /// Leases `viewer` is a party to (all for admins).
  std::vector<Lease> leases(const Actor& viewer) const;
  Result<Lease> lease(const Actor& viewer, uint64_t id) const;
  std::vector<Charge> charges(const Actor& viewer, uint64_t lease) const;
  std::vector<Rating> ratings_of(const std::string& principal) const;
  std::vector<Rating> ratings_for_lease(uint64_t lease) const;
  PrincipalReputation reputation(const std::string& principal) const;
  MarketStats stats() const;
  const MarketOptions& options() const { return options_; }
  ledger::Ledger& ledger() { return ledger_; }

  struct State;

 private:
  Market(MarketOptions options, ledger::Ledger& ledger, PaymentGateway& gateway,
         const Clock& clock);
  Status apply_committed(uint64_t from, bool all);
  Status check_moderator() const;

  MarketOptions options_;
  ledger::Ledger& ledger_;
  PaymentGateway& gateway_;
  const Clock& clock_;
  mutable std::shared_mutex mutex_;  // writers: changes and tick; readers: queries
  std::mutex settle_mutex_;          // one settle() at a time
  std::unique_ptr<State> state_;
};

}  // namespace segx::market
