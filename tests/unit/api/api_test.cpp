// The API in-process: Api::handle() over a market on an in-memory ledger with a clock the
// test moves. Every rule of docs/api.md that needs no network: authentication, roles and
// ownership, sealed bids, validation, limits, error shapes, the whole market cycle, the
// OpenAPI document against the route table, and the board's files.

#include "api/api.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <algorithm>
#include <optional>
#include <regex>
#include <thread>

#include "api/board.hpp"
#include "api/server.hpp"
#include "raw_http.hpp"
#include "support.hpp"

namespace segx::api {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;
constexpr int64_t s = 1'000'000'000;

class FakeClock final : public market::Clock {
 public:
  int64_t now_ns() const override { return now; }
  int64_t now = 1'800'000'000LL * s;
};

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override { open(100); }

  void open(uint32_t rate_limit) {
    api_.reset();
    market_.reset();
    tokens_.reset();
    ledger_.reset();
    ledger_ = std::move(ledger::Ledger::open("memory:")).value();
    market::MarketOptions o;
    o.provider_id = "acme";
    o.profiles = {"web"};
    // Who holds which addresses: a bid names only its bidder's.
    for (const auto& [who, prefix] :
         std::vector<std::pair<std::string, std::string>>{{"alice", "10.0.0.0/8"},
                                                          {"bob", "192.0.2.0/24"},
                                                          {"carol", "198.51.100.0/24"},
                                                          {"dave", "203.0.113.0/24"}}) {
      config::SubscriberConfig sub;
      sub.id = who;
      sub.prefixes.push_back(config::parse_ip_prefix(prefix).value());
      o.subscribers.push_back(sub);
    }
    config::SubscriberConfig home;
    home.id = "alice";
    config::DeviceConfig laptop;
    laptop.id = "alice-laptop";
    laptop.ips.push_back(config::parse_ip_prefix("10.1.0.1").value());
    laptop.phones.push_back("+15551230001");
    o.subscribers[0].devices.push_back(laptop);
    TokenStore::register_event_types(*ledger_);
    market_ = std::move(market::Market::open(o, *ledger_, gateway_, clock_)).value();
    std::vector<config::TokenConfig> t = {
        {"root", "admin", "", token_hash("root")},
        {"acme", "provider", "", token_hash("acme")},
        {"rival", "provider", "", token_hash("rival")},
        {"alice", "recipient", "", token_hash("alice")},
        {"bob", "recipient", "", token_hash("bob")},
        {"carol", "recipient", "", token_hash("carol")},
        {"alice-phone", "device", "alice", token_hash("alice-phone")},
    };
    tokens_ = std::move(TokenStore::open(t, ledger_.get())).value();
    ApiOptions ao;
    ao.body_limit = 4096;
    ao.rate_limit = rate_limit;
    ao.profiles = {{"web", true, {"count"}, "out"}};
    ao.version = "test";
    api_ = std::make_unique<Api>(ao, *tokens_, *market_, *ledger_, clock_);
  }

  Response call(const std::string& method, const std::string& path, const std::string& token = "",
                const std::string& body = "") {
    Request r;
    r.method = method;
    const auto q = path.find('?');
    r.path = path.substr(0, q);
    if (q != std::string::npos) {
      const std::string query = path.substr(q + 1);
      const auto eq = query.find('=');
      r.query.emplace(query.substr(0, eq), query.substr(eq + 1));
    }
    r.body = body;
    if (!token.empty()) r.authorization = "Bearer " + token;
    return api::wait(api_->handle(r));
  }
  json call_json(const std::string& method, const std::string& path, const std::string& token,
                 const json& body, int expect) {
    Response r = call(method, path, token, body.is_null() ? "" : body.dump());
    EXPECT_EQ(r.status, expect) << method << " " << path << ": " << r.body;
    return json::parse(r.body);
  }
  // A lot of acme's closing in 10 s, blocks from 20 s for 10 s.
  uint64_t lot(const std::string& extra = "") {
    json j = call_json("POST", "/v1/lots", "acme",
                       json::parse(R"({"profile": "web", "closes_in": "10s", "start_in": "20s",
                                       "duration": "10s", "reserve": 50, "max_rate": "10Mbit/s")" +
                                   extra + "}"),
                       201);
    return j["id"];
  }
  json bid(const std::string& who, uint64_t lot_id, int price, int expect = 201,
           const std::string& member = "ip:10.0.0.0/8") {
    return call_json("POST", "/v1/lots/" + std::to_string(lot_id) + "/bids", who,
                     {{"price", price}, {"members", {member}}, {"payment_token", "tok_visa"}},
                     expect);
  }
  static void expect_error(const Response& r, int status, const std::string& code,
                           const std::string& detail = "") {
    EXPECT_EQ(r.status, status) << r.body;
    json j = json::parse(r.body);
    EXPECT_EQ(j["error"], code) << r.body;
    EXPECT_TRUE(j["detail"].is_string());
    if (!detail.empty()) {
      EXPECT_THAT(j["detail"].get<std::string>(), HasSubstr(detail));
    }
  }

  FakeClock clock_;
  market::TestGateway gateway_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<market::Market> market_;
  std::unique_ptr<TokenStore> tokens_;
  std::unique_ptr<Api> api_;
};

TEST_F(ApiTest, NoTokenOrAnUnknownOneIs401WithAChallenge) {
  Response r = call("GET", "/v1/lots");
  expect_error(r, 401, "unauthorized", "Bearer");
  EXPECT_EQ(r.headers.at(0).first, "WWW-Authenticate");
  expect_error(call("GET", "/v1/lots", "not-a-token"), 401, "unauthorized", "unknown");
  Request basic;
  basic.method = "GET";
  basic.path = "/v1/lots";
  basic.authorization = "Basic YWxpY2U6eA==";
  expect_error(api::wait(api_->handle(basic)), 401, "unauthorized");
  // Open routes need none.
  EXPECT_EQ(call("GET", "/healthz").status, 200);
  EXPECT_EQ(call("GET", "/v1/openapi.json").status, 200);
}

