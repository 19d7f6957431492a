#pragma once
// The market's vocabulary: who acts, what is sold (lots), offers (bids, groups and
// pledges), what is awarded (leases), and what follows (charges, ratings). Money is an
// integer number of minor units (cents) of the market's one currency, never floating point.

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "ledger/reputation.hpp"

namespace segx::market {

/// Minor units of the market's currency (cents for EUR).
using Money = int64_t;

/// The largest amount the market takes: a price, a pledge, a lot's reserve, and any total
/// made of them (price x quantity, a group's pledges) must stay at or below it, so every
/// sum and product the market forms fits in a Money. 2^62 - 1 minor units.
inline constexpr Money max_money = (Money{1} << 62) - 1;

/// What a principal may do. A device acts for the recipient that owns it.
enum class Role { admin, provider, recipient, device };

/// Who is calling: authenticated by the API, trusted by the market.
struct Actor {
  std::string id;
  Role role = Role::recipient;
  std::string owner;  ///< device: its recipient; a provider's staff: the provider; else empty
  /// The principal this actor speaks for: a device's owner, otherwise itself.
  const std::string& principal() const {
    return role == Role::device && !owner.empty() ? owner : id;
  }
};

/// How a lot's winners and prices are decided (docs/market.md).
enum class Format {
  second_price,  ///< sealed bids, one block: the highest bid wins and pays the second price
  uniform,       ///< sealed bids, k blocks: the k highest units win and pay the (k+1)-th price
  ascending,     ///< open bids that must beat the leader; soft close; the winner pays its bid
};

/// What a provider offers: `quantity` identical blocks of time of one profile's service.
struct LotSpec {
  std::string profile;        ///< a metered profile of this appliance
  int64_t start_ns = 0;       ///< when the blocks start (ns since the Unix epoch)
  int64_t duration_ns = 0;    ///< how long each block lasts
  uint64_t min_rate = 0;      ///< bits per second guaranteed (green) per block; 0: none
  uint64_t max_rate = 0;      ///< bits per second at most per block; 0: no cap
  uint32_t max_members = 16;  ///< member identifiers that may share one block
  uint32_t quantity = 1;      ///< identical blocks for sale
  Money reserve = 0;          ///< lowest price per block that can win (not shown to bidders)
  Money max_price = 0;        ///< bids above this per block are refused; 0: no limit
  Format format = Format::second_price;
  int64_t closes_ns = 0;            ///< when bidding ends
  int64_t soft_close_ns = 0;        ///< ascending: a bid this close to the end extends it ...
  int64_t max_extension_ns = 0;     ///< ... by at most this much in all
  Money increment = 1;              ///< ascending: a new bid beats the leader by this much
  double min_recipient_wilson = 0;  ///< bidder's recipient reputation (Wilson lower bound) needed
  uint64_t min_recipient_ratings = 0;  ///< and at least this many ratings as a recipient
};

/// Where a lot is in its life.
enum class LotState { open, closed, cancelled };

/// How a closed lot ended.
enum class Outcome { none, awarded, partially_awarded, reserve_not_met, no_bids, cancelled };

/// A lot on the market.
struct Lot {
  uint64_t id = 0;  ///< lots, bids and ratings share one sequence of ids
  std::string provider;
  LotSpec spec;
  int64_t created_ns = 0;
  int64_t closes_ns = 0;  ///< current close, after soft-close extensions
  LotState state = LotState::open;
  Outcome outcome = Outcome::none;
  Money clearing_price = 0;    ///< per block, once closed with awards
  std::vector<uint64_t> bids;  ///< in arrival order
  uint64_t leader = 0;         ///< ascending: the bid in the lead
  Money leading_price = 0;     ///< ascending: its price
  /// Bids that could not win at the close, with why (their members overlap a lease's).
  std::map<uint64_t, std::string> excluded;
};

/// A bid as submitted. Prices are per block.
struct BidSpec {
  uint64_t lot = 0;
  Money price = 0;
  uint32_t quantity = 1;
  std::vector<config::MemberConfig> members;  ///< who shares the block
  std::string payment_token;
};

/// A bid taken by the market. A group's bid has group != 0 and its price capped by the
/// group's pledges.
struct Bid {
  uint64_t id = 0;  ///< in the order the market took bids: lower means first in a tie
  uint64_t lot = 0;
  std::string bidder;
  std::string device;  ///< the device that placed it, if one did
  Money price = 0;
  uint32_t quantity = 1;
  std::vector<config::MemberConfig> members;
  /// A keyed fingerprint of the payment token (docs/market.md#payment-tokens); the token
  /// itself is kept outside the journal until its charge is final.
  std::string token_fp;
  int64_t time_ns = 0;
  uint64_t group = 0;
};

/// One member of a group: a principal and the identifiers of its traffic.
struct GroupMember {
  std::string principal;
  std::vector<config::MemberConfig> members;
};

/// A group bid as submitted by its organizer.
struct GroupSpec {
  uint64_t lot = 0;
  Money price = 0;  ///< the most the group will pay per block; capped by its pledges
  uint32_t quantity = 1;
  std::vector<GroupMember> members;
};

/// A member's promise to pay up to `amount` of the group's price.
struct Pledge {
  Money amount = 0;
  std::string token_fp;  ///< fingerprint of its payment token
};

/// A group: members who pledge sponsor those who pledge nothing; every member who joined is
/// served.
struct Group {
  uint64_t id = 0;  ///< also the id of the group's bid
  uint64_t lot = 0;
  std::string organizer;
  std::vector<GroupMember> members;
  std::map<std::string, Pledge> pledges;  ///< by principal; withdrawn pledges are removed
  /// Members other than the organiser join by pledging (0: sponsored); until they do, their
  /// identifiers take no part (groups journalled before this rule: every member counts).
  bool consent = false;
  /// Sum of current pledges: the group's bid cannot exceed it. Pledges are refused when
  /// their sum would pass max_money, so it always fits (a journal that says otherwise is
  /// read saturated at max_money).
  Money pledged() const;
  /// The organiser or one of the members.
  bool has_member(const std::string& principal) const;
  /// A member whose identifiers the group's block would carry: it joined (pledged, 0
  /// included), or it is the organiser, or the group predates consent.
  bool joined(const std::string& principal) const;
  /// The members that joined, in the order the organiser listed them.
  std::vector<const GroupMember*> served() const;
};

/// Where a lease is in its life (docs/market.md#leases-and-activation).
enum class LeaseState { awarded, active, suspended, finished, unpaid, failed };

/// How a block kept its promise, second by second (docs/api.md#compliance). A second is
/// owed when the members offered at least the minimum rate; it falls short when less than
/// the minimum was delivered; it is at the maximum when the meter dropped some of it (red).
/// The counts add up over suspensions and appliances.
struct Compliance {
  uint64_t seconds = 0;            ///< seconds measured
  uint64_t owed_seconds = 0;       ///< offered >= min_rate (min_rate > 0)
  uint64_t shortfall_seconds = 0;  ///< owed, and delivered < min_rate
  uint64_t at_max_seconds = 0;     ///< red > 0
  /// (owed - shortfall) / owed; 1 when nothing was owed.
  double ratio() const {
    return owed_seconds == 0 ? 1.0
                             : static_cast<double>(owed_seconds - shortfall_seconds) /
                                   static_cast<double>(owed_seconds);
  }
  void add(const Compliance& o) {
    seconds += o.seconds;
    owed_seconds += o.owed_seconds;
    shortfall_seconds += o.shortfall_seconds;
    at_max_seconds += o.at_max_seconds;
  }
};

/// Data-plane usage of a block, by meter colour ([0] green, [1] yellow, [2] red).
struct Usage {
  int64_t active_ns = 0;  ///< time the block was active in the data plane
  uint64_t packets[3] = {0, 0, 0};
  uint64_t bytes[3] = {0, 0, 0};
  std::map<std::string, std::array<uint64_t, 3>> member_bytes;  ///< by member label
  /// The block's packets the meter passed that segx dropped afterwards (a full ring).
  uint64_t dropped_packets = 0, dropped_bytes = 0;
  Compliance compliance;  ///< per-second record; seconds == 0 when none was kept
  /// Adds another activation's (or appliance's) usage to this one.
  void add(const Usage& o);
};

/// The right to a block, won at auction.
struct Lease {
  uint64_t id = 0;
  uint64_t lot = 0;
  uint64_t bid = 0;
  std::string provider;
  std::string bidder;                   ///< the bidder, or the group's organizer
  std::vector<std::string> recipients;  ///< who may rate the provider: bidder or group members
  uint32_t units = 1;
  Money unit_price = 0;
  std::string profile;
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  uint64_t min_rate = 0;  ///< bits per second for the whole lease (units x the lot's)
  uint64_t max_rate = 0;
  std::vector<config::MemberConfig> members;
  LeaseState state = LeaseState::awarded;
  Usage usage;
  std::vector<uint64_t> charges;
  int64_t awarded_ns = 0;
  bool ran = false;              ///< it was active at least once
  std::string activation_error;  ///< why the last activation failed, until one succeeds
  std::string failure;           ///< failed: why
};

/// Result of one charge (or refund) through the payment gateway.
enum class ChargeResult { pending, accepted, declined, error };

/// Where a charge's refund stands: none asked, or the answer to it.
enum class RefundState { none, pending, accepted, declined, error };

/// One payer's share of a lease's price.
struct Charge {
  uint64_t id = 0;  ///< index in the market's charge list, from 1
  uint64_t lease = 0;
  std::string payer;
  Money amount = 0;
  std::string token_ref;  ///< the name its payment token is kept under, until final
  std::string token_fp;   ///< the token's fingerprint
  /// The same on every retry and unique across ledgers:
  /// "segx-<market id>-lease-<lease>-<payer>" (docs/market.md#settlement).
  std::string idempotency_key;
  ChargeResult result = ChargeResult::pending;
  std::string reference;  ///< the gateway's
  std::string reason;     ///< why declined or failed
  uint32_t attempts = 0;
  int64_t created_ns = 0;  ///< when the lot closed: the settlement deadline counts from here
  RefundState refund = RefundState::none;
  std::string refund_reference;
  std::string refund_reason;
};

/// Which way a rating goes.
enum class RatingKind {
  provider,   ///< a recipient rates the provider: satisfied or not
  recipient,  ///< the provider rates a recipient: paid or not (from settlement)
};

/// One rating in the ledger.
struct Rating {
  uint64_t id = 0;
  uint64_t lease = 0;
  RatingKind kind = RatingKind::provider;
  std::string by;
  std::string of;
  std::string device;  ///< the recipient's device that submitted it, if one did
  bool positive = false;
  uint8_t score = 0;  ///< 1-5, 0: none given
  std::string comment;
  int64_t time_ns = 0;
  /// A provider rating: how the lease's block kept its promise when it was given (seconds
  /// == 0: no per-second record).
  Compliance delivery;
};

/// Both sides of a principal's standing.
struct PrincipalReputation {
  std::string principal;
  ledger::Reputation as_provider;
  ledger::Reputation as_recipient;
};

std::string_view format_name(Format f);
std::optional<Format> parse_format(std::string_view s);
std::string_view outcome_name(Outcome o);
std::string_view lot_state_name(LotState s);
std::string_view lease_state_name(LeaseState s);
std::string_view charge_result_name(ChargeResult r);
std::string_view refund_state_name(RefundState r);
std::string_view role_name(Role r);
std::optional<Role> parse_role(std::string_view s);

/// A member identifier as text: "ip:10.1.0.5/32", "mac:02:00:00:00:00:01", "vlan:100",
/// "phone:+4930123456", "device:ID", "user:ID" (a subscriber). The inverse of format_member.
Result<config::MemberConfig> parse_member(std::string_view text);
/// The text form parse_member reads.
std::string format_member(const config::MemberConfig& m);

}  // namespace segx::market
