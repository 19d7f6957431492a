#include "market/gateway.hpp"

#include <httplib.h>

#include <nlohmann/json.hpp>

namespace segx::market {

ChargeResponse TestGateway::charge(const ChargeRequest& r) {
  std::lock_guard lock(mutex_);
  const uint32_t attempt = ++attempts_[r.idempotency_key];
  if (auto it = final_.find(r.idempotency_key); it != final_.end()) return it->second;
  ChargeResponse resp;
  if (error_all_) {
    resp.reason = "gateway unavailable";
    return resp;
  }
  const std::string& t = r.payment_token;
  if (t == "tok_error" || (t == "tok_error_once" && attempt == 1)) {
    resp.result = ChargeResult::error;
    resp.reason = "gateway unavailable";
    return resp;  // not final: a retry with the same key may succeed
  }
  if (t == "tok_accept" || t == "tok_visa" || t == "tok_mastercard" || t == "tok_error_once" ||
      t == "tok_no_refund") {
    resp.result = ChargeResult::accepted;
    resp.reference = "test_ch_" + std::to_string(++accepted_);
    token_of_reference_[resp.reference] = t;
  } else if (t == "tok_decline") {
    resp.result = ChargeResult::declined;
    resp.reason = "card declined";
  } else if (t == "tok_insufficient_funds") {
    resp.result = ChargeResult::declined;
    resp.reason = "insufficient funds";
  } else {
    resp.result = ChargeResult::declined;
    resp.reason = "unknown payment token";
  }
  final_[r.idempotency_key] = resp;
  return resp;
}

ChargeResponse TestGateway::refund(const RefundRequest& r) {
  std::lock_guard lock(mutex_);
  ++attempts_[r.idempotency_key];
  if (auto it = final_.find(r.idempotency_key); it != final_.end()) return it->second;
  ChargeResponse resp;
  if (error_all_) {
    resp.reason = "gateway unavailable";
    return resp;
  }
  auto it = token_of_reference_.find(r.charge_reference);
  if (it == token_of_reference_.end()) {
    resp.result = ChargeResult::declined;
    resp.reason = "no such charge";
  } else if (it->second == "tok_no_refund") {
    resp.result = ChargeResult::declined;
    resp.reason = "refund refused";
  } else {
    resp.result = ChargeResult::accepted;
    resp.reference = "test_re_" + std::to_string(++refunds_);
    refunded_ += r.amount;
  }
  final_[r.idempotency_key] = resp;
  return resp;
}

uint64_t TestGateway::refunds() const {
  std::lock_guard lock(mutex_);
  return refunds_;
}

Money TestGateway::refunded() const {
  std::lock_guard lock(mutex_);
  return refunded_;
}

void TestGateway::error_all(bool on) {
  std::lock_guard lock(mutex_);
  error_all_ = on;
}

uint64_t TestGateway::accepted_charges() const {
  std::lock_guard lock(mutex_);
  return accepted_;
}

uint32_t TestGateway::attempts(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto it = attempts_.find(key);
  return it == attempts_.end() ? 0 : it->second;
}

Result<std::unique_ptr<WebhookGateway>> WebhookGateway::create(const std::string& url,
                                                               std::chrono::milliseconds timeout) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos || (!url.starts_with("http://") && !url.starts_with("https://")))
    return Error{"payment webhook '" + url + "': expected http://host[:port]/path"};
  const size_t slash = url.find('/', scheme + 3);
  std::string origin = slash == std::string::npos ? url : url.substr(0, slash);
  std::string path = slash == std::string::npos ? "/" : url.substr(slash);
  if (origin.size() <= scheme + 3) return Error{"payment webhook '" + url + "': no host"};
  return std::unique_ptr<WebhookGateway>(
      new WebhookGateway(url, std::move(origin), std::move(path), timeout));
}

ChargeResponse WebhookGateway::charge(const ChargeRequest& r) {
  return post({{"action", "charge"},
               {"idempotency_key", r.idempotency_key},
               {"lease", r.lease},
               {"payer", r.payer},
               {"payment_token", r.payment_token},
               {"amount", r.amount},
               {"currency", r.currency}},
              r.idempotency_key);
}

ChargeResponse WebhookGateway::refund(const RefundRequest& r) {
  return post({{"action", "refund"},
               {"idempotency_key", r.idempotency_key},
               {"lease", r.lease},
               {"payer", r.payer},
               {"charge_reference", r.charge_reference},
               {"amount", r.amount},
               {"currency", r.currency}},
              r.idempotency_key);
}

ChargeResponse WebhookGateway::post(const nlohmann::json& body, const std::string& key) {
  ChargeResponse resp;
  httplib::Client client(origin_);
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout_);
  const auto usecs = std::chrono::duration_cast<std::chrono::microseconds>(timeout_ - secs);
  client.set_connection_timeout(secs.count(), usecs.count());
  client.set_read_timeout(secs.count(), usecs.count());
  client.set_write_timeout(secs.count(), usecs.count());
  httplib::Headers headers{{"Idempotency-Key", key}};
  auto res = client.Post(path_, headers, body.dump(), "application/json");
  if (!res) {
    resp.reason = "webhook unreachable: " + httplib::to_string(res.error());
    return resp;
  }
  if (res->status == 402) {
    resp.result = ChargeResult::declined;
    resp.reason = "declined (HTTP 402)";
    return resp;
  }
  if (res->status != 200) {
    resp.reason = "webhook answered HTTP " + std::to_string(res->status);
    return resp;
  }
  const auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (!j.is_object() || !j.contains("result") || !j["result"].is_string()) {
    resp.reason = "webhook answer is not {\"result\": ...}";
    return resp;
  }
  const std::string result = j["result"];
  if (result == "accepted") {
    resp.result = ChargeResult::accepted;
  } else if (result == "declined") {
    resp.result = ChargeResult::declined;
  } else {
    resp.reason = "webhook result '" + result + "' is neither accepted nor declined";
    return resp;
  }
  if (j.contains("reference") && j["reference"].is_string()) resp.reference = j["reference"];
  if (j.contains("reason") && j["reason"].is_string()) resp.reason = j["reason"];
  return resp;
}

Result<std::unique_ptr<PaymentGateway>> make_gateway(const config::GatewayConfig& c) {
  if (c.kind == "webhook") {
    auto g = WebhookGateway::create(
        c.url, std::chrono::duration_cast<std::chrono::milliseconds>(c.timeout));
    if (!g) return Error{g.error()};
    return std::unique_ptr<PaymentGateway>(std::move(g).value());
  }
  return std::unique_ptr<PaymentGateway>(std::make_unique<TestGateway>());
}

}  // namespace segx::market
