#pragma once
// The market: lots, bids, groups, awards, block activation, settlement and ratings, kept
// in the ledger. The journal is the truth. A command is checked against the state
// (market/rules.hpp), its event is appended, and the state changes only through apply()
// (market/state.hpp), the same function replay uses. A call that changes something returns
// once its event is durable; queries see only durable events. A commit that fails leaves
// nothing behind: no state, no id. At open the state is rebuilt by replaying the journal,
// so a restart loses nothing that was acknowledged. No DPDK here: blocks reach the data
// plane through the Activator interface.
//
// Files: events.* (typed events and their encoding), state.* (State and apply), rules.*
// (checks), market.cpp (open, replay, commit, commands), lifecycle.cpp (tick: closing lots,
// activating and ending leases; settlement and refunds), queries.cpp (what each role sees).

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "config/config.hpp"
#include "ledger/ledger.hpp"
#include "market/gateway.hpp"
#include "market/options.hpp"
#include "market/rules.hpp"
#include "market/state.hpp"
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

/// A bid taken but not yet durable.
struct PendingBid {
  Bid bid;
  uint64_t ticket = 0;  ///< for Market::wait
};

/// Figures for logs and metrics.
struct MarketStats {
  uint64_t lots = 0, open_lots = 0, bids = 0, groups = 0, leases = 0, active_leases = 0;
  uint64_t failed_leases = 0;
  uint64_t charges_accepted = 0, charges_declined = 0, charges_error = 0, charges_pending = 0;
  uint64_t refunds_accepted = 0, refunds_pending = 0, refunds_failed = 0;
  uint64_t ratings = 0;
  uint64_t replayed_events = 0;  ///< read from the ledger at open
  uint64_t rolled_back = 0;      ///< events undone because their commit failed
};

/// A lot with what a viewer sees beside it.
struct LotView {
  Lot lot;
  ledger::Reputation provider_reputation;
  size_t bid_count = 0;
};

/// A bid with what its viewer may see beside it.
struct BidView {
  Bid bid;                               ///< members cleared when the viewer may not see them
  ledger::Reputation bidder_reputation;  ///< as a recipient
  Money effective_price = 0;             ///< a group's bid: min(price, pledged)
  std::string status;                    ///< pending, won, lost, void
  uint64_t lease = 0;                    ///< the lease it won, if any
  std::string reason;                    ///< lost: why, when it could not win (an overlap)
  bool members_shown = true;
};

/// A rating as its viewer may see it: the two parties and admins see all of it; others see
/// the verdict, score and time, without the lease, the device or (for a provider's rating
/// of a recipient) the comment, which may carry a payment gateway's reason.
struct RatingView {
  Rating rating;
  bool full = true;
};

/// The market. Thread-safe: API threads call it concurrently; the control loop calls tick().
class Market {
 public:
  /// Rebuilds the state from the ledger and takes it from there. Fails if the journal holds
  /// an event this build cannot read, or of a type no module registered with the ledger.
  static Result<std::unique_ptr<Market>> open(MarketOptions options, ledger::Ledger& ledger,
                                              PaymentGateway& gateway, const Clock& clock);
  ~Market();
  Market(const Market&) = delete;
  Market& operator=(const Market&) = delete;

  // ---- changes: each returns once its event is durable ------------------------------
  // Refusals carry an ErrorKind: invalid, rule, conflict, forbidden, not_found, or
  // unavailable when the ledger could not store the event (then nothing changed).

