#pragma once
// The market's rules, as pure checks of a command against the state: what a lot must be,
// what a bid must meet, who may name which member identifiers, and which leases may not
// share them. Each refusal carries its kind (docs/api.md maps kinds to statuses). Nothing
// here changes state.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.hpp"
#include "ledger/reputation.hpp"
#include "market/options.hpp"
#include "market/state.hpp"

namespace segx::market {

// Refusals by kind.
inline Error invalid(std::string m) {
  return {std::move(m), ErrorKind::invalid};
}
inline Error rule(std::string m) {
  return {std::move(m), ErrorKind::rule};
}
inline Error conflict(std::string m) {
  return {std::move(m), ErrorKind::conflict};
}
inline Error forbidden(std::string m) {
  return {std::move(m), ErrorKind::forbidden};
}
inline Error not_found(std::string m) {
  return {std::move(m), ErrorKind::not_found};
}

// ---- checked arithmetic: every amount, quantity and time the market forms ---------------

/// a x b when it stays within [0, max_money]; nullopt otherwise.
std::optional<Money> money_mul(Money a, uint64_t b);
/// a + b when it stays within [0, max_money]; nullopt otherwise.
std::optional<Money> money_add(Money a, Money b);
/// a + b for times in ns, when it does not overflow; nullopt otherwise.
std::optional<int64_t> time_add(int64_t a, int64_t b);

/// "2026-11-26T12:00:00Z" for ns since the epoch.
std::string time_text(int64_t ns);

// ---- identifiers and who holds them ---------------------------------------------------

/// One identifier that selects packets, as the data plane meters it.
struct Ident {
  enum class Kind { ip, mac, vlan };
  Kind kind = Kind::ip;
  config::IpPrefix ip;
  config::MacAddress mac{};
  uint16_t vlan = 0;
  /// "ip 10.1.0.1/32", "mac 02:...", "vlan 100": the data plane's member labels.
  std::string label() const;
};

/// True when a packet could match both: equal MACs or VLANs, or prefixes one of which
/// contains the other.
bool overlaps(const Ident& a, const Ident& b);

/// Who holds which member identifiers, from the configuration's subscribers: a subscriber's
/// id is the principal holding its entry (`user:ID`), its devices (`device:ID`), their
/// telephone numbers, addresses, MACs and VLANs, and the prefixes, MACs and VLANs granted
/// to it. Not copyable: it points into its own copy of the subscribers.
class Holdings {
 public:
  explicit Holdings(std::vector<config::SubscriberConfig> subscribers);
  Holdings(const Holdings&) = delete;
  Holdings& operator=(const Holdings&) = delete;

  /// Ok when `principal` holds every member (an `ip:` member lies inside one of its
  /// prefixes). Otherwise forbidden, naming the first member it does not hold, or invalid
  /// for a telephone number whose device has no address to meter.
  Status check_held(const std::string& principal,
                    const std::vector<config::MemberConfig>& members) const;
  /// The identifiers the data plane meters for these members: a device's addresses, MACs
  /// and VLANs, a telephone number's device addresses, a subscriber's devices.
  std::vector<Ident> expand(const std::vector<config::MemberConfig>& members) const;
  /// True when `id` names a configured subscriber.
  bool has_subscriber(const std::string& id) const { return by_id_.count(id) != 0; }

 private:
  struct Holder {
    std::vector<config::IpPrefix> prefixes;  // devices' addresses and granted prefixes
    std::vector<config::MacAddress> macs;
    std::vector<uint16_t> vlans;
    std::vector<std::string> devices;
    std::vector<std::string> phones;
  };
  std::vector<config::SubscriberConfig> subscribers_;
  std::unordered_map<std::string, Holder> holders_;
  std::unordered_map<std::string, const config::DeviceConfig*> devices_;
  std::unordered_map<std::string, std::vector<const config::DeviceConfig*>> phones_;
  std::unordered_map<std::string, const config::SubscriberConfig*> by_id_;
};

/// Why a block over [start, end) with these identifiers cannot be leased: the first live
/// lease (awarded, active or suspended) whose time overlaps and whose identifiers overlap;
/// nullopt if none.
std::optional<std::string> lease_overlap(const State& st, const Holdings& holdings, int64_t start,
                                         int64_t end, const std::vector<Ident>& idents);

// ---- lots, bids, pledges ----------------------------------------------------------------

/// A lot's fields: sold profile, times in order and representable, rates, quantity, prices.
Status check_lot_spec(const LotSpec& s, const MarketOptions& o, int64_t now);

/// A recipient's reputation over the window that counts.
ledger::Reputation reputation_in(const State& st, const std::string& principal, RatingKind kind,
                                 int64_t since);

/// The close an ascending lot moves to when something raises its price at `now`
/// (soft close), or 0 when it does not move.
int64_t soft_close_extension(const Lot& lot, int64_t now);

/// Rules every bid and group bid meets. `price` is per block; a group's is its cap. Returns
/// the lot's new close when the bid extends a soft close, 0 otherwise.
Result<int64_t> check_bid(const State& st, const MarketOptions& o, const Actor& actor,
                          const Lot& lot, Money price, uint32_t quantity, size_t members,
                          int64_t now);

/// Rules of a pledge by `who` (a new or changed one; 0 joins the group as sponsored) or, with
/// `withdrawal`, of taking it back (`amount` 0). On an ascending lot a change that raises the
/// group's effective price is a bid (it must beat the leader by the increment unless the group
/// leads, and it extends a soft close) and the leading group may not lower or withdraw a pledge.
/// Returns the lot's new close, or 0.
Result<int64_t> check_pledge(const State& st, const MarketOptions& o, const std::string& who,
                             const Group& g, const Lot& lot, Money amount, int64_t now,
                             bool withdrawal = false);

}  // namespace segx::market