TEST_F(ApiTest, RolesAreChecked) {
  const uint64_t id = lot();
  // A recipient cannot sell, a provider cannot bid, only admins handle tokens.
  expect_error(call("POST", "/v1/lots", "alice", "{}"), 403, "forbidden", "provider, admin");
  expect_error(call("POST", "/v1/lots/" + std::to_string(id) + "/bids", "acme",
                    R"({"price": 100, "members": ["ip:10.0.0.0/8"]})"),
               403, "forbidden", "recipient, device");
  expect_error(call("GET", "/v1/tokens", "acme"), 403, "forbidden");
  expect_error(call("GET", "/v1/ledger/verify", "alice"), 403, "forbidden");
  // Another provider cannot sell on this appliance nor cancel acme's lot.
  expect_error(
      call("POST", "/v1/lots", "rival",
           R"({"profile": "web", "closes_in": "10s", "start_in": "20s", "duration": "1s"})"),
      403, "forbidden", "sells as 'acme'");
  expect_error(call("DELETE", "/v1/lots/" + std::to_string(id), "rival"), 403, "forbidden");
}

TEST_F(ApiTest, LotsAreCreatedListedAndCancelled) {
  const uint64_t id = lot();
  json list = call_json("GET", "/v1/lots", "alice", nullptr, 200);
  ASSERT_EQ(list["lots"].size(), 1u);
  const json& l = list["lots"][0];
  EXPECT_EQ(l["id"], id);
  EXPECT_EQ(l["provider"], "acme");
  EXPECT_EQ(l["max_rate"], 10'000'000);
  EXPECT_EQ(l["duration"], "10s");
  EXPECT_EQ(l["provider_reputation"]["count"], 0);
  EXPECT_TRUE(l["provider_reputation"].contains("wilson_lower"));
  EXPECT_FALSE(l.contains("reserve")) << "the reserve is the seller's secret";
  EXPECT_EQ(call_json("GET", "/v1/lots/" + std::to_string(id), "acme", nullptr, 200)["reserve"],
            50);
  EXPECT_EQ(call_json("GET", "/v1/lots?state=closed", "alice", nullptr, 200)["lots"].size(), 0u);
  expect_error(call("GET", "/v1/lots?colour=red", "alice"), 422, "invalid", "colour");
  expect_error(call("GET", "/v1/lots/999", "alice"), 404, "not_found", "no lot 999");
  expect_error(call("GET", "/v1/lots/abc", "alice"), 404, "not_found");
  EXPECT_EQ(call_json("DELETE", "/v1/lots/" + std::to_string(id), "acme", nullptr, 200)["state"],
            "cancelled");
  expect_error(call("DELETE", "/v1/lots/" + std::to_string(id), "acme"), 409, "conflict");
}

TEST_F(ApiTest, SealedBidsAreSeenByTheirBidderAndTheProviderOnly) {
  const uint64_t id = lot();
  json a = bid("alice", id, 300);
  EXPECT_GT(a["id"].get<uint64_t>(), id);
  EXPECT_EQ(a["status"], "pending");
  // The bid is durable when answered.
  bool stored = false;
  ASSERT_TRUE(ledger_->scan(1, [&](const ledger::Event& e) {
    stored |= e.type == "bid" && json::parse(e.body)["id"] == a["id"];
    return true;
  }));
  EXPECT_TRUE(stored);
  bid("bob", id, 200, 201, "ip:192.0.2.0/24");
  const std::string path = "/v1/lots/" + std::to_string(id) + "/bids";
  json seen_by_bob = call_json("GET", path, "bob", nullptr, 200)["bids"];
  ASSERT_EQ(seen_by_bob.size(), 1u);
  EXPECT_EQ(seen_by_bob[0]["bidder"], "bob");
  EXPECT_EQ(call_json("GET", path, "carol", nullptr, 200)["bids"].size(), 0u);
  json seen_by_acme = call_json("GET", path, "acme", nullptr, 200)["bids"];
  ASSERT_EQ(seen_by_acme.size(), 2u);
  EXPECT_TRUE(seen_by_acme[0].contains("bidder_reputation"));
  EXPECT_FALSE(seen_by_acme[0].contains("payment_token"));
  // Own bids across lots.
  json mine = call_json("GET", "/v1/bids", "alice", nullptr, 200)["bids"];
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0]["price"], 300);
  // A sealed bid is final.
  expect_error(call("POST", path, "alice", R"({"price": 400, "members": ["ip:10.0.0.0/8"],
                                               "payment_token": "tok_visa"})"),
               409, "conflict", "sealed");
}

TEST_F(ApiTest, ADeviceActsOnlyForItsRecipient) {
  const uint64_t id = lot();
  json b = bid("alice-phone", id, 300);
  EXPECT_EQ(b["bidder"], "alice");
  EXPECT_EQ(b["device"], "alice-phone");
  bid("bob", id, 200, 201, "ip:192.0.2.0/24");
  json seen = call_json("GET", "/v1/lots/" + std::to_string(id) + "/bids", "alice-phone", nullptr,
                        200)["bids"];
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0]["bidder"], "alice");
  // Alice has bid through her device: her own second sealed bid is refused.
  bid("alice", id, 400, 409);
  EXPECT_EQ(call_json("GET", "/v1/whoami", "alice-phone", nullptr, 200)["acts_for"], "alice");
}

