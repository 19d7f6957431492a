// The OpenAPI 3.0 document, built from the same route table the server dispatches on, so a
// route cannot be served without being documented (tests also compare the two).

#include <algorithm>
#include <cctype>

#include "api/api.hpp"
#include "api/json_io.hpp"

namespace segx::api {

namespace {

json ref(const std::string& name) {
  return {{"$ref", "#/components/schemas/" + name}};
}

json obj(json properties, std::vector<std::string> required = {}) {
  json j = {{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) j["required"] = required;
  return j;
}

json list_of(const std::string& key, const std::string& item) {
  return obj({{key, {{"type", "array"}, {"items", ref(item)}}}}, {key});
}

const json integer = {{"type", "integer"}, {"format", "int64"}};
const json money = {{"type", "integer"},
                    {"format", "int64"},
                    {"description", "minor units of the market's currency (cents)"}};
const json text = {{"type", "string"}};
const json boolean = {{"type", "boolean"}};
const json time_ = {
    {"type", "string"}, {"format", "date-time"}, {"description", "RFC 3339, UTC, milliseconds"}};
const json duration = {{"type", "string"},
                       {"description", "a duration: 90s, 15m, 1h30m (or an integer of ns)"},
                       {"example", "1h"}};
const json rate = {{"oneOf", json::array({json{{"type", "integer"}}, json{{"type", "string"}}})},
                   {"description", "bits per second, or \"10Mbit/s\""}};
const json members = {
    {"type", "array"},
    {"items", {{"type", "string"}}},
    {"description",
     "ip:10.0.0.0/8, mac:02:00:00:00:00:01, vlan:100, phone:+15551230001, device:ID, user:ID"},
    {"example", json::array({"ip:10.1.0.0/16"})}};

json schemas() {
  json s;
  s["Error"] = obj({{"error",
                     {{"type", "string"},
                      {"enum",
                       {"bad_request", "unauthorized", "forbidden", "not_found",
                        "method_not_allowed", "conflict", "payload_too_large", "invalid",
                        "rate_limited", "unavailable", "internal"}}}},
                    {"detail", text}},
                   {"error", "detail"});
  s["Health"] =
      obj({{"status", text}, {"version", text}, {"ledger", obj({{"events_written", integer}})}});
  s["Whoami"] =
      obj({{"principal", text},
           {"role", {{"type", "string"}, {"enum", {"admin", "provider", "recipient", "device"}}}},
           {"owner", text},
           {"acts_for", text},
           {"source", text}});
  s["Profile"] = obj({{"name", text},
                      {"metered", boolean},
                      {"for_sale", boolean},
                      {"services", {{"type", "array"}, {"items", text}}},
                      {"output", text}});
  s["ProfileList"] = list_of("profiles", "Profile");
  s["Reputation"] =
      obj({{"count", integer},
           {"positive", integer},
           {"percent_positive", {{"type", "number"}}},
           {"wilson_lower",
            {{"type", "number"}, {"description", "Wilson score lower bound, z = 1.96"}}}});
  s["PrincipalReputation"] = obj({{"principal", text},
                                  {"as_provider", ref("Reputation")},
                                  {"as_recipient", ref("Reputation")}});
  const json format = {{"type", "string"}, {"enum", {"second_price", "uniform", "ascending"}}};
  s["LotCreate"] = obj({{"profile", text},
                        {"start_at", time_},
                        {"start_in", duration},
                        {"duration", duration},
                        {"closes_at", time_},
                        {"closes_in", duration},
                        {"min_rate", rate},
                        {"max_rate", rate},
                        {"max_members", integer},
                        {"quantity", integer},
                        {"reserve", money},
                        {"max_price", money},
                        {"format", format},
                        {"soft_close", duration},
                        {"max_extension", duration},
                        {"increment", money},
                        {"min_recipient_wilson", {{"type", "number"}}},
                        {"min_recipient_ratings", integer}},
                       {"profile", "duration"});
  s["LotCreate"]["description"] = "start_at or start_in, and closes_at or closes_in, are required";
  s["Lot"] = obj({{"id", integer},
                  {"provider", text},
                  {"profile", text},
                  {"format", format},
                  {"state", {{"type", "string"}, {"enum", {"open", "closed", "cancelled"}}}},
                  {"outcome", text},
                  {"created_at", time_},
                  {"closes_at", time_},
                  {"start_at", time_},
                  {"duration", duration},
                  {"duration_ns", integer},
                  {"min_rate", integer},
                  {"max_rate", integer},
                  {"max_members", integer},
                  {"quantity", integer},
                  {"max_price", money},
                  {"reserve", money},
                  {"currency", text},
                  {"bid_count", integer},
                  {"clearing_price", money},
                  {"leading_price", money},
                  {"provider_reputation", ref("Reputation")}},
                 {"id", "provider", "state", "closes_at", "provider_reputation"});
  s["LotList"] = list_of("lots", "Lot");
  s["LotList"]["properties"]["now"] = time_;
  s["BidCreate"] =
      obj({{"price", money}, {"quantity", integer}, {"members", members}, {"payment_token", text}},
          {"price", "members"});
  s["Bid"] = obj({{"id", integer},
                  {"lot", integer},
                  {"bidder", text},
                  {"device", text},
                  {"price", money},
                  {"effective_price", money},
                  {"quantity", integer},
                  {"members", members},
                  {"time", time_},
                  {"group", integer},
                  {"status", {{"type", "string"}, {"enum", {"pending", "won", "lost", "void"}}}},
                  {"lease", integer},
                  {"bidder_reputation", ref("Reputation")}},
                 {"id", "lot", "bidder", "price", "status"});
  s["BidList"] = list_of("bids", "Bid");
  s["GroupCreate"] = obj(
      {{"lot", integer},
       {"price", money},
       {"quantity", integer},
       {"members",
        {{"type", "array"},
         {"items", obj({{"principal", text}, {"members", members}}, {"principal", "members"})}}}},
      {"lot", "price", "members"});
  s["Group"] =
      obj({{"id", integer},
           {"lot", integer},
           {"organizer", text},
           {"members",
            {{"type", "array"}, {"items", obj({{"principal", text}, {"members", members}})}}},
           {"pledges", {{"type", "object"}, {"additionalProperties", money}}},
           {"pledged", money},
           {"joined", {{"type", "array"}, {"items", text}}}});
  // amount 0 joins the group as sponsored and needs no payment_token.
  s["PledgeCreate"] = obj({{"amount", money}, {"payment_token", text}}, {"amount"});
  const json colours = obj({{"green", integer}, {"yellow", integer}, {"red", integer}});
  const json real = {{"type", "number"}, {"format", "double"}};
  s["Compliance"] = obj({{"seconds", integer},
                         {"owed_seconds", integer},
                         {"shortfall_seconds", integer},
                         {"at_max_seconds", integer},
                         {"compliant_ratio", real}});
  s["Compliance"]["description"] =
      "Seconds measured; owed: the members offered at least min_rate; shortfall: owed and less "
      "than min_rate delivered; at_max: some dropped above max_rate (red). compliant_ratio = "
      "(owed - shortfall) / owed, 1 when nothing was owed";
  s["Usage"] = obj({{"active_ns", integer},
                    {"packets", colours},
                    {"bytes", colours},
                    {"dropped", obj({{"packets", integer}, {"bytes", integer}})},
                    {"member_bytes", {{"type", "object"}, {"additionalProperties", colours}}},
                    {"compliance", ref("Compliance")}});
  const json four =
      obj({{"green", integer}, {"yellow", integer}, {"red", integer}, {"dropped", integer}});
  const json windows = obj({{"1s", real}, {"10s", real}});
  s["SeriesPoint"] = obj({{"seq", integer},
                          {"t", real},
                          {"dt", real},
                          {"packets", four},
                          {"bytes", four},
                          {"offered_bps", real},
                          {"delivered_bps", real}});
  s["SeriesPoint"]["description"] =
      "What the block carried in about one second ending at t (Unix seconds): offered = green + "
      "yellow + red, delivered = green + yellow - dropped, in bits per second";
  s["BlockLive"] =
      obj({{"active", boolean},
           {"points", integer},
           {"first", integer},
           {"next", integer},
           {"totals", obj({{"packets", four}, {"bytes", four}})},
           {"rate", obj({{"delivered_bps", windows}, {"offered_bps", windows}})},
           {"members",
            {{"type", "array"},
             {"items", obj({{"member", text}, {"bytes", colours}, {"delivered_bps", windows}})}}}});
  s["BlockLive"]["nullable"] = true;
  s["Charge"] =
      obj({{"id", integer},
           {"lease", integer},
           {"payer", text},
           {"amount", money},
           {"result", {{"type", "string"}, {"enum", {"pending", "accepted", "declined", "error"}}}},
           {"reference", text},
           {"reason", text},
           {"attempts", integer}});
  s["Rating"] = obj({{"id", integer},
                     {"lease", integer},
                     {"kind", {{"type", "string"}, {"enum", {"provider", "recipient"}}}},
                     {"by", text},
                     {"of", text},
                     {"device", text},
                     {"positive", boolean},
                     {"score", integer},
                     {"comment", text},
                     {"time", time_},
                     {"delivery", obj({{"compliant_ratio", real},
                                       {"seconds", integer},
                                       {"owed_seconds", integer},
                                       {"shortfall_seconds", integer}})}});
  s["RatingList"] = list_of("ratings", "Rating");
  s["RatingCreate"] = obj({{"satisfied", boolean},
                           {"score", integer},
                           {"comment", text},
                           {"recipient", text},
                           {"note", text}});
  s["RatingCreate"]["description"] =
      "recipients and devices: satisfied (required), score 1-5, comment; providers: recipient "
      "and note";
  s["Lease"] = obj(
      {{"id", integer},
       {"lot", integer},
       {"bid", integer},
       {"provider", text},
       {"bidder", text},
       {"recipients", {{"type", "array"}, {"items", text}}},
       {"units", integer},
       {"unit_price", money},
       {"profile", text},
       {"start_at", time_},
       {"end_at", time_},
       {"min_rate", integer},
       {"max_rate", integer},
       {"members", members},
       {"state",
        {{"type", "string"}, {"enum", {"awarded", "active", "suspended", "finished", "unpaid"}}}},
       {"block", text},
       {"usage", ref("Usage")},
       {"charges", {{"type", "array"}, {"items", ref("Charge")}}},
       {"ratings", {{"type", "array"}, {"items", ref("Rating")}}}});
  s["LeaseList"] = list_of("leases", "Lease");
  s["Block"] = obj({{"id", text},
                    {"lease", integer},
                    {"profile", text},
                    {"state", text},
                    {"start_at", time_},
                    {"end_at", time_},
                    {"min_rate", integer},
                    {"max_rate", integer},
                    {"members", members},
                    {"usage", ref("Usage")},
                    {"live", ref("BlockLive")},
                    {"compliance", ref("Compliance")}});
  s["BlockList"] = list_of("blocks", "Block");
  s["BlockSeries"] = obj({{"block", text},
                          {"interval_s", integer},
                          {"min_rate", integer},
                          {"max_rate", integer},
                          {"active", boolean},
                          {"first", integer},
                          {"next", integer},
                          {"more", boolean},
                          {"points", {{"type", "array"}, {"items", ref("SeriesPoint")}}},
                          {"compliance", ref("Compliance")}});
  s["VerifyReport"] = obj({{"ok", boolean},
                           {"events", integer},
                           {"head", text},
                           {"bad_seq", integer},
                           {"reason", text}});
  s["Token"] = obj({{"principal", text},
                    {"role", text},
                    {"owner", text},
                    {"sha256", text},
                    {"source", {{"type", "string"}, {"enum", {"config", "api"}}}},
                    {"issued_at", time_},
                    {"issued_by", text}});
  s["TokenList"] = list_of("tokens", "Token");
  s["TokenCreate"] =
      obj({{"principal", text},
           {"role", {{"type", "string"}, {"enum", {"admin", "provider", "recipient", "device"}}}},
           {"owner", text}},
          {"principal", "role"});
  const json names = {{"type", "array"}, {"items", text}};
  const json added_changed_removed =
      obj({{"added", names}, {"changed", names}, {"removed", names}});
  s["ReloadOutcome"] = obj(
      {{"result", {{"type", "string"}, {"enum", {"applied", "refused"}}}},
       {"generation",
        {{"type", "integer"},
         {"format", "int64"},
         {"description", "the configuration generation running after it (unchanged if refused)"}}},
       {"changed", obj({{"profiles", added_changed_removed},
                        {"default_action", boolean},
                        {"subscribers", boolean},
                        {"blocks", added_changed_removed},
                        {"log_level", {{"type", "string"}, {"nullable", true}}}})},
       {"error", {{"type", "string"}, {"enum", {"invalid"}}}},
       {"detail", text},
       {"errors",
        {{"type", "array"},
         {"items", obj({{"message", text},
                        {"file", text},
                        {"line", integer},
                        {"column", integer},
                        {"key", text}},
                       {"message"})}}}},
      {"result", "generation"});
  s["IssuedToken"] = s["Token"];
  s["IssuedToken"]["properties"]["token"] = text;
  return s;
}

std::string reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 400:
      return "Malformed JSON or not an object";
    case 401:
      return "No token, or an unknown or revoked one";
    case 403:
      return "The caller's role or ownership does not allow this";
    case 404:
      return "No such resource";
    case 409:
      return "Not in this state (closed, finished, already done)";
    case 413:
      return "Body larger than market.api.body_limit";
    case 422:
      return "An invalid field, or a market rule refuses it";
    case 429:
      return "More requests per second than market.api.rate_limit";
    default:
      return "Error";
  }
}

}  // namespace