  /// A provider (or an admin for the appliance) puts blocks up for sale. Returns the lot id.
  Result<uint64_t> create_lot(const Actor& actor, const LotSpec& spec);
  /// Withdraws an open lot; its bids are void.
  Status cancel_lot(const Actor& actor, uint64_t lot);
  /// A recipient (or its device) bids, naming only member identifiers it holds.
  Result<Bid> place_bid(const Actor& actor, const BidSpec& spec);
  /// place_bid without waiting: returns the bid once it is appended, with the ticket to
  /// wait() on before acknowledging it. Queries do not see it until then.
  Result<PendingBid> submit_bid(const Actor& actor, const BidSpec& spec);
  /// Waits for a ticket submit_bid returned; the state queries see includes it after.
  Status wait(uint64_t ticket);
  /// wait() without a waiting thread: `fn` gets the commit's outcome on the ledger's writer
  /// thread (or at once), must only hand it to a thread of the caller's, and that thread
  /// then calls complete() with it before acknowledging the bid.
  void when_durable(uint64_t ticket, std::function<void(Status)> fn);
  /// The rest of wait() for an outcome when_durable() delivered: queries see the state up to
  /// it; a failed commit comes back as wait() returns it.
  Status complete(Status durable);
  /// A recipient organises a group bid; members pledge afterwards. Each member's
  /// identifiers must be held by that member.
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
  /// block starts (retrying a refused activation with backoff, then failing the lease), ends
  /// those whose block is over and records their usage. `activator` may be null (no data
  /// plane): leases then run on the clock alone with no usage. Returns lines to log.
  std::vector<std::string> tick(Activator* activator);
  /// Runs due charges and refunds through the gateway. An error keeps a charge pending and
  /// backs off (settlement options) until the settlement deadline, then it is final
  /// `error`. Blocks on the gateway without holding the market's lock; stops between
  /// gateway calls once `stop` is set. Returns how many got a final answer.
  size_t settle(const std::atomic<bool>* stop = nullptr);
  /// At shutdown: ends every active block early and records its usage so far; the lease is
  /// suspended and resumes at the next start if time is left.
  std::vector<std::string> suspend(Activator* activator);

  // ---- queries: durable state, as `viewer` may see it ---------------------------------
  std::vector<LotView> lots() const;
  Result<LotView> lot(uint64_t id) const;
  /// Bids on a lot as `viewer` may see them: sealed bids to their bidder, the lot's provider
  /// and admins; on an ascending lot every bid, with members shown only to the bidder, the
  /// provider and admins.
  Result<std::vector<BidView>> bids(const Actor& viewer, uint64_t lot) const;
  /// The viewer's own bids (recipients and devices), or the bids on its lots (providers),
  /// or every bid (admins).
  std::vector<BidView> bids_of(const Actor& viewer) const;
  /// A group, to its members, the lot's provider and admins; not_found for anyone else.
  Result<Group> group(const Actor& viewer, uint64_t id) const;
  /// Leases `viewer` is a party to (all for admins).
  std::vector<Lease> leases(const Actor& viewer) const;
  /// A lease, to its parties and admins; not_found for anyone else.
  Result<Lease> lease(const Actor& viewer, uint64_t id) const;
  std::vector<Charge> charges(const Actor& viewer, uint64_t lease) const;
  /// Ratings a principal received, as `viewer` may see them.
  std::vector<RatingView> ratings_of(const Actor& viewer, const std::string& principal) const;
  /// Ratings of a lease, as `viewer` may see them (empty if it may not see the lease).
  std::vector<RatingView> ratings_for_lease(const Actor& viewer, uint64_t lease) const;
  PrincipalReputation reputation(const std::string& principal) const;
  MarketStats stats() const;
  /// A reloaded configuration's rules: the metered profiles that may be sold and who holds
  /// which identifiers (its subscribers). Lots, bids and groups checked from then on are
  /// checked against them; bids already taken stay and are expanded at their lot's close,
  /// like any other. Refused (ErrorKind::conflict), with nothing changed, when a live lease
  /// (awarded, active or suspended) would stand for other identifiers than it does now (a
  /// device, telephone number or subscriber it names was removed or its addresses changed):
  /// the invariant that leases at the same time never share an identifier is checked on
  /// those identifiers, so such a change waits until the lease has ended.
  Status set_rules(std::set<std::string> profiles,
                   std::vector<config::SubscriberConfig> subscribers);
  /// The check of set_rules alone; changes nothing.
  Status check_rules(const std::vector<config::SubscriberConfig>& subscribers) const;
  /// True when `id` is a subscriber of the rules in force (a device token's owner may be one).
  bool is_subscriber(const std::string& id) const;
  /// Options as opened; `profiles` and `subscribers` as of the last set_rules (read them
  /// only from the thread that calls set_rules).
  const MarketOptions& options() const { return options_; }
  ledger::Ledger& ledger() { return ledger_; }
  /// The market's id in its ledger (part of every idempotency key).
  std::string market_id() const;
  /// A copy of the durable state, for tests and tools that compare it with a replay.
  State snapshot() const;