TEST_F(ApiTest, AWholeCycleEndsInRatingsAndReputation) {
  const uint64_t id = lot();
  bid("alice", id, 300);
  bid("bob", id, 200, 201, "ip:192.0.2.0/24");
  clock_.now += 11 * s;
  market_->tick(nullptr);
  market_->settle();
  json lots = call_json("GET", "/v1/lots?state=closed", "carol", nullptr, 200)["lots"];
  ASSERT_EQ(lots.size(), 1u);
  EXPECT_EQ(lots[0]["outcome"], "awarded");
  EXPECT_EQ(lots[0]["clearing_price"], 200);
  json mine = call_json("GET", "/v1/bids", "alice", nullptr, 200)["bids"];
  EXPECT_EQ(mine[0]["status"], "won");
  const uint64_t lease = mine[0]["lease"];
  EXPECT_EQ(call_json("GET", "/v1/bids", "bob", nullptr, 200)["bids"][0]["status"], "lost");

  json leases = call_json("GET", "/v1/leases", "alice", nullptr, 200)["leases"];
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0]["charges"][0]["result"], "accepted");
  EXPECT_EQ(call_json("GET", "/v1/leases", "bob", nullptr, 200)["leases"].size(), 0u);
  expect_error(call("GET", "/v1/leases/" + std::to_string(lease), "bob"), 404, "not_found");
  EXPECT_EQ(call_json("GET", "/v1/blocks", "alice", nullptr, 200)["blocks"][0]["id"],
            "lease-" + std::to_string(lease));
  EXPECT_EQ(
      call_json("GET", "/v1/blocks/lease-" + std::to_string(lease), "acme", nullptr, 200)["lease"],
      lease);

  const std::string ratings = "/v1/leases/" + std::to_string(lease) + "/ratings";
  // Not before the lease has finished.
  expect_error(call("POST", ratings, "alice", R"({"satisfied": true})"), 409, "conflict");
  clock_.now += 10 * s;  // the block runs ...
  market_->tick(nullptr);
  clock_.now += 10 * s;  // ... and ends
  market_->tick(nullptr);
  // A stranger (bob lost) cannot rate, nor tell the lease exists; alice's device rates for
  // her; once only.
  expect_error(call("POST", ratings, "bob", R"({"satisfied": false})"), 404, "not_found");
  json r = call_json("POST", ratings, "alice-phone",
                     {{"satisfied", true}, {"score", 5}, {"comment", "fast"}}, 201);
  EXPECT_EQ(r["by"], "alice");
  EXPECT_EQ(r["of"], "acme");
  EXPECT_EQ(r["device"], "alice-phone");
  expect_error(call("POST", ratings, "alice", R"({"satisfied": true})"), 409, "conflict",
               "already");
  // The provider adds its note to the rating settlement gave alice.
  json note =
      call_json("POST", ratings, "acme", {{"recipient", "alice"}, {"note", "paid on time"}}, 201);
  EXPECT_EQ(note["kind"], "recipient");
  EXPECT_EQ(call_json("GET", ratings, "alice", nullptr, 200)["ratings"].size(), 2u);

  json rep = call_json("GET", "/v1/principals/acme/reputation", "carol", nullptr, 200);
  EXPECT_EQ(rep["as_provider"]["count"], 1);
  EXPECT_EQ(rep["as_provider"]["positive"], 1);
  EXPECT_GT(rep["as_provider"]["wilson_lower"].get<double>(), 0.0);
  EXPECT_EQ(call_json("GET", "/v1/principals/alice/reputation", "acme", nullptr,
                      200)["as_recipient"]["count"],
            1);
  EXPECT_EQ(call_json("GET", "/v1/lots", "carol", nullptr,
                      200)["lots"][0]["provider_reputation"]["count"],
            1);
  EXPECT_EQ(call_json("GET", "/v1/principals/acme/ratings", "bob", nullptr, 200)["ratings"].size(),
            1u);
  json v = call_json("GET", "/v1/ledger/verify", "acme", nullptr, 200);
  EXPECT_TRUE(v["ok"]);
  uint64_t events = 0;
  ASSERT_TRUE(ledger_->scan(1, [&](const ledger::Event&) {
    ++events;
    return true;
  }));
  EXPECT_EQ(v["events"], events);
}

TEST_F(ApiTest, GroupsPledgeAndSponsor) {
  const uint64_t id = lot();
  json g = call_json("POST", "/v1/groups", "bob",
                     {{"lot", id},
                      {"price", 500},
                      {"members",
                       {{{"principal", "bob"}, {"members", {"ip:192.0.2.0/24"}}},
                        {{"principal", "carol"}, {"members", {"ip:198.51.100.0/24"}}},
                        {{"principal", "dave"}, {"members", {"ip:203.0.113.0/24"}}}}}},
                     201);
  const std::string path = "/v1/groups/" + std::to_string(g["id"].get<uint64_t>());
  call_json("POST", path + "/pledges", "bob", {{"amount", 300}, {"payment_token", "tok_visa"}},
            201);
  json after = call_json("POST", path + "/pledges", "carol",
                         {{"amount", 200}, {"payment_token", "tok_decline"}}, 201);
  EXPECT_EQ(after["pledged"], 500);
  EXPECT_EQ(after["joined"], json({"bob", "carol"})) << "dave has not joined yet";
  // dave joins, sponsored: 0 and no payment token. A paying pledge needs one.
  const std::string dave = call_json("POST", "/v1/tokens", "root",
                                     {{"principal", "dave"}, {"role", "recipient"}}, 201)["token"];
  expect_error(call("POST", path + "/pledges", dave, R"({"amount": 5})"), 422, "invalid",
               "payment_token");
  json joined = call_json("POST", path + "/pledges", dave, {{"amount", 0}}, 201);
  EXPECT_EQ(joined["joined"], json({"bob", "carol", "dave"}));
  EXPECT_EQ(joined["pledged"], 500);
  // To anyone outside it, the group does not exist.
  expect_error(
      call("POST", path + "/pledges", "alice", R"({"amount": 100, "payment_token": "tok_visa"})"),
      404, "not_found");
  expect_error(call("GET", path, "alice"), 404, "not_found");
  EXPECT_EQ(call_json("GET", path, "acme", nullptr, 200)["members"].size(), 3u);
  EXPECT_EQ(call_json("DELETE", path + "/pledges", "carol", nullptr, 200)["pledged"], 300);
  expect_error(call("POST", "/v1/groups", "bob",
                    R"({"lot": 1, "price": 5, "members": [{"principal": "x"}]})"),
               422, "invalid", "members[0].members");
}