json Api::openapi() const {
  json paths = json::object();
  for (const RouteInfo& r : routes()) {
    json op = {{"summary", r.summary}, {"tags", {r.tag}}, {"operationId", ""}};
    std::string id = r.method;
    json params = json::array();
    for (size_t i = r.pattern.find('{'); i != std::string::npos; i = r.pattern.find('{', i + 1)) {
      const std::string name = r.pattern.substr(i + 1, r.pattern.find('}', i) - i - 1);
      params.push_back(
          {{"name", name},
           {"in", "path"},
           {"required", true},
           {"schema", name == "id" && r.pattern.find("principals") == std::string::npos &&
                              r.pattern.find("blocks") == std::string::npos
                          ? integer
                          : text}});
    }
    for (char c : r.pattern)
      id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    op["operationId"] = id;
    if (!params.empty()) op["parameters"] = params;
    if (r.access == Access::token) {
      op["security"] = json::array({{{"bearer", json::array()}}});
      std::string who = "any authenticated role";
      if (!r.roles.empty()) {
        who.clear();
        for (auto role : r.roles)
          who += (who.empty() ? "" : ", ") + std::string(market::role_name(role));
      }
      op["description"] = "Roles: " + who + ".";
    } else {
      op["security"] = json::array();
      op["description"] = "No token needed.";
    }
    if (!r.request_schema.empty())
      op["requestBody"] = {
          {"required", true},
          {"content", {{"application/json", {{"schema", ref(r.request_schema)}}}}}};
    json responses = json::object();
    json ok = {{"description", reason(r.success)}};
    if (!r.response_schema.empty())
      ok["content"] = {{"application/json", {{"schema", ref(r.response_schema)}}}};
    else if (r.pattern.ends_with("/stream"))
      ok["content"] = {{"text/event-stream", {{"schema", {{"type", "string"}}}}}};
    else
      ok["content"] = {{"application/json", {{"schema", {{"type", "object"}}}}}};
    responses[std::to_string(r.success)] = ok;
    for (int e : r.errors)
      responses[std::to_string(e)] = {
          {"description", reason(e)},
          {"content", {{"application/json", {{"schema", ref("Error")}}}}}};
    // A refused reload answers with its outcome (every error), not one Error.
    if (r.response_schema == "ReloadOutcome")
      responses["422"] = {
          {"description", "Refused: the file does not load, or a changed key needs a restart"},
          {"content", {{"application/json", {{"schema", ref("ReloadOutcome")}}}}}};
    op["responses"] = responses;
    std::string method = r.method;
    std::transform(method.begin(), method.end(), method.begin(), ::tolower);
    paths[r.pattern][method] = op;
  }
  return {{"openapi", "3.0.3"},
          {"info",
           {{"title", "segx market API"},
            {"version", options_.version.empty() ? "0" : options_.version},
            {"description",
             "Lots, bids, groups, leases, blocks, ratings and reputation of a segx appliance. "
             "Money in integer minor units; times RFC 3339 (UTC); errors {error, detail}. "
             "Reference: docs/api.md."}}},
          {"servers", json::array({{{"url", "/"}}})},
          {"paths", paths},
          {"components",
           {{"schemas", schemas()},
            {"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}}}}}}};
}

}  // namespace segx::api
