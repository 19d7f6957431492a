#pragma once
// The market's events: one typed struct per journal entry type, and their encoding as the
// ledger stores them (a type name and a canonical JSON body, keys sorted). An event records
// a decision already made (ids, prices, who won), so applying it needs no rule and no
// clock: market/state.hpp applies it the same way live and at replay.

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/result.hpp"
#include "ledger/event.hpp"
#include "market/types.hpp"

namespace segx::market {

/// The market's identity in its ledger, written once when the journal is new: a random id
/// that makes idempotency keys unique across ledgers. Type "market_created".
struct MarketCreated {
  std::string market_id;  ///< 16 random hex digits
};

/// A provider put a lot up for sale. Type "lot_created".
struct LotCreated {
  uint64_t id = 0;
  std::string provider;
  LotSpec spec;
  std::string currency;
};

/// A lot was withdrawn before its close. Type "lot_cancelled".
struct LotCancelled {
  uint64_t lot = 0;
  std::string by;
};

/// A bid was taken. Type "bid". `bid.time_ns` is the event's time.
struct BidPlaced {
  Bid bid;
  int64_t extends_to = 0;    ///< an ascending lot's new close, if the bid extended it
  std::string legacy_token;  ///< read from journals written before tokens left the chain
};

/// A group bid was entered (its bid has the group's id). Type "group_created".
struct GroupCreated {
  uint64_t id = 0;
  uint64_t lot = 0;
  std::string organizer;
  Money price = 0;
  uint32_t quantity = 1;
  std::vector<GroupMember> members;
  int64_t extends_to = 0;
  bool consent = false;  ///< members join by pledging (every group since this field)
};

/// A member pledged (or changed its pledge; 0: joined as sponsored). Type "pledge".
struct Pledged {
  uint64_t group = 0;
  std::string principal;
  Money amount = 0;
  std::string token_fp;
  int64_t extends_to = 0;  ///< ascending: a pledge that raised the group's price is a bid
  std::string legacy_token;
};

/// A member withdrew its pledge. Type "pledge_withdrawn".
struct PledgeWithdrawn {
  uint64_t group = 0;
  std::string principal;
};

/// One lease a closing lot awarded, with what each payer owes.
struct AwardedLease {
  uint64_t lease = 0;
  uint64_t bid = 0;
  uint32_t units = 0;
  Money unit_price = 0;
  std::vector<std::pair<std::string, Money>> charges;  ///< payer, amount
};

/// A bid that could not win at the close, and why.
struct ExcludedBid {
  uint64_t bid = 0;
  std::string reason;
};

/// A lot closed with its outcome and awards. Type "lot_closed".
struct LotClosed {
  uint64_t lot = 0;
  Outcome outcome = Outcome::none;
  Money clearing_price = 0;
  std::vector<AwardedLease> leases;
  std::vector<ExcludedBid> excluded;
};

/// An appliance activated a lease's block, or failed to for the first time since its last
/// success. Type "activation".
struct Activated {
  uint64_t lease = 0;
  std::string appliance;
  bool ok = true;
  bool resumed = false;
  std::string error;
};

/// A lease could not be activated after its attempts, or its time ran out before it could
/// run: it ends failed and its accepted charges are refunded. Type "lease_failed".
struct LeaseFailed {
  uint64_t lease = 0;
  std::string reason;
  uint32_t attempts = 0;
};

/// What an appliance's data plane carried for a lease. Type "usage".
struct UsageRecorded {
  uint64_t lease = 0;
  std::string appliance;
  bool final = true;
  bool interrupted = false;
  Usage usage;
};

/// A charge's final answer; accepted or declined is also the provider's rating of the
/// payer (rating `rating`). Type "charge".
struct ChargeSettled {
  uint64_t charge = 0;
  uint64_t rating = 0;
  uint64_t lease = 0;
  std::string payer;
  Money amount = 0;
  std::string currency;
  ChargeResult result = ChargeResult::error;
  std::string reference;
  std::string reason;
  uint32_t attempts = 0;
  std::string idempotency_key;
};

/// A refund's final answer. Type "refund".
struct RefundSettled {
  uint64_t charge = 0;
  ChargeResult result = ChargeResult::error;
  std::string reference;
  std::string reason;
  uint32_t attempts = 0;
};

/// What a provider rating rests on: the lease's usage against its promise.
struct Evidence {
  int64_t active_ns = 0;
  uint64_t green_bytes = 0, yellow_bytes = 0, red_bytes = 0;
  uint64_t min_rate = 0;
  uint64_t min_rate_bytes = 0;  ///< bytes the minimum rate promised over active_ns
};

/// A recipient rated the provider of a lease. Type "rating".
struct RatingGiven {
  Rating rating;
  Evidence evidence;
};

/// The provider added its note to a recipient rating. Type "rating_note".
struct RatingNoted {
  uint64_t rating = 0;
  std::string by;
  std::string note;
};

/// Every event the market writes.
using MarketEvent =
    std::variant<MarketCreated, LotCreated, LotCancelled, BidPlaced, GroupCreated, Pledged,
                 PledgeWithdrawn, LotClosed, Activated, LeaseFailed, UsageRecorded, ChargeSettled,
                 RefundSettled, RatingGiven, RatingNoted>;

/// The journal type name of an event ("bid").
std::string_view event_type(const MarketEvent& e);
/// Every type name the market owns, for the ledger's registry.
const std::vector<std::string>& market_event_types();
/// The event as the ledger stores it: type, canonical JSON body (keys sorted), time.
ledger::Event encode(const MarketEvent& e, int64_t time_ns);
/// Reads a journal entry back. Fails (invalid) on a type the market does not own, a missing
/// or mistyped field, or a number out of range (a float where an integer belongs).
Result<MarketEvent> decode(const std::string& type, const std::string& body, int64_t time_ns);

}  // namespace segx::market