// Found by tests/fuzz/api_fuzz (regressions/invalid-utf8-in-path): a detail that echoes
// bytes which are not UTF-8 made the JSON writer throw out of handle().
TEST_F(ApiTest, BytesThatAreNotUtf8InTheRequestStillGetAJsonError) {
  const uint64_t id = lot();
  const std::string path = "/v1/lots/" + std::to_string(id) + "/bids";
  // A JSON parse error quotes the bytes around it.
  expect_error(call("POST", path, "alice", "{\"note\" \xc6\xe9\"x\"}"), 400, "bad_request",
               "not valid JSON");
  // Unknown routes and board files echo the path.
  expect_error(call("GET", "/v1/lots/\xff\xfe", "alice"), 404, "not_found");
  expect_error(call("GET", "/ui/\xc3(", ""), 404, "not_found");
}

TEST_F(ApiTest, BadInputGetsA4xxWithDetailNeverA500) {
  const uint64_t id = lot();
  const std::string path = "/v1/lots/" + std::to_string(id) + "/bids";
  expect_error(call("POST", path, "alice", "{\"price\": "), 400, "bad_request", "not valid JSON");
  expect_error(call("POST", path, "alice", "[1, 2]"), 400, "bad_request", "JSON object");
  expect_error(call("POST", path, "alice", "{}"), 422, "invalid", "price: required");
  expect_error(call("POST", path, "alice", R"({"price": "ten", "members": []})"), 422, "invalid",
               "price: expected an integer");
  expect_error(call("POST", path, "alice", R"({"price": 10, "members": ["ip:10.0.0.1/8"]})"), 422,
               "invalid", "members[0]");
  expect_error(
      call("POST", path, "alice", R"({"price": 10, "members": ["ip:10.0.0.0/8"], "prize": 1})"),
      422, "invalid", "prize: unknown field");
  expect_error(call("POST", path, "alice", R"({"price": -1, "members": ["ip:10.0.0.0/8"]})"), 422,
               "invalid", "price");
  // Valid JSON, but no field holds such a number: out of range, like any field's.
  expect_error(call("POST", path, "alice", R"({"price": 1e400})"), 422, "invalid", "out of range");
  expect_error(
      call("POST", "/v1/lots", "acme",
           R"({"profile": "web", "closes_in": "soon", "start_in": "20s", "duration": "1s"})"),
      422, "invalid", "closes_in");
  expect_error(call("POST", "/v1/lots", "acme",
                    R"({"profile": "web", "closes_at": "2001-01-01T00:00:00Z", "start_in": "20s",
                        "duration": "1s"})"),
               422, "invalid", "has passed");
  expect_error(
      call("POST", "/v1/lots", "acme",
           R"({"profile": "voice", "closes_in": "1s", "start_in": "20s", "duration": "1s"})"),
      422, "invalid", "not sold here");
  expect_error(call("POST", "/v1/lots", "acme",
                    R"({"profile": "web", "closes_in": "1s", "start_in": "2s", "duration": "1s",
                        "max_rate": "fast"})"),
               422, "invalid", "max_rate");
  // A body above the limit, an unknown route, a wrong method.
  expect_error(call("POST", path, "alice", std::string(5000, ' ')), 413, "payload_too_large");
  expect_error(call("GET", "/v2/lots", "alice"), 404, "not_found", "no route");
  Response r = call("PUT", "/v1/lots", "acme", "{}");
  expect_error(r, 405, "method_not_allowed");
  EXPECT_EQ(r.headers.at(0), std::make_pair(std::string("Allow"), std::string("GET, POST")));
}

TEST_F(ApiTest, RoutesMatchWholeSegmentsOnly) {
  const uint64_t id = lot();
  const std::string lot_path = "/v1/lots/" + std::to_string(id);
  EXPECT_EQ(call("GET", lot_path, "alice").status, 200);
  EXPECT_EQ(call("GET", lot_path + "/bids", "alice").status, 200);
  // A parameter is one non-empty segment; a trailing slash, an extra or a missing segment,
  // a longer or shorter literal is another path.
  for (const std::string& p : std::vector<std::string>{
           lot_path + "/", lot_path + "/bids/", "/v1/lots//bids",
           "/v1/lots/" + std::to_string(id) + "/x/bids", "/v1/lot/" + std::to_string(id),
           "/v1/lotsx", "/v1", "/v1/", "//v1/lots", "/healthz/", "/healthzz",
           "/v1/lots/" + std::to_string(id) + "/bidsx"})
    expect_error(call("GET", p, "alice"), 404, "not_found", "no route");
  // The parameter reaches the handler as it was written, and a method of another route on
  // the same path is a 405 naming both.
  expect_error(call("GET", "/v1/lots/0x1", "alice"), 404, "not_found");
  Response r = call("PUT", lot_path + "/bids", "alice", "{}");
  expect_error(r, 405, "method_not_allowed");
  EXPECT_EQ(r.headers.at(0), std::make_pair(std::string("Allow"), std::string("GET, POST")));
}

TEST_F(ApiTest, ThePerTokenRateLimitAnswers429UntilTimePasses) {
  open(3);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(call("GET", "/v1/lots", "alice").status, 200) << i;
  Response r = call("GET", "/v1/lots", "alice");
  expect_error(r, 429, "rate_limited", "market.api.rate_limit");
  EXPECT_EQ(r.headers.at(0).first, "Retry-After");
  EXPECT_EQ(call("GET", "/v1/lots", "bob").status, 200) << "each token has its own budget";
  clock_.now += s;
  EXPECT_EQ(call("GET", "/v1/lots", "alice").status, 200);
  // A valid token's requests count on every route: open ones (the listener's limit for
  // anonymous requests lets them through), the board, and paths that do not exist.
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(call("GET", "/healthz", "alice").status, 200) << i;
  for (const char* path : {"/healthz", "/ui/", "/", "/v1/openapi.json", "/nope"})
    expect_error(call("GET", path, "alice"), 429, "rate_limited", "market.api.rate_limit");
  EXPECT_EQ(call("GET", "/healthz").status, 200) << "no token: the listener's limit applies";
  EXPECT_EQ(call("GET", "/healthz", "no-such-token").status, 200) << "nor with an unknown one";
}

