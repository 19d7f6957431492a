#include "api/json_io.hpp"

#include <cmath>

#include "api/api.hpp"
#include "config/units.hpp"

namespace segx::api {

void invalid(const std::string& field, const std::string& detail) {
  throw Refusal{422, "invalid", field + ": " + detail};
}

Fields::Fields(const json& j) : j_(j) {
  if (!j.is_object()) throw Refusal{400, "bad_request", "the request body must be a JSON object"};
}

bool Fields::has(const std::string& key) const {
  return j_.contains(key) && !j_.at(key).is_null();
}

namespace {

std::string type_of(const json& v) {
  return v.type_name();
}

}  // namespace

std::optional<int64_t> Fields::integer(const std::string& key, bool required, int64_t min,
                                       int64_t max) {
  read_.insert(key);
  if (!has(key)) {
    if (required) invalid(key, "required");
    return std::nullopt;
  }
  const json& v = j_.at(key);
  int64_t x = 0;
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) invalid(key, "out of range");
    x = static_cast<int64_t>(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else {
    invalid(key, "expected an integer, got " + type_of(v));
  }
  if (x < min || x > max)
    invalid(key, std::to_string(x) + " is outside " + std::to_string(min) + " to " +
                     std::to_string(max));
  return x;
}

std::optional<std::string> Fields::string(const std::string& key, bool required, size_t max_size) {
  read_.insert(key);
  if (!has(key)) {
    if (required) invalid(key, "required");
    return std::nullopt;
  }
  const json& v = j_.at(key);
  if (!v.is_string()) invalid(key, "expected a string, got " + type_of(v));
  std::string s = v.get<std::string>();
  if (s.size() > max_size) invalid(key, "longer than " + std::to_string(max_size) + " bytes");
  return s;
}

std::optional<bool> Fields::boolean(const std::string& key, bool required) {
  read_.insert(key);
  if (!has(key)) {
    if (required) invalid(key, "required");
    return std::nullopt;
  }
  const json& v = j_.at(key);
  if (!v.is_boolean()) invalid(key, "expected true or false, got " + type_of(v));
  return v.get<bool>();
}

std::optional<double> Fields::number(const std::string& key, bool required, double min,
                                     double max) {
  read_.insert(key);
  if (!has(key)) {
    if (required) invalid(key, "required");
    return std::nullopt;
  }
  const json& v = j_.at(key);
  if (!v.is_number()) invalid(key, "expected a number, got " + type_of(v));
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < min || x > max) invalid(key, "outside the allowed range");
  return x;
}

std::optional<int64_t> Fields::time(const std::string& key, bool required) {
  read_.insert(key);
  if (!has(key)) {
    if (required) invalid(key, "required");
    return std::nullopt;
  }
  const json& v = j_.at(key);
  if (!v.is_string())
    invalid(key, "expected an RFC 3339 time (\"2026-11-26T12:00:00Z\"), got " + type_of(v));
  auto t = config::parse_timestamp(v.get<std::string>());
  if (!t) invalid(key, t.error());
  return t.value();
}

std::optional<int64_t> Fields::duration(const std::string& key, bool required) {
  read_.insert(key);
  if (!has(key)) {
    if (required) invalid(key, "required");
    return std::nullopt;
  }
  const json& v = j_.at(key);
  if (v.is_number_integer()) {
    if (v.get<int64_t>() < 0) invalid(key, "must not be negative");
    return v.get<int64_t>();
  }
  if (!v.is_string()) invalid(key, "expected a duration (\"90s\", \"1h\"), got " + type_of(v));
  auto d = config::parse_duration(v.get<std::string>());
  if (!d) invalid(key, d.error());
  return d.value().count();
}

std::optional<uint64_t> Fields::rate(const std::string& key, bool required) {
  read_.insert(key);
  if (!has(key)) {
    if (required) invalid(key, "required");
    return std::nullopt;
  }
  const json& v = j_.at(key);
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) invalid(key, "must not be negative");
  if (!v.is_string())
    invalid(key, "expected a rate (\"10Mbit/s\") or bits per second, got " + type_of(v));
  auto r = config::parse_rate(v.get<std::string>());
  if (!r) invalid(key, r.error());
  return r.value();
}

std::optional<std::vector<config::MemberConfig>> Fields::members(const std::string& key,
                                                                 bool required) {
  read_.insert(key);
  if (!has(key)) {
    if (required) invalid(key, "required");
    return std::nullopt;
  }
  const json& v = j_.at(key);
  if (!v.is_array())
    invalid(key,
            "expected a list of members (\"ip:10.0.0.0/8\", \"device:ID\"), got " + type_of(v));
  if (v.size() > 4096) invalid(key, "more than 4096 members");
  std::vector<config::MemberConfig> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string where = key + "[" + std::to_string(i) + "]";
    if (!v[i].is_string()) invalid(where, "expected a string, got " + type_of(v[i]));
    auto m = market::parse_member(v[i].get<std::string>());
    if (!m) invalid(where, m.error());
    out.push_back(m.value());
  }
  return out;
}