 private:
  struct PendingEvent {
    uint64_t ticket;
    int64_t time_ns;
    MarketEvent event;
  };
  struct Retry {
    uint32_t attempts = 0;
    int64_t next_ns = 0;
    int64_t error_since = 0;
    std::string error;
  };

  Market(MarketOptions options, ledger::Ledger& ledger, PaymentGateway& gateway,
         const Clock& clock);
  Status replay(uint64_t from, bool all);
  Status check_moderator() const;
  ApplyContext context(int64_t time_ns) const { return {time_ns, options_.appliance}; }
  // Under command_mutex_: brings durable_ up to the ledger's progress, or undoes what a
  // failed commit left in live_.
  void sync_locked();
  void recover_locked();
  // Under command_mutex_: appends `e` (with side-table secrets) in the live generation and
  // applies it to live_. Returns the ticket to await.
  Result<uint64_t> commit_locked(MarketEvent e, int64_t time_ns,
                                 std::vector<ledger::SecretOp> secrets = {});
  // Waits for a ticket, then syncs. The failure carries ErrorKind::unavailable.
  Status await(uint64_t ticket);
  std::string fingerprint(const std::string& token) const;
  void set_fingerprint_key(const std::string& key);
  Result<std::string> token_for(const Charge& c);
  void close_lots_locked(int64_t now, std::vector<std::string>& log, uint64_t& last);

  // Who holds which identifiers; replaced whole by set_rules. A command takes it once and
  // decides on that one copy.
  std::shared_ptr<const Holdings> holdings() const;
  Status check_rules_locked(const Holdings& next) const;

  MarketOptions options_;
  mutable std::mutex rules_mutex_;  // guards holdings_ (the pointer, not the Holdings)
  std::shared_ptr<const Holdings> holdings_;
  ledger::Ledger& ledger_;
  PaymentGateway& gateway_;
  const Clock& clock_;
  std::string fingerprint_key_;
  std::string ipad_, opad_;  // the key's HMAC blocks

  // Commands, the tick and settlement decide on live_ (durable events and those still
  // committing) under command_mutex_; queries read durable_ under state_mutex_. Lock order:
  // command_mutex_, then state_mutex_.
  mutable std::mutex command_mutex_;
  mutable std::shared_mutex state_mutex_;
  std::unique_ptr<State> live_;
  std::unique_ptr<State> durable_;
  std::deque<PendingEvent> pending_;
  uint64_t live_generation_ = 0;
  uint64_t applied_seq_ = 0;  // the last ledger event read back (open or catch_up)
  std::atomic<uint64_t> replayed_{0};
  std::atomic<uint64_t> rolled_back_{0};
  std::mutex settle_mutex_;                       // one settle() at a time
  std::map<uint64_t, Retry> charge_retries_;      // by charge id; not journaled
  std::map<uint64_t, Retry> refund_retries_;      // by charge id
  std::map<uint64_t, Retry> activation_retries_;  // by lease id
  std::map<uint64_t, Usage> unrecorded_usage_;    // deactivated, usage not yet durable
};

}  // namespace segx::market