// The labels of segx_api_requests_total come from a fixed set: a client choosing methods
// must not add series to /metrics. A known path with another method counts under its pattern.
TEST_F(ApiTest, RequestsAreCountedUnderAFixedSetOfLabels) {
  metrics::Registry registry;
  api_->add_metrics(registry);
  const std::string lot_path = "/v1/lots/" + std::to_string(lot());
  EXPECT_EQ(call("QQQQ", "/nope").status, 404);
  EXPECT_EQ(call(std::string(2000, 'Z'), "/v1/lots", "alice").status, 405);
  EXPECT_EQ(call("PUT", lot_path + "/bids", "alice", "{}").status, 405);
  EXPECT_EQ(call("HEAD", "/healthz").status, 200);
  const std::string text = registry.expose();
  EXPECT_THAT(text, HasSubstr(R"(segx_api_requests_total{route="unmatched",method="other",)"
                              R"(code="404"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(segx_api_requests_total{route="/v1/lots",method="other",)"
                              R"(code="405"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(segx_api_requests_total{route="/v1/lots/{id}/bids",)"
                              R"(method="PUT",code="405"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(segx_api_requests_total{route="/healthz",method="GET",)"
                              R"(code="200"} 1)"));
  EXPECT_EQ(text.find("QQQQ"), std::string::npos);
  EXPECT_EQ(text.find("ZZZZ"), std::string::npos);
}

// A body that is not JSON is refused without quoting it back.
TEST_F(ApiTest, ABodyThatIsNotJsonIsNotEchoed) {
  const std::string body = std::string(3000, ' ') + "secret-looking-text";
  Response r = call("POST", "/v1/lots", "acme", body);
  expect_error(r, 400, "bad_request", "not valid JSON (at byte");
  EXPECT_EQ(r.body.find("secret-looking-text"), std::string::npos) << r.body;
  EXPECT_LT(r.body.size(), 200u);
  // A key twice in one object, at any depth: refused, not read as its last value.
  const uint64_t id = lot();
  expect_error(call("POST", "/v1/lots/" + std::to_string(id) + "/bids", "bob",
                    R"({"price": 1, "price": 2, "members": ["ip:192.0.2.0/24"],)"
                    R"( "payment_token": "tok_visa"})"),
               400, "bad_request", "'price' twice");
  expect_error(call("POST", "/v1/lots", "acme", R"({"a": {"b": 1, "b": 1}})"), 400, "bad_request",
               "'b' twice");
  // The same key in two objects is no repeat.
  EXPECT_EQ(call("POST", "/v1/lots/" + std::to_string(id) + "/bids", "bob",
                 R"({"price": 1, "members": ["ip:192.0.2.0/24"], "payment_token": "tok_visa"})")
                .status,
            201);
}

TEST_F(ApiTest, AdminsIssueTokensShownOnce) {
  json t =
      call_json("POST", "/v1/tokens", "root", {{"principal", "dave"}, {"role", "recipient"}}, 201);
  const std::string token = t["token"];
  EXPECT_EQ(t["sha256"], token_hash(token));
  EXPECT_EQ(call_json("GET", "/v1/whoami", token, nullptr, 200)["principal"], "dave");
  json list = call_json("GET", "/v1/tokens", "root", nullptr, 200)["tokens"];
  EXPECT_EQ(list.size(), 8u);
  EXPECT_EQ(list.dump().find(token), std::string::npos) << "a token is never listed";
  expect_error(call("POST", "/v1/tokens", "root", R"({"principal": "alice", "role": "admin"})"),
               409, "conflict");
  expect_error(call("POST", "/v1/tokens", "root", R"({"principal": "x", "role": "king"})"), 422,
               "invalid", "role");
  // A device acts for a recipient: its owner is a recipient's token principal or a
  // subscriber (as the configuration requires), never a provider, admin or another device.
  for (const std::string owner : {"acme", "root", "alice-phone", "nobody"})
    expect_error(
        call("POST", "/v1/tokens", "root",
             json{{"principal", "dev-" + owner}, {"role", "device"}, {"owner", owner}}.dump()),
        422, "invalid", "owner");
  EXPECT_EQ(
      call_json("POST", "/v1/tokens", "root",
                {{"principal", "bob-tv"}, {"role", "device"}, {"owner", "bob"}}, 201)["owner"],
      "bob");
  // dave is a subscriber without a token of his own until now.
  EXPECT_EQ(
      call_json("POST", "/v1/tokens", "root",
                {{"principal", "dave-tv"}, {"role", "device"}, {"owner", "dave"}}, 201)["owner"],
      "dave");
  expect_error(call("DELETE", "/v1/tokens/" + token_hash("alice"), "root"), 403, "forbidden");
  call_json("DELETE", "/v1/tokens/" + token_hash(token), "root", nullptr, 200);
  expect_error(call("GET", "/v1/whoami", token), 401, "unauthorized");
  expect_error(call("DELETE", "/v1/tokens/" + token_hash(token), "root"), 404, "not_found");
}

