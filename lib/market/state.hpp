#pragma once
// The market's state and the one function that changes it. apply() is used live (after a
// command's event is appended) and at replay (every event of the journal, in order), so the
// two can never drift: LevelDB's WriteBatch::Iterate into MemTableInserter, for auctions.
// The state is a value: copying it is how a failed commit is undone (market.cpp).

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "market/events.hpp"
#include "market/types.hpp"

namespace segx::market {

/// Everything the market knows, rebuilt from the journal. Plain data with indexes kept by
/// apply(); rules and queries read it, only apply() writes it.
struct State {
  std::string market_id;  ///< from market_created; empty in journals older than it
  std::map<uint64_t, Lot> lots;
  std::unordered_map<uint64_t, Bid> bids;
  std::map<uint64_t, Group> groups;
  std::map<uint64_t, Lease> leases;
  std::vector<Charge> charges;  ///< charge id = index + 1
  std::map<uint64_t, Rating> ratings;

  // ---- indexes, so a request's work does not grow with the size of the market ----------
  std::map<std::string, std::vector<uint64_t>> ratings_of;                // rated principal
  std::map<uint64_t, std::vector<uint64_t>> ratings_of_lease;             // lease -> ratings
  std::map<std::pair<uint64_t, std::string>, uint64_t> provider_rated;    // (lease, by)
  std::map<std::pair<uint64_t, std::string>, uint64_t> recipient_rating;  // (lease, of)
  std::set<uint64_t> noted;  // recipient ratings the provider has added its note to
  std::unordered_map<uint64_t, uint64_t> lease_of_bid;   // winning bid -> lease
  std::map<std::string, std::set<uint64_t>> leases_of;   // recipient or provider -> leases
  std::map<std::string, std::vector<uint64_t>> bids_by;  // bidder -> bids, in order
  std::map<std::string, std::vector<uint64_t>> lots_of;  // provider -> lots
  std::set<uint64_t> open_lots;                          // the tick closes these
  /// Who has bid on each open lot: a sealed lot takes one bid per bidder, checked in constant
  /// time however many bids the bidder has made elsewhere. Dropped when the lot closes.
  std::unordered_map<uint64_t, std::unordered_set<std::string>> open_lot_bidders;
  std::set<uint64_t> live_leases;  // awarded, active, suspended: the tick drives these
  std::set<uint64_t> due_charges;  // pending charges (settlement)
  std::set<uint64_t> due_refunds;  // charges with a pending refund
  /// Payment tokens of journals written before tokens left the chain, by token name.
  std::map<std::string, std::string> legacy_tokens;

  uint64_t next_lease = 1;
  // Ids of lots, bids (and groups) and ratings, in the order the market took them: a bid's
  // id is its place in the tie-break. Kept in the events, so replay gives the same ids.
  uint64_t next_id = 1;
  uint64_t applied = 0;  ///< events applied
};

/// What apply() needs besides the event.
struct ApplyContext {
  int64_t time_ns = 0;  ///< the event's time
  std::string
      appliance;  ///< this appliance: activation and usage of others leave lease states alone
};

/// Applies one event. The event must be valid for the state (the market checked it before
/// appending, or it comes from a journal the market wrote); an event that names an unknown
/// lot, bid, lease or charge throws std::out_of_range, which replay reports as unreadable.
void apply(State& st, const MarketEvent& e, const ApplyContext& ctx);
/// The same, for an event's last use: what it carries may be moved into the state.
void apply(State& st, MarketEvent&& e, const ApplyContext& ctx);

/// The names payment tokens are kept under, outside the chain (ledger secrets).
std::string bid_token_name(uint64_t bid);
std::string pledge_token_name(uint64_t group, const std::string& principal);

/// The idempotency key of a charge: unique across ledgers once the market has an id.
std::string idempotency_key(const std::string& market_id, uint64_t lease, const std::string& payer);

/// True when `bidder` has bid on `lot` (a bidder's bids are few: a scan of them).
bool has_bid(const State& st, uint64_t lot, const std::string& bidder);

/// A group's bid counts at most what its members have pledged, per block.
Money effective_price(const State& st, const Bid& b);

/// True when `principal` is one of the lease's recipients.
bool is_party(const Lease& l, const std::string& principal);

}  // namespace segx::market