std::optional<json> Fields::array(const std::string& key, bool required) {
  read_.insert(key);
  if (!has(key)) {
    if (required) invalid(key, "required");
    return std::nullopt;
  }
  const json& v = j_.at(key);
  if (!v.is_array()) invalid(key, "expected a list, got " + type_of(v));
  return v;
}

void Fields::done() const {
  for (const auto& [key, value] : j_.items()) {
    if (!read_.count(key)) invalid(key, "unknown field");
  }
}

json reputation_json(const ledger::Reputation& r) {
  return {{"count", r.count},
          {"positive", r.positive},
          {"percent_positive", r.percent_positive},
          {"wilson_lower", r.wilson_lower}};
}

json members_json(const std::vector<config::MemberConfig>& members) {
  json a = json::array();
  for (const auto& m : members)
    a.push_back(market::format_member(m));
  return a;
}

json lot_json(const market::LotView& v, const market::Actor& viewer, const std::string& currency) {
  const market::Lot& l = v.lot;
  const market::LotSpec& s = l.spec;
  json j = {{"id", l.id},
            {"provider", l.provider},
            {"profile", s.profile},
            {"format", market::format_name(s.format)},
            {"state", market::lot_state_name(l.state)},
            {"outcome", market::outcome_name(l.outcome)},
            {"created_at", format_time(l.created_ns)},
            {"closes_at", format_time(l.closes_ns)},
            {"start_at", format_time(s.start_ns)},
            {"duration", config::format_duration(config::Duration(s.duration_ns))},
            {"duration_ns", s.duration_ns},
            {"min_rate", s.min_rate},
            {"max_rate", s.max_rate},
            {"max_members", s.max_members},
            {"quantity", s.quantity},
            {"max_price", s.max_price},
            {"currency", currency},
            {"bid_count", v.bid_count},
            {"clearing_price", l.clearing_price},
            {"min_recipient_wilson", s.min_recipient_wilson},
            {"min_recipient_ratings", s.min_recipient_ratings},
            {"provider_reputation", reputation_json(v.provider_reputation)}};
  if (s.format == market::Format::ascending) {
    j["increment"] = s.increment;
    j["soft_close"] = config::format_duration(config::Duration(s.soft_close_ns));
    j["max_extension"] = config::format_duration(config::Duration(s.max_extension_ns));
    j["leading_price"] = l.leading_price;
  }
  // The reserve is the seller's secret: bidders see only whether it was met (the outcome).
  if (viewer.role == market::Role::admin ||
      (viewer.role == market::Role::provider && viewer.id == l.provider))
    j["reserve"] = s.reserve;
  return j;
}

json bid_json(const market::BidView& v) {
  const market::Bid& b = v.bid;
  json j = {{"id", b.id},
            {"lot", b.lot},
            {"bidder", b.bidder},
            {"price", b.price},
            {"effective_price", v.effective_price},
            {"quantity", b.quantity},
            {"members", v.members_shown ? members_json(b.members) : json(nullptr)},
            {"time", format_time(b.time_ns)},
            {"group", b.group == 0 ? json(nullptr) : json(b.group)},
            {"status", v.status},
            {"lease", v.lease == 0 ? json(nullptr) : json(v.lease)},
            {"bidder_reputation", reputation_json(v.bidder_reputation)}};
  if (!b.device.empty()) j["device"] = b.device;
  if (!v.reason.empty()) j["reason"] = v.reason;
  return j;
}

json group_json(const market::Group& g) {
  json members = json::array();
  for (const auto& gm : g.members)
    members.push_back({{"principal", gm.principal}, {"members", members_json(gm.members)}});
  json pledges = json::object();
  for (const auto& [who, p] : g.pledges)
    pledges[who] = p.amount;
  json joined = json::array();
  for (const market::GroupMember* gm : g.served())
    joined.push_back(gm->principal);
  return {{"id", g.id},         {"lot", g.lot},       {"organizer", g.organizer},
          {"members", members}, {"pledges", pledges}, {"pledged", g.pledged()},
          {"joined", joined}};
}

json usage_json(const market::Usage& u) {
  const auto colours = [](const uint64_t* v) {
    return json{{"green", v[0]}, {"yellow", v[1]}, {"red", v[2]}};
  };
  json members = json::object();
  for (const auto& [label, b] : u.member_bytes)
    members[label] = {{"green", b[0]}, {"yellow", b[1]}, {"red", b[2]}};
  return {{"active_ns", u.active_ns},
          {"packets", colours(u.packets)},
          {"bytes", colours(u.bytes)},
          {"dropped", {{"packets", u.dropped_packets}, {"bytes", u.dropped_bytes}}},
          {"member_bytes", members},
          {"compliance", compliance_json(u.compliance)}};
}