TEST_F(ApiTest, TheReloadRouteIsForAdminsAndPassesTheOutcomeOn) {
  // Without a reload hook (nobody runs reloads): 503 for an admin, the role checks first.
  expect_error(call("POST", "/v1/admin/reload"), 401, "unauthorized");
  expect_error(call("POST", "/v1/admin/reload", "acme"), 403, "forbidden", "is for admin");
  expect_error(call("POST", "/v1/admin/reload", "alice-phone"), 403, "forbidden");
  expect_error(call("POST", "/v1/admin/reload", "root"), 503, "unavailable");
  expect_error(call("GET", "/v1/admin/reload", "root"), 405, "method_not_allowed");

  // With one: asked only for an admin, its status and body passed on as they are.
  int asked = 0;
  ApiOptions ao;
  ao.version = "test";
  ao.profiles = {{"web", true, {"count"}, "out"}};
  AdminAnswer answer{422, {{"result", "refused"}, {"generation", 1}, {"errors", json::array()}}};
  ao.reload = [&] {
    ++asked;
    return answer;
  };
  api_ = std::make_unique<Api>(ao, *tokens_, *market_, *ledger_, clock_);
  expect_error(call("POST", "/v1/admin/reload", "bob"), 403, "forbidden");
  EXPECT_EQ(asked, 0);
  Response r = call("POST", "/v1/admin/reload", "root");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(json::parse(r.body), answer.body);
  answer = {200, {{"result", "applied"}, {"generation", 2}, {"changed", json::object()}}};
  r = call("POST", "/v1/admin/reload", "root");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["generation"], 2);
  EXPECT_EQ(asked, 2);

  // A reload's profiles replace those /v1/profiles shows.
  api_->set_profiles({{"web", true, {"count"}, "out"}, {"voice", false, {}, "out"}});
  json p = call_json("GET", "/v1/profiles", "alice", nullptr, 200);
  ASSERT_EQ(p["profiles"].size(), 2u);
  EXPECT_EQ(p["profiles"][1]["name"], "voice");
  EXPECT_EQ(p["profiles"][1]["for_sale"], false);

  // The OpenAPI document gives a refusal its outcome's schema, not Error's.
  json doc = json::parse(call("GET", "/v1/openapi.json").body);
  const json& op = doc["paths"]["/v1/admin/reload"]["post"];
  EXPECT_EQ(op["description"], "Roles: admin.");
  EXPECT_EQ(op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ReloadOutcome");
  EXPECT_EQ(op["responses"]["403"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error");
}

TEST_F(ApiTest, TheOpenApiDocumentListsExactlyTheServedRoutes) {
  json doc = json::parse(call("GET", "/v1/openapi.json").body);
  EXPECT_EQ(doc["openapi"], "3.0.3");
  size_t operations = 0;
  for (const auto& [path, ops] : doc["paths"].items())
    operations += ops.size();
  const auto routes = api_->routes();
  EXPECT_EQ(operations, routes.size());
  for (const RouteInfo& r : routes) {
    std::string m = r.method;
    std::transform(m.begin(), m.end(), m.begin(), ::tolower);
    ASSERT_TRUE(doc["paths"].contains(r.pattern)) << r.pattern;
    ASSERT_TRUE(doc["paths"][r.pattern].contains(m)) << r.method << " " << r.pattern;
    const json& op = doc["paths"][r.pattern][m];
    EXPECT_TRUE(op["responses"].contains(std::to_string(r.success))) << r.pattern;
    if (!r.request_schema.empty()) {
      EXPECT_TRUE(doc["components"]["schemas"].contains(r.request_schema)) << r.request_schema;
    }
    if (!r.response_schema.empty()) {
      EXPECT_TRUE(doc["components"]["schemas"].contains(r.response_schema)) << r.response_schema;
    }
  }
  // The core routes scripts rely on.
  for (const auto& [m, p] :
       std::vector<std::pair<std::string, std::string>>{{"post", "/v1/lots"},
                                                        {"get", "/v1/lots"},
                                                        {"post", "/v1/lots/{id}/bids"},
                                                        {"post", "/v1/leases/{id}/ratings"},
                                                        {"get", "/v1/principals/{id}/reputation"},
                                                        {"get", "/v1/ledger/verify"},
                                                        {"get", "/healthz"}})
    EXPECT_TRUE(doc["paths"][p].contains(m)) << m << " " << p;
}

TEST_F(ApiTest, TheBoardIsServedUnderUi) {
  Response index = call("GET", "/ui/");
  EXPECT_EQ(index.status, 200);
  EXPECT_THAT(index.content_type, HasSubstr("text/html"));
  EXPECT_THAT(index.body, HasSubstr("segx market board"));
  EXPECT_THAT(call("GET", "/ui/board.js").content_type, HasSubstr("javascript"));
  EXPECT_EQ(call("GET", "/ui").status, 302);
  expect_error(call("GET", "/ui/..%2fsecret"), 404, "not_found");
  expect_error(call("GET", "/ui/missing.html"), 404, "not_found");
  expect_error(call("POST", "/ui/", "", "{}"), 405, "method_not_allowed");
  EXPECT_EQ(board_assets().size(), 3u);
}

TEST(StatusFor, MapsEachKindOfRefusalToOneStatus) {
  EXPECT_EQ(status_for(ErrorKind::invalid), 422);
  EXPECT_EQ(status_for(ErrorKind::rule), 422);
  EXPECT_EQ(status_for(ErrorKind::conflict), 409);
  EXPECT_EQ(status_for(ErrorKind::forbidden), 403);
  EXPECT_EQ(status_for(ErrorKind::not_found), 404);
  EXPECT_EQ(status_for(ErrorKind::unavailable), 503);
  EXPECT_EQ(status_for(ErrorKind::internal), 500);
}

TEST(FormatTime, IsRfc3339UtcWithMilliseconds) {
  EXPECT_EQ(format_time(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_time(1'800'000'000LL * s + 250'000'000), "2027-01-15T08:00:00.250Z");
}

}  // namespace
}  // namespace segx::api

// ---- issue 14 through HTTP: the status of every refusal, and what each role can see ----

namespace segx::api {
namespace {

TEST_F(ApiTest, AmountsAndTimesThatWouldWrapAre422) {
  const uint64_t id = lot(R"(, "format": "uniform", "quantity": 5)");
  const std::string path = "/v1/lots/" + std::to_string(id) + "/bids";
  // 3,689,348,814,741,910,324 x 5 = 2^64 + 4: refused, nothing charged, nothing recorded.
  expect_error(call("POST", path, "alice",
                    R"({"price": 3689348814741910324, "quantity": 5, "members": ["ip:10.0.0.0/8"],
                        "payment_token": "tok_visa"})"),
               422, "invalid", "largest amount");
  expect_error(call("POST", path, "alice",
                    R"({"price": 4611686018427387903, "quantity": 3, "members": ["ip:10.0.0.0/8"],
                        "payment_token": "tok_visa"})"),
               422, "invalid");
  expect_error(call("POST", "/v1/lots", "acme",
                    R"({"profile": "web", "closes_in": 9223372036854775807, "start_in": "20s",
                        "duration": "10s"})"),
               422, "invalid");
  json g = call_json("POST", "/v1/groups", "bob",
                     {{"lot", id},
                      {"price", 10},
                      {"members",
                       {{{"principal", "bob"}, {"members", {"ip:192.0.2.0/24"}}},
                        {{"principal", "carol"}, {"members", {"ip:198.51.100.0/24"}}}}}},
                     201);
  const std::string pledges = "/v1/groups/" + std::to_string(g["id"].get<uint64_t>()) + "/pledges";
  call_json("POST", pledges, "bob", {{"amount", 4611686018427387903}, {"payment_token", "t"}}, 201);
  expect_error(
      call("POST", pledges, "carol", R"({"amount": 4611686018427387903, "payment_token": "t"})"),
      422, "invalid", "largest amount");
  EXPECT_EQ(call_json("GET", "/v1/groups/" + std::to_string(g["id"].get<uint64_t>()), "bob",
                      nullptr, 200)["pledged"],
            4611686018427387903);
}

TEST_F(ApiTest, NamingSomeoneElsesIdentifiersIs403) {
  const uint64_t id = lot();
  const std::string path = "/v1/lots/" + std::to_string(id) + "/bids";
  for (const char* m : {"device:alice-laptop", "phone:+15551230001", "ip:0.0.0.0/1",
                        "ip:128.0.0.0/1", "user:alice"}) {
    const json body = {{"price", 300}, {"members", {m}}, {"payment_token", "tok_visa"}};
    expect_error(call("POST", path, "bob", body.dump()), 403, "forbidden", "is not held by bob");
  }
  bid("alice", id, 300, 201, "device:alice-laptop");
}

TEST_F(ApiTest, ARuleRefusalIs422AndAWrongStateIs409) {
  open(1000);
  const uint64_t asc = lot(R"(, "format": "ascending", "increment": 10)");
  const std::string path = "/v1/lots/" + std::to_string(asc) + "/bids";
  bid("alice", asc, 300);
  expect_error(call("POST", path, "alice",
                    R"({"price": 400, "members": ["ip:10.0.0.0/8"], "payment_token": "t"})"),
               422, "invalid", "already leading");
  expect_error(call("POST", path, "bob",
                    R"({"price": 305, "members": ["ip:192.0.2.0/24"], "payment_token": "t"})"),
               422, "invalid", "at least 310");
  const uint64_t sealed = lot();
  bid("alice", sealed, 300);
  bid("alice", sealed, 300, 409);  // a sealed bid already placed
  clock_.now += 11 * s;
  bid("bob", sealed, 300, 409, "ip:192.0.2.0/24");  // closed
}

TEST_F(ApiTest, TheBidsPerLotLimitIs422) {
  market::MarketOptions o;
  o.provider_id = "acme";
  o.profiles = {"web"};
  o.bids_per_lot = 1;
  for (const auto& [who, prefix] : std::vector<std::pair<std::string, std::string>>{
           {"alice", "10.0.0.0/8"}, {"bob", "192.0.2.0/24"}}) {
    config::SubscriberConfig sub;
    sub.id = who;
    sub.prefixes.push_back(config::parse_ip_prefix(prefix).value());
    o.subscribers.push_back(sub);
  }
  api_.reset();
  market_ = std::move(market::Market::open(o, *ledger_, gateway_, clock_)).value();
  ApiOptions ao;
  ao.profiles = {{"web", true, {"count"}, "out"}};
  api_ = std::make_unique<Api>(ao, *tokens_, *market_, *ledger_, clock_);
  const uint64_t id = lot();
  bid("alice", id, 300);
  json r = bid("bob", id, 300, 422, "ip:192.0.2.0/24");
  EXPECT_THAT(r["detail"].get<std::string>(), HasSubstr("limit of 1 bids"));
}

TEST_F(ApiTest, StrangersSeeVerdictsNotWordsAndNoOneElsesMembers) {
  open(1000);
  const uint64_t id = lot();
  bid("bob", id, 300, 201, "ip:192.0.2.0/24");
  // bob pays with a card that is declined: settlement rates him, with the gateway's reason.
  call_json("POST", "/v1/lots/" + std::to_string(lot()) + "/bids", "carol",
            {{"price", 300},
             {"members", {"ip:198.51.100.0/24"}},
             {"payment_token", "tok_insufficient_funds"}},
            201);
  clock_.now += 11 * s;
  market_->tick(nullptr);
  market_->settle();
  json by_stranger = call_json("GET", "/v1/principals/carol/ratings", "alice", nullptr, 200);
  ASSERT_EQ(by_stranger["ratings"].size(), 1u);
  EXPECT_EQ(by_stranger["ratings"][0]["positive"], false);
  EXPECT_TRUE(by_stranger["ratings"][0]["comment"].is_null()) << by_stranger.dump();
  EXPECT_TRUE(by_stranger["ratings"][0]["lease"].is_null());
  json by_carol = call_json("GET", "/v1/principals/carol/ratings", "carol", nullptr, 200);
  EXPECT_EQ(by_carol["ratings"][0]["comment"], "charge declined: insufficient funds");
  json by_acme = call_json("GET", "/v1/principals/carol/ratings", "acme", nullptr, 200);
  EXPECT_EQ(by_acme["ratings"][0]["comment"], "charge declined: insufficient funds");
  // A lease, a block and its ratings are 404 to a stranger, exactly as a missing one.
  const uint64_t lease = call_json("GET", "/v1/leases", "carol", nullptr, 200)["leases"][0]["id"];
  for (const std::string& p :
       {"/v1/leases/" + std::to_string(lease), "/v1/leases/" + std::to_string(lease) + "/ratings",
        "/v1/blocks/lease-" + std::to_string(lease)}) {
    Response hidden = call("GET", p, "alice");
    Response missing =
        call("GET", std::regex_replace(p, std::regex(std::to_string(lease)), "999"), "alice");
    EXPECT_EQ(hidden.status, 404) << p;
    EXPECT_EQ(missing.status, 404) << p;
  }
  // Open outcry shows prices, not the other bidders' members.
  const uint64_t asc = lot(R"(, "format": "ascending")");
  bid("alice", asc, 300, 201, "phone:+15551230001");
  json seen = call_json("GET", "/v1/lots/" + std::to_string(asc) + "/bids", "bob", nullptr, 200);
  ASSERT_EQ(seen["bids"].size(), 1u);
  EXPECT_EQ(seen["bids"][0]["price"], 300);
  EXPECT_TRUE(seen["bids"][0]["members"].is_null());
  EXPECT_EQ(call_json("GET", "/v1/lots/" + std::to_string(asc) + "/bids", "alice", nullptr,
                      200)["bids"][0]["members"][0],
            "phone:+15551230001");
}

// Issue 15, problem 4 (and 14, problem 5), in-process: a ledger whose SQLite file another
// process has locked answers 503 and /healthz says so; once the lock is gone, writes work
// again without a restart and the failed request left nothing behind.
class ApiOnSqlite : public ApiTest {
 protected:
  void SetUp() override {
    ledger::LedgerOptions lo;
    lo.timeout = ledger_timeout();
    file_ = (dir_ / "ledger.db").string();
    ledger_ = std::move(ledger::Ledger::open("sqlite:" + file_, lo)).value();
    TokenStore::register_event_types(*ledger_);
    market::MarketOptions o;
    o.provider_id = "acme";
    o.profiles = {"web"};
    config::SubscriberConfig sub;
    sub.id = "alice";
    sub.prefixes.push_back(config::parse_ip_prefix("10.0.0.0/8").value());
    o.subscribers.push_back(sub);
    market_ = std::move(market::Market::open(o, *ledger_, gateway_, clock_)).value();
    tokens_ = std::move(TokenStore::open({{"acme", "provider", "", token_hash("acme")},
                                          {"alice", "recipient", "", token_hash("alice")},
                                          {"root", "admin", "", token_hash("root")}},
                                         ledger_.get()))
                  .value();
    ApiOptions ao;
    ao.profiles = {{"web", true, {"count"}, "out"}};
    api_ = std::make_unique<Api>(ao, *tokens_, *market_, *ledger_, clock_);
  }
  virtual std::chrono::milliseconds ledger_timeout() const {
    return std::chrono::milliseconds(200);
  }
  test::TempDir dir_;
  std::string file_;
};

TEST_F(ApiOnSqlite, ALockedLedgerIs503AndHealthzFailingUntilItRecovers) {
  const uint64_t id = lot();
  const std::string path = "/v1/lots/" + std::to_string(id) + "/bids";
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(file_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  expect_error(call("POST", path, "alice",
                    R"({"price": 300, "members": ["ip:10.0.0.0/8"], "payment_token": "tok_visa"})"),
               503, "unavailable", "locked");
  Response h = call("GET", "/healthz");
  EXPECT_EQ(h.status, 503);
  json hj = json::parse(h.body);
  EXPECT_EQ(hj["ledger"]["state"], "failing");
  EXPECT_THAT(hj["ledger"]["error"].get<std::string>(), HasSubstr("locked"));
  expect_error(call("POST", "/v1/tokens", "root", R"({"principal": "zed", "role": "recipient"})"),
               503, "unavailable");
  // Nothing of the failed bid exists.
  EXPECT_EQ(call_json("GET", path, "alice", nullptr, 200)["bids"].size(), 0u);
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  json b = bid("alice", id, 300);
  EXPECT_EQ(b["id"], id + 1) << "the failed bid burned no id";
  EXPECT_EQ(call("GET", "/healthz").status, 200);
  EXPECT_EQ(json::parse(call("GET", "/healthz").body)["ledger"]["commit_failures"], 2)
      << "the bid and the token";
  EXPECT_EQ(call_json("GET", path, "alice", nullptr, 200)["bids"].size(), 1u);
}

// A listener thread serves many connections, so a change waiting for its commit must not
// wait on it: with one listener thread and a token issue held up by a locked ledger file,
// /healthz on another connection is answered meanwhile, and the change completes with 201
// once the lock goes. (On one shared thread /healthz waited behind the change until the
// lock went, which here is only after /healthz answered: the client's deadline ended it.)
class ApiOnSqliteSlowCommit : public ApiOnSqlite {
 protected:
  std::chrono::milliseconds ledger_timeout() const override { return std::chrono::seconds(60); }
};

TEST_F(ApiOnSqliteSlowCommit, AChangeWaitingForItsCommitHoldsNoListenerThread) {
  ServerOptions so;
  so.port = 0;
  so.threads = 1;
  auto server = Server::start(so, *api_, *tokens_);
  ASSERT_TRUE(server) << server.error();
  const uint16_t port = server.value()->port();
  const auto stats = server.value()->stats();

  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(file_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  bool unlocked = false;
  const auto unlock = [&] {
    if (std::exchange(unlocked, true)) return;
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);
  };

  std::optional<test::RawResponse> issued;
  std::thread change([&] {
    test::RawClient c("127.0.0.1", port);
    const std::string body = R"({"principal": "zed", "role": "recipient"})";
    if (!c.send("POST /v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer root\r\n"
                "Content-Type: application/json\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body))
      return;
    issued = c.response(std::chrono::seconds(30));
  });
  // Whatever fails below, the lock goes and the client thread ends.
  const std::shared_ptr<void> cleanup(nullptr, [&](void*) {
    unlock();
    if (change.joinable()) change.join();
  });
  // The change is in its handler once the listener counts it; give it time to reach the
  // ledger and block there.
  for (int i = 0; i < 500 && stats->requests.load() < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(stats->requests.load(), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  test::RawClient probe("127.0.0.1", port);
  ASSERT_TRUE(probe.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto health = probe.response(std::chrono::seconds(10));
  const bool answered = health.has_value();
  EXPECT_TRUE(answered) << "/healthz waited behind the change";
  EXPECT_FALSE(issued.has_value()) << "the change did not wait for the locked ledger";
  unlock();
  change.join();
  ASSERT_TRUE(issued.has_value());
  EXPECT_EQ(issued->status, 201) << issued->body;
  EXPECT_EQ(call("GET", "/v1/tokens", "root").status, 200);
}

}  // namespace
}  // namespace segx::api
