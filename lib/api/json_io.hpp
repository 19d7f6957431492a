#pragma once
// The API's JSON: reading request bodies field by field with errors that name the field,
// and writing the market's types in the shapes docs/api.md documents. Internal to lib/api.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "market/market.hpp"
#include "market/series.hpp"

namespace segx::api {

using json = nlohmann::json;

/// A request the API refuses: thrown inside a handler, turned into an error response.
struct Refusal {
  int status = 422;
  std::string code;
  std::string detail;
};

/// 422 "invalid" naming the field.
[[noreturn]] void invalid(const std::string& field, const std::string& detail);

/// Reads the members of a JSON object one by one; done() refuses members nobody read, so a
/// misspelt field is an error instead of being silently ignored.
class Fields {
 public:
  /// Throws Refusal (400) when `j` is not an object.
  explicit Fields(const json& j);
  bool has(const std::string& key) const;
  /// An integer in [min, max].
  std::optional<int64_t> integer(const std::string& key, bool required, int64_t min, int64_t max);
  std::optional<std::string> string(const std::string& key, bool required, size_t max_size = 256);
  std::optional<bool> boolean(const std::string& key, bool required);
  std::optional<double> number(const std::string& key, bool required, double min, double max);
  /// An RFC 3339 time as ns since the epoch.
  std::optional<int64_t> time(const std::string& key, bool required);
  /// A duration "90s", "1h30m" (or an integer number of ns) as ns.
  std::optional<int64_t> duration(const std::string& key, bool required);
  /// A rate "10Mbit/s" (or an integer number of bit/s).
  std::optional<uint64_t> rate(const std::string& key, bool required);
  /// Member identifiers ["ip:10.0.0.0/8", "device:alice-phone", ...].
  std::optional<std::vector<config::MemberConfig>> members(const std::string& key, bool required);
  /// A nested array of objects, for the caller to read with Fields of its own.
  std::optional<json> array(const std::string& key, bool required);
  /// Throws Refusal (422) naming the first member not read.
  void done() const;

 private:
  const json& j_;
  std::set<std::string> read_;
};

/// {count, positive, percent_positive, wilson_lower}.
json reputation_json(const ledger::Reputation& r);
/// Members in the text form parse_member reads ("ip:10.0.0.0/8").
json members_json(const std::vector<config::MemberConfig>& members);
/// A lot as `viewer` sees it: the reserve only for its provider and admins.
json lot_json(const market::LotView& v, const market::Actor& viewer, const std::string& currency);
/// A bid; `status` is pending, won, lost or void.
json bid_json(const market::BidView& v);
/// A group: members, pledges by principal (amounts only, never payment tokens), pledged.
json group_json(const market::Group& g);
/// Packets and bytes by meter colour, bytes by member label, time active.
json usage_json(const market::Usage& u);
/// A block's compliance summary (docs/api.md#compliance).
json compliance_json(const market::Compliance& c);
/// One point of a block's series.
json point_json(const market::SeriesPoint& p);
/// A block's live figures: totals, rates and members (no points).
json live_json(const market::SeriesView& v);
/// A lease with its block id and usage (charges and ratings are added by the route).
json lease_json(const market::Lease& l);
/// A charge without its payment token.
json charge_json(const market::Charge& c);
/// A rating in either direction.
json rating_json(const market::RatingView& v);
/// {principal, as_provider, as_recipient}.
json principal_reputation_json(const market::PrincipalReputation& r);

}  // namespace segx::api
