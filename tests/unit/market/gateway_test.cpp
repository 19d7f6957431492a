// Payment gateways: the test gateway's tokens, and the webhook against a real local HTTP
// server, including a retry that must reuse the idempotency key.
#include "market/gateway.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <thread>

namespace segx::market {
namespace {

ChargeRequest request(const std::string& token, const std::string& key = "k1") {
  return {key, 1, "alice", token, 1250, "EUR"};
}

TEST(TestGateway, TokensDecideTheAnswer) {
  TestGateway g;
  EXPECT_EQ(g.charge(request("tok_accept", "a")).result, ChargeResult::accepted);
  EXPECT_EQ(g.charge(request("tok_visa", "b")).result, ChargeResult::accepted);
  const ChargeResponse d = g.charge(request("tok_decline", "c"));
  EXPECT_EQ(d.result, ChargeResult::declined);
  EXPECT_EQ(d.reason, "card declined");
  EXPECT_EQ(g.charge(request("tok_insufficient_funds", "d")).reason, "insufficient funds");
  EXPECT_EQ(g.charge(request("tok_error", "e")).result, ChargeResult::error);
  EXPECT_EQ(g.charge(request("tok_error", "e")).result, ChargeResult::error);
  EXPECT_EQ(g.charge(request("nonsense", "f")).reason, "unknown payment token");
  EXPECT_EQ(g.accepted_charges(), 2u);
}

TEST(TestGateway, ARetryWithTheSameKeyChargesOnce) {
  TestGateway g;
  EXPECT_EQ(g.charge(request("tok_error_once", "k")).result, ChargeResult::error);
  const ChargeResponse second = g.charge(request("tok_error_once", "k"));
  EXPECT_EQ(second.result, ChargeResult::accepted);
  const ChargeResponse third = g.charge(request("tok_error_once", "k"));
  EXPECT_EQ(third.result, ChargeResult::accepted);
  EXPECT_EQ(third.reference, second.reference);
  EXPECT_EQ(g.accepted_charges(), 1u);
  EXPECT_EQ(g.attempts("k"), 3u);
}

// A payment processor on loopback: the first attempt with a key gets a 503, later ones
// the answer the token asks for; a repeated key gets the same reference.
class Processor {
 public:
  Processor() {
    server_.Post("/charge", [this](const httplib::Request& req, httplib::Response& res) {
      const auto j = nlohmann::json::parse(req.body);
      std::lock_guard lock(m_);
      const std::string key = req.get_header_value("Idempotency-Key");
      keys_.push_back(key);
      if (key != j.at("idempotency_key")) {
        res.status = 400;
        return;
      }
      if (++attempts_[key] == 1 && j.at("payment_token") == "flaky") {
        res.status = 503;
        return;
      }
      if (j.at("payment_token") == "no_money") {
        res.status = 402;
        return;
      }
      if (!refs_.count(key)) refs_[key] = "ch_" + std::to_string(refs_.size() + 1);
      res.set_content(nlohmann::json{{"result", "accepted"}, {"reference", refs_[key]}}.dump(),
                      "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // Bound before the thread starts: connections wait in the backlog until it listens.
  }
  ~Processor() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/charge"; }
  std::vector<std::string> keys() {
    std::lock_guard lock(m_);
    return keys_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex m_;
  std::map<std::string, int> attempts_;
  std::map<std::string, std::string> refs_;
  std::vector<std::string> keys_;
};

TEST(WebhookGateway, AcceptedDeclinedAndRetriedWithTheSameKey) {
  Processor p;
  auto g = WebhookGateway::create(p.url(), std::chrono::milliseconds(2000));
  ASSERT_TRUE(g) << g.error();
  const ChargeResponse ok = g.value()->charge(request("good", "lease-1-alice"));
  EXPECT_EQ(ok.result, ChargeResult::accepted);
  EXPECT_EQ(ok.reference, "ch_1");
  EXPECT_EQ(g.value()->charge(request("no_money", "lease-2-bob")).result, ChargeResult::declined);
  const ChargeResponse first = g.value()->charge(request("flaky", "lease-3-carol"));
  EXPECT_EQ(first.result, ChargeResult::error);
  EXPECT_NE(first.reason.find("503"), std::string::npos) << first.reason;
  const ChargeResponse retry = g.value()->charge(request("flaky", "lease-3-carol"));
  EXPECT_EQ(retry.result, ChargeResult::accepted);
  const auto keys = p.keys();
  ASSERT_EQ(keys.size(), 4u);
  EXPECT_EQ(keys[2], "lease-3-carol");
  EXPECT_EQ(keys[3], "lease-3-carol");
}

TEST(WebhookGateway, AnUnreachableProcessorIsAnErrorToRetry) {
  int port;
  {
    httplib::Server s;
    port = s.bind_to_any_port("127.0.0.1");
  }  // closed again: nothing listens there now
  auto g = WebhookGateway::create("http://127.0.0.1:" + std::to_string(port) + "/charge",
                                  std::chrono::milliseconds(500));
  ASSERT_TRUE(g);
  const ChargeResponse r = g.value()->charge(request("good"));
  EXPECT_EQ(r.result, ChargeResult::error);
  EXPECT_NE(r.reason.find("unreachable"), std::string::npos) << r.reason;
  EXPECT_FALSE(WebhookGateway::create("ftp://x/y", std::chrono::milliseconds(1)));
}

}  // namespace
}  // namespace segx::market
