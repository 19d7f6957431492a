#include "market/events.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace segx::market {

using nlohmann::json;

namespace {

// Appends `v` as a JSON string. The bid is the market's most frequent event, so its body is
// written directly rather than built as a json object first (most of a bid's cost).
void append_json_string(std::string& out, std::string_view v) {
  out += '"';
  for (const char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

json members_json(const std::vector<config::MemberConfig>& ms) {
  json a = json::array();
  for (const auto& m : ms)
    a.push_back(format_member(m));
  return a;
}

std::vector<config::MemberConfig> members_from(const json& a) {
  std::vector<config::MemberConfig> out;
  for (const auto& s : a) {
    auto m = parse_member(s.get<std::string>());
    if (!m) throw std::invalid_argument(m.error());
    out.push_back(m.value());
  }
  return out;
}

// The market writes every id, count, time and amount as a JSON integer, and floating point
// only for fractions (min_recipient_wilson, 0 to 1). json's get<integer>() of a float is a
// plain cast, undefined once the value is out of the integer's range (1.8e25 into int64_t):
// a journal holding such a number is refused like any other event that cannot be read.
void check_numbers(const json& j) {
  if (j.is_structured()) {
    for (const auto& v : j)
      check_numbers(v);
  } else if (j.is_number_float()) {
    const double d = j.get<double>();
    if (!(d >= 0 && d <= 1)) throw std::out_of_range("number " + j.dump() + " out of range");
  }
}

Money money(const json& j) {
  if (!j.is_number_integer())
    throw std::invalid_argument("amount " + j.dump() + " is not an integer");
  if (j.is_number_unsigned() ? j.get<uint64_t>() > static_cast<uint64_t>(max_money)
                             : (j.get<int64_t>() < 0 || j.get<int64_t>() > max_money))
    throw std::out_of_range("amount " + j.dump() + " out of range");
  return j.get<Money>();
}

template <class T>
T unsigned_int(const json& j) {
  if (!j.is_number_unsigned() && !(j.is_number_integer() && j.get<int64_t>() >= 0))
    throw std::invalid_argument("number " + j.dump() + " is not a non-negative integer");
  const uint64_t v = j.get<uint64_t>();
  if (v > std::numeric_limits<T>::max())
    throw std::out_of_range("number " + j.dump() + " out of range");
  return static_cast<T>(v);
}

int64_t signed_int(const json& j) {
  if (!j.is_number_integer())
    throw std::invalid_argument("number " + j.dump() + " is not an integer");
  if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    throw std::out_of_range("number " + j.dump() + " out of range");
  return j.get<int64_t>();
}

ChargeResult charge_result_from(const std::string& s) {
  if (s == "accepted") return ChargeResult::accepted;
  if (s == "declined") return ChargeResult::declined;
  if (s == "error") return ChargeResult::error;
  throw std::invalid_argument("result '" + s + "'");
}

json lot_spec_json(const LotSpec& s) {
  return {{"profile", s.profile},
          {"start_ns", s.start_ns},
          {"duration_ns", s.duration_ns},
          {"min_rate", s.min_rate},
          {"max_rate", s.max_rate},
          {"max_members", s.max_members},
          {"quantity", s.quantity},
          {"reserve", s.reserve},
          {"max_price", s.max_price},
          {"format", format_name(s.format)},
          {"closes_ns", s.closes_ns},
          {"soft_close_ns", s.soft_close_ns},
          {"max_extension_ns", s.max_extension_ns},
          {"increment", s.increment},
          {"min_recipient_wilson", s.min_recipient_wilson},
          {"min_recipient_ratings", s.min_recipient_ratings}};
}

LotSpec lot_spec_from(const json& j) {
  LotSpec s;
  s.profile = j.at("profile");
  s.start_ns = signed_int(j.at("start_ns"));
  s.duration_ns = signed_int(j.at("duration_ns"));
  s.min_rate = unsigned_int<uint64_t>(j.at("min_rate"));
  s.max_rate = unsigned_int<uint64_t>(j.at("max_rate"));
  s.max_members = unsigned_int<uint32_t>(j.at("max_members"));
  s.quantity = unsigned_int<uint32_t>(j.at("quantity"));
  s.reserve = money(j.at("reserve"));
  s.max_price = money(j.at("max_price"));
  auto f = parse_format(j.at("format").get<std::string>());
  if (!f) throw std::invalid_argument("format " + j.at("format").dump());
  s.format = *f;
  s.closes_ns = signed_int(j.at("closes_ns"));
  s.soft_close_ns = signed_int(j.at("soft_close_ns"));
  s.max_extension_ns = signed_int(j.at("max_extension_ns"));
  s.increment = money(j.at("increment"));
  s.min_recipient_wilson = j.at("min_recipient_wilson").get<double>();
  s.min_recipient_ratings = unsigned_int<uint64_t>(j.at("min_recipient_ratings"));
  return s;
}

json compliance_json(const Compliance& c) {
  return {{"seconds", c.seconds},
          {"owed", c.owed_seconds},
          {"shortfall", c.shortfall_seconds},
          {"at_max", c.at_max_seconds}};
}

Compliance compliance_from(const json& j) {
  Compliance c;
  c.seconds = unsigned_int<uint64_t>(j.at("seconds"));
  c.owed_seconds = unsigned_int<uint64_t>(j.at("owed"));
  c.shortfall_seconds = unsigned_int<uint64_t>(j.at("shortfall"));
  c.at_max_seconds = unsigned_int<uint64_t>(j.at("at_max"));
  // A journal that says otherwise would make the ratio nonsense.
  if (c.shortfall_seconds > c.owed_seconds || c.owed_seconds > c.seconds ||
      c.at_max_seconds > c.seconds)
    throw std::invalid_argument("compliance counts do not nest");
  return c;
}

json usage_json(const Usage& u) {
  json members = json::object();
  for (const auto& [label, b] : u.member_bytes)
    members[label] = {b[0], b[1], b[2]};
  json j = {{"active_ns", u.active_ns},
            {"packets", {u.packets[0], u.packets[1], u.packets[2]}},
            {"bytes", {u.bytes[0], u.bytes[1], u.bytes[2]}},
            {"members", members}};
  // Absent in events written before segx kept them, and when there is nothing to say.
  if (u.dropped_packets) j["dropped"] = {u.dropped_packets, u.dropped_bytes};
  if (u.compliance.seconds) j["compliance"] = compliance_json(u.compliance);
  return j;
}

Usage usage_from(const json& j) {
  Usage u;
  u.active_ns = j.contains("active_ns") ? signed_int(j.at("active_ns")) : 0;
  for (size_t i = 0; i < 3; ++i) {
    u.packets[i] = unsigned_int<uint64_t>(j.at("packets").at(i));
    u.bytes[i] = unsigned_int<uint64_t>(j.at("bytes").at(i));
  }
  for (const auto& [label, b] : j.at("members").items())
    u.member_bytes[label] = {unsigned_int<uint64_t>(b.at(0)), unsigned_int<uint64_t>(b.at(1)),
                             unsigned_int<uint64_t>(b.at(2))};
  if (j.contains("dropped")) {
    u.dropped_packets = unsigned_int<uint64_t>(j.at("dropped").at(0));
    u.dropped_bytes = unsigned_int<uint64_t>(j.at("dropped").at(1));
  }
  if (j.contains("compliance")) u.compliance = compliance_from(j.at("compliance"));
  return u;
}

std::string encode_bid(const BidPlaced& e) {
  const Bid& b = e.bid;
  // Keys in sorted order, as json::dump() writes them, so every event reads the same way.
  std::string body;
  body.reserve(160 + 40 * b.members.size());
  body += "{\"bidder\":";
  append_json_string(body, b.bidder);
  if (!b.device.empty()) {
    body += ",\"device\":";
    append_json_string(body, b.device);
  }
  if (e.extends_to != 0) body += ",\"extends_to\":" + std::to_string(e.extends_to);
  body += ",\"id\":" + std::to_string(b.id);
  body += ",\"lot\":" + std::to_string(b.lot) + ",\"members\":[";
  for (size_t i = 0; i < b.members.size(); ++i) {
    if (i) body += ',';
    append_json_string(body, format_member(b.members[i]));
  }
  body += "],\"price\":" + std::to_string(b.price) + ",\"quantity\":" + std::to_string(b.quantity);
  if (!b.token_fp.empty()) {
    body += ",\"token_fp\":";
    append_json_string(body, b.token_fp);
  }
  body += "}";
  return body;
}

struct TypeName {
  std::string_view operator()(const MarketCreated&) const { return "market_created"; }
  std::string_view operator()(const LotCreated&) const { return "lot_created"; }
  std::string_view operator()(const LotCancelled&) const { return "lot_cancelled"; }
  std::string_view operator()(const BidPlaced&) const { return "bid"; }
  std::string_view operator()(const GroupCreated&) const { return "group_created"; }
  std::string_view operator()(const Pledged&) const { return "pledge"; }
  std::string_view operator()(const PledgeWithdrawn&) const { return "pledge_withdrawn"; }
  std::string_view operator()(const LotClosed&) const { return "lot_closed"; }
  std::string_view operator()(const Activated&) const { return "activation"; }
  std::string_view operator()(const LeaseFailed&) const { return "lease_failed"; }
  std::string_view operator()(const UsageRecorded&) const { return "usage"; }
  std::string_view operator()(const ChargeSettled&) const { return "charge"; }
  std::string_view operator()(const RefundSettled&) const { return "refund"; }
  std::string_view operator()(const RatingGiven&) const { return "rating"; }
  std::string_view operator()(const RatingNoted&) const { return "rating_note"; }
};

struct Body {
  std::string operator()(const MarketCreated& e) const {
    return json{{"market", e.market_id}}.dump();
  }
  std::string operator()(const LotCreated& e) const {
    json j = lot_spec_json(e.spec);
    j["id"] = e.id;
    j["provider"] = e.provider;
    j["currency"] = e.currency;
    return j.dump();
  }
  std::string operator()(const LotCancelled& e) const {
    return json{{"lot", e.lot}, {"by", e.by}}.dump();
  }
  std::string operator()(const BidPlaced& e) const { return encode_bid(e); }
  std::string operator()(const GroupCreated& e) const {
    json members = json::array();
    for (const GroupMember& gm : e.members)
      members.push_back({{"principal", gm.principal}, {"members", members_json(gm.members)}});
    json j = {{"id", e.id},       {"lot", e.lot},           {"organizer", e.organizer},
              {"price", e.price}, {"quantity", e.quantity}, {"members", members}};
    if (e.extends_to != 0) j["extends_to"] = e.extends_to;
    if (e.consent) j["consent"] = true;
    return j.dump();
  }
  std::string operator()(const Pledged& e) const {
    json j = {{"group", e.group}, {"principal", e.principal}, {"amount", e.amount}};
    if (!e.token_fp.empty()) j["token_fp"] = e.token_fp;
    if (e.extends_to != 0) j["extends_to"] = e.extends_to;
    return j.dump();
  }
  std::string operator()(const PledgeWithdrawn& e) const {
    return json{{"group", e.group}, {"principal", e.principal}}.dump();
  }
  std::string operator()(const LotClosed& e) const {
    json leases = json::array();
    for (const AwardedLease& a : e.leases) {
      json charges = json::array();
      for (const auto& [payer, amount] : a.charges)
        charges.push_back({{"payer", payer}, {"amount", amount}});
      leases.push_back({{"lease", a.lease},
                        {"bid", a.bid},
                        {"units", a.units},
                        {"unit_price", a.unit_price},
                        {"charges", charges}});
    }
    json j = {{"lot", e.lot},
              {"outcome", outcome_name(e.outcome)},
              {"clearing_price", e.clearing_price},
              {"leases", leases}};
    if (!e.excluded.empty()) {
      json x = json::array();
      for (const ExcludedBid& b : e.excluded)
        x.push_back({{"bid", b.bid}, {"reason", b.reason}});
      j["excluded"] = x;
    }
    return j.dump();
  }
  std::string operator()(const Activated& e) const {
    json j = {{"lease", e.lease}, {"appliance", e.appliance}, {"ok", e.ok}, {"resumed", e.resumed}};
    if (!e.ok) j["error"] = e.error;
    return j.dump();
  }
  std::string operator()(const LeaseFailed& e) const {
    return json{{"lease", e.lease}, {"reason", e.reason}, {"attempts", e.attempts}}.dump();
  }
  std::string operator()(const UsageRecorded& e) const {
    return json{{"lease", e.lease},
                {"appliance", e.appliance},
                {"final", e.final},
                {"interrupted", e.interrupted},
                {"usage", usage_json(e.usage)}}
        .dump();
  }
  std::string operator()(const ChargeSettled& e) const {
    return json{{"charge", e.charge},
                {"rating", e.rating},
                {"lease", e.lease},
                {"payer", e.payer},
                {"amount", e.amount},
                {"currency", e.currency},
                {"result", charge_result_name(e.result)},
                {"reference", e.reference},
                {"reason", e.reason},
                {"attempts", e.attempts},
                {"idempotency_key", e.idempotency_key}}
        .dump();
  }
  std::string operator()(const RefundSettled& e) const {
    return json{{"charge", e.charge},
                {"result", charge_result_name(e.result)},
                {"reference", e.reference},
                {"reason", e.reason},
                {"attempts", e.attempts}}
        .dump();
  }
  std::string operator()(const RatingGiven& e) const {
    const Rating& r = e.rating;
    const Evidence& v = e.evidence;
    json j = {{"id", r.id},
              {"lease", r.lease},
              {"kind", "provider"},
              {"by", r.by},
              {"of", r.of},
              {"positive", r.positive},
              {"score", r.score},
              {"comment", r.comment},
              {"evidence",
               {{"active_ns", v.active_ns},
                {"green_bytes", v.green_bytes},
                {"yellow_bytes", v.yellow_bytes},
                {"red_bytes", v.red_bytes},
                {"min_rate", v.min_rate},
                {"min_rate_bytes", v.min_rate_bytes}}}};
    if (r.delivery.seconds) j["evidence"]["compliance"] = compliance_json(r.delivery);
    if (!r.device.empty()) j["device"] = r.device;
    return j.dump();
  }
  std::string operator()(const RatingNoted& e) const {
    return json{{"rating", e.rating}, {"by", e.by}, {"note", e.note}}.dump();
  }
};

Result<MarketEvent> decode_json(const std::string& type, const json& j, int64_t time_ns) {
  if (type == "market_created") return MarketEvent{MarketCreated{j.at("market")}};
  if (type == "lot_created") {
    LotCreated e;
    e.id = unsigned_int<uint64_t>(j.at("id"));
    e.provider = j.at("provider");
    e.spec = lot_spec_from(j);
    e.currency = j.value("currency", "");
    return MarketEvent{std::move(e)};
  }
  if (type == "lot_cancelled")
    return MarketEvent{LotCancelled{unsigned_int<uint64_t>(j.at("lot")), j.value("by", "")}};
  if (type == "bid") {
    BidPlaced e;
    Bid& b = e.bid;
    b.id = unsigned_int<uint64_t>(j.at("id"));
    b.lot = unsigned_int<uint64_t>(j.at("lot"));
    b.bidder = j.at("bidder");
    b.device = j.value("device", "");
    b.price = money(j.at("price"));
    b.quantity = unsigned_int<uint32_t>(j.at("quantity"));
    b.members = members_from(j.at("members"));
    b.token_fp = j.value("token_fp", "");
    e.legacy_token = j.value("payment_token", "");
    b.time_ns = time_ns;
    e.extends_to = j.contains("extends_to") ? signed_int(j.at("extends_to")) : 0;
    return MarketEvent{std::move(e)};
  }
  if (type == "group_created") {
    GroupCreated e;
    e.id = unsigned_int<uint64_t>(j.at("id"));
    e.lot = unsigned_int<uint64_t>(j.at("lot"));
    e.organizer = j.at("organizer");
    e.price = money(j.at("price"));
    e.quantity = unsigned_int<uint32_t>(j.at("quantity"));
    for (const auto& gm : j.at("members"))
      e.members.push_back({gm.at("principal"), members_from(gm.at("members"))});
    e.extends_to = j.contains("extends_to") ? signed_int(j.at("extends_to")) : 0;
    e.consent = j.contains("consent") && j.at("consent").get<bool>();
    return MarketEvent{std::move(e)};
  }
  if (type == "pledge") {
    Pledged e;
    e.group = unsigned_int<uint64_t>(j.at("group"));
    e.principal = j.at("principal");
    e.amount = money(j.at("amount"));
    e.token_fp = j.value("token_fp", "");
    e.legacy_token = j.value("payment_token", "");
    e.extends_to = j.contains("extends_to") ? signed_int(j.at("extends_to")) : 0;
    return MarketEvent{std::move(e)};
  }
  if (type == "pledge_withdrawn")
    return MarketEvent{PledgeWithdrawn{unsigned_int<uint64_t>(j.at("group")), j.at("principal")}};
  if (type == "lot_closed") {
    LotClosed e;
    e.lot = unsigned_int<uint64_t>(j.at("lot"));
    const std::string outcome = j.at("outcome");
    for (Outcome o :
         {Outcome::awarded, Outcome::partially_awarded, Outcome::reserve_not_met, Outcome::no_bids})
      if (outcome_name(o) == outcome) e.outcome = o;
    if (e.outcome == Outcome::none) throw std::invalid_argument("outcome '" + outcome + "'");
    e.clearing_price = money(j.at("clearing_price"));
    for (const auto& a : j.at("leases")) {
      AwardedLease la;
      la.lease = unsigned_int<uint64_t>(a.at("lease"));
      la.bid = unsigned_int<uint64_t>(a.at("bid"));
      la.units = unsigned_int<uint32_t>(a.at("units"));
      la.unit_price = money(a.at("unit_price"));
      for (const auto& p : a.at("charges"))
        la.charges.push_back({p.at("payer").get<std::string>(), money(p.at("amount"))});
      e.leases.push_back(std::move(la));
    }
    if (j.contains("excluded"))
      for (const auto& x : j.at("excluded"))
        e.excluded.push_back({unsigned_int<uint64_t>(x.at("bid")), x.at("reason")});
    return MarketEvent{std::move(e)};
  }
  if (type == "activation") {
    Activated e;
    e.lease = unsigned_int<uint64_t>(j.at("lease"));
    e.appliance = j.value("appliance", "local");
    e.ok = j.value("ok", true);
    e.resumed = j.value("resumed", false);
    e.error = j.value("error", "");
    return MarketEvent{std::move(e)};
  }
  if (type == "lease_failed")
    return MarketEvent{LeaseFailed{unsigned_int<uint64_t>(j.at("lease")), j.at("reason"),
                                   unsigned_int<uint32_t>(j.at("attempts"))}};
  if (type == "usage") {
    UsageRecorded e;
    e.lease = unsigned_int<uint64_t>(j.at("lease"));
    e.appliance = j.value("appliance", "local");
    e.final = j.at("final").get<bool>();
    e.interrupted = j.value("interrupted", false);
    e.usage = usage_from(j.at("usage"));
    return MarketEvent{std::move(e)};
  }
  if (type == "charge") {
    ChargeSettled e;
    e.charge = unsigned_int<uint64_t>(j.at("charge"));
    e.rating = unsigned_int<uint64_t>(j.at("rating"));
    e.lease = unsigned_int<uint64_t>(j.at("lease"));
    e.payer = j.value("payer", "");
    e.amount = j.contains("amount") ? money(j.at("amount")) : 0;
    e.currency = j.value("currency", "");
    e.result = charge_result_from(j.at("result"));
    e.reference = j.value("reference", "");
    e.reason = j.value("reason", "");
    e.attempts = unsigned_int<uint32_t>(j.at("attempts"));
    e.idempotency_key = j.value("idempotency_key", "");
    return MarketEvent{std::move(e)};
  }
  if (type == "refund") {
    RefundSettled e;
    e.charge = unsigned_int<uint64_t>(j.at("charge"));
    e.result = charge_result_from(j.at("result"));
    e.reference = j.value("reference", "");
    e.reason = j.value("reason", "");
    e.attempts = unsigned_int<uint32_t>(j.at("attempts"));
    return MarketEvent{std::move(e)};
  }
  if (type == "rating") {
    RatingGiven e;
    Rating& r = e.rating;
    r.id = unsigned_int<uint64_t>(j.at("id"));
    r.lease = unsigned_int<uint64_t>(j.at("lease"));
    r.kind = RatingKind::provider;
    r.by = j.at("by");
    r.of = j.at("of");
    r.device = j.value("device", "");
    r.positive = j.at("positive").get<bool>();
    r.score = j.contains("score") ? unsigned_int<uint8_t>(j.at("score")) : 0;
    r.comment = j.value("comment", "");
    r.time_ns = time_ns;
    if (j.contains("evidence")) {
      const json& v = j.at("evidence");
      e.evidence.active_ns = signed_int(v.value("active_ns", json(0)));
      e.evidence.green_bytes = unsigned_int<uint64_t>(v.value("green_bytes", json(0)));
      e.evidence.yellow_bytes = unsigned_int<uint64_t>(v.value("yellow_bytes", json(0)));
      e.evidence.red_bytes = unsigned_int<uint64_t>(v.value("red_bytes", json(0)));
      e.evidence.min_rate = unsigned_int<uint64_t>(v.value("min_rate", json(0)));
      e.evidence.min_rate_bytes = unsigned_int<uint64_t>(v.value("min_rate_bytes", json(0)));
      if (v.contains("compliance")) e.rating.delivery = compliance_from(v.at("compliance"));
    }
    return MarketEvent{std::move(e)};
  }
  if (type == "rating_note")
    return MarketEvent{
        RatingNoted{unsigned_int<uint64_t>(j.at("rating")), j.value("by", ""), j.at("note")}};
  return Error{"unknown event type '" + type + "'"};
}

}  // namespace

std::string_view event_type(const MarketEvent& e) {
  return std::visit(TypeName{}, e);
}

const std::vector<std::string>& market_event_types() {
  static const std::vector<std::string> types = {
      "market_created", "lot_created",      "lot_cancelled", "bid",        "group_created",
      "pledge",         "pledge_withdrawn", "lot_closed",    "activation", "lease_failed",
      "usage",          "charge",           "refund",        "rating",     "rating_note"};
  return types;
}

ledger::Event encode(const MarketEvent& e, int64_t time_ns) {
  ledger::Event out;
  out.time_ns = time_ns;
  out.type = std::string(event_type(e));
  out.body = std::visit(Body{}, e);
  return out;
}

Result<MarketEvent> decode(const std::string& type, const std::string& body, int64_t time_ns) {
  try {
    const json j = json::parse(body);
    check_numbers(j);
    return decode_json(type, j, time_ns);
  } catch (const std::exception& ex) {
    return Error{ex.what()};
  }
}

}  // namespace segx::market