json compliance_json(const market::Compliance& c) {
  return {{"seconds", c.seconds},
          {"owed_seconds", c.owed_seconds},
          {"shortfall_seconds", c.shortfall_seconds},
          {"at_max_seconds", c.at_max_seconds},
          {"compliant_ratio", c.ratio()}};
}

namespace {

json four(const std::array<uint64_t, 4>& v) {
  return {{"green", v[0]}, {"yellow", v[1]}, {"red", v[2]}, {"dropped", v[3]}};
}

}  // namespace

json point_json(const market::SeriesPoint& p) {
  return {{"seq", p.seq},
          {"t", static_cast<double>(p.t_ms) / 1000.0},
          {"dt", static_cast<double>(p.dt_ms) / 1000.0},
          {"packets", four({p.packets[0], p.packets[1], p.packets[2], p.packets[3]})},
          {"bytes", four(p.bytes)},
          {"offered_bps", p.offered_bps()},
          {"delivered_bps", p.delivered_bps()}};
}

json live_json(const market::SeriesView& v) {
  json members = json::array();
  for (const auto& m : v.members)
    members.push_back(
        {{"member", m.label},
         {"bytes", {{"green", m.bytes[0]}, {"yellow", m.bytes[1]}, {"red", m.bytes[2]}}},
         {"delivered_bps", {{"1s", m.delivered_bps_1s}, {"10s", m.delivered_bps_10s}}}});
  return {{"active", v.active},
          {"points", v.next - v.first},
          {"first", v.first},
          {"next", v.next},
          {"totals", {{"packets", four(v.total_packets)}, {"bytes", four(v.total_bytes)}}},
          {"rate",
           {{"delivered_bps", {{"1s", v.delivered_bps_1s}, {"10s", v.delivered_bps_10s}}},
            {"offered_bps", {{"1s", v.offered_bps_1s}, {"10s", v.offered_bps_10s}}}}},
          {"members", members}};
}

json lease_json(const market::Lease& l) {
  return {
      {"id", l.id},
      {"lot", l.lot},
      {"bid", l.bid},
      {"provider", l.provider},
      {"bidder", l.bidder},
      {"recipients", l.recipients},
      {"units", l.units},
      {"unit_price", l.unit_price},
      {"profile", l.profile},
      {"start_at", format_time(l.start_ns)},
      {"end_at", format_time(l.end_ns)},
      {"min_rate", l.min_rate},
      {"max_rate", l.max_rate},
      {"members", members_json(l.members)},
      {"state", market::lease_state_name(l.state)},
      {"block", "lease-" + std::to_string(l.id)},
      {"usage", usage_json(l.usage)},
      {"failure", l.failure.empty() ? json(nullptr) : json(l.failure)},
      {"activation_error", l.activation_error.empty() ? json(nullptr) : json(l.activation_error)}};
}

json charge_json(const market::Charge& c) {
  return {{"id", c.id},
          {"lease", c.lease},
          {"payer", c.payer},
          {"amount", c.amount},
          {"result", market::charge_result_name(c.result)},
          {"reference", c.reference},
          {"reason", c.reason},
          {"attempts", c.attempts},
          {"refund", market::refund_state_name(c.refund)},
          {"refund_reference", c.refund_reference},
          {"refund_reason", c.refund_reason}};
}

json rating_json(const market::RatingView& v) {
  const market::Rating& r = v.rating;
  json j = {{"id", r.id},
            {"lease", v.full ? json(r.lease) : json(nullptr)},
            {"kind", r.kind == market::RatingKind::provider ? "provider" : "recipient"},
            {"by", r.by},
            {"of", r.of},
            {"positive", r.positive},
            {"score", r.score == 0 ? json(nullptr) : json(r.score)},
            {"comment",
             (v.full || r.kind == market::RatingKind::provider) ? json(r.comment) : json(nullptr)},
            {"time", format_time(r.time_ns)}};
  if (v.full && !r.device.empty()) j["device"] = r.device;
  // What the rating rests on, for every viewer: "rated after 99.7% compliant delivery".
  j["delivery"] = r.delivery.seconds == 0
                      ? json(nullptr)
                      : json{{"compliant_ratio", r.delivery.ratio()},
                             {"seconds", r.delivery.seconds},
                             {"owed_seconds", r.delivery.owed_seconds},
                             {"shortfall_seconds", r.delivery.shortfall_seconds}};
  return j;
}

json principal_reputation_json(const market::PrincipalReputation& r) {
  return {{"principal", r.principal},
          {"as_provider", reputation_json(r.as_provider)},
          {"as_recipient", reputation_json(r.as_recipient)}};
}

}  // namespace segx::api
