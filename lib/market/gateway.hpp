#pragma once
// Settlement goes through a payment gateway. Two are built in: a test gateway whose tokens
// decide the answer (like card processors' test cards), and a webhook gateway that POSTs
// each charge as JSON to a URL the operator runs.

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/result.hpp"
#include "config/config.hpp"
#include "market/types.hpp"

#include <nlohmann/json.hpp>

namespace segx::market {

/// One charge as sent to a gateway. The idempotency key is the same on every retry of the
/// same charge, so a gateway that saw it before answers as before and charges once.
struct ChargeRequest {
  std::string idempotency_key;
  uint64_t lease = 0;
  std::string payer;
  std::string payment_token;
  Money amount = 0;
  std::string currency;
};

/// A refund of an accepted charge, in full: a lease that failed returns what was paid.
struct RefundRequest {
  std::string idempotency_key;  ///< the charge's key + "-refund"
  uint64_t lease = 0;
  std::string payer;
  std::string charge_reference;  ///< the gateway's reference of the charge
  Money amount = 0;
  std::string currency;
};

/// A gateway's answer. `error` means "unknown, try again": it is retried with the same key.
struct ChargeResponse {
  ChargeResult result = ChargeResult::error;
  std::string reference;  ///< the gateway's id for the charge
  std::string reason;     ///< why declined or failed
};

/// Where charges go. charge() may block (network); the market never holds its lock across
/// it. Implementations are called from one settlement thread at a time.
class PaymentGateway {
 public:
  virtual ~PaymentGateway() = default;
  /// Attempts the charge once.
  virtual ChargeResponse charge(const ChargeRequest& request) = 0;
  /// Attempts the refund once; the same key is never refunded twice.
  virtual ChargeResponse refund(const RefundRequest& request) = 0;
  /// "test" or "webhook https://...", for logs.
  virtual std::string describe() const = 0;
};

/// The built-in gateway for demos and tests. Tokens (docs/market.md):
///  - tok_accept, tok_visa, tok_mastercard: accepted;
///  - tok_decline: declined ("card declined"); tok_insufficient_funds: declined
///    ("insufficient funds");
///  - tok_error: an error on every attempt (gateway unavailable);
///  - tok_error_once: an error on the first attempt with a key, accepted on the retry;
///  - tok_no_refund: accepted, but its refund is declined ("refund refused");
///  - anything else: declined ("unknown payment token").
/// A key seen before gets the same final answer and is not charged twice. A refund of a
/// charge this gateway accepted is accepted (once per key); of anything else, declined.
/// error_all(true) makes every attempt an error, as during a processor's outage.
class TestGateway final : public PaymentGateway {
 public:
  ChargeResponse charge(const ChargeRequest& request) override;
  ChargeResponse refund(const RefundRequest& request) override;
  std::string describe() const override { return "test"; }
  /// Charges actually taken (accepted, not repeats).
  uint64_t accepted_charges() const;
  /// Refunds actually made (not repeats) and their total.
  uint64_t refunds() const;
  Money refunded() const;
  /// Attempts made with a key (charge or refund).
  uint32_t attempts(const std::string& idempotency_key) const;
  /// While on, every charge and refund attempt answers error.
  void error_all(bool on);

 private:
  mutable std::mutex mutex_;
  std::map<std::string, ChargeResponse> final_;  // by idempotency key
  std::map<std::string, uint32_t> attempts_;
  std::map<std::string, std::string> token_of_reference_;
  uint64_t accepted_ = 0;
  uint64_t refunds_ = 0;
  Money refunded_ = 0;
  bool error_all_ = false;
};

/// POSTs {"action": "charge", "idempotency_key", "lease", "payer", "payment_token",
/// "amount", "currency"} (or {"action": "refund", "idempotency_key", "lease", "payer",
/// "charge_reference", "amount", "currency"}) as JSON to the configured URL with an
/// Idempotency-Key header. 200 with {"result": "accepted"|"declined", "reference",
/// "reason"} is an answer; 402 is a decline; anything else (other codes, timeouts, refused
/// connections) is an error to retry.
class WebhookGateway final : public PaymentGateway {
 public:
  /// url: http://host[:port]/path or https://...
  static Result<std::unique_ptr<WebhookGateway>> create(const std::string& url,
                                                        std::chrono::milliseconds timeout);
  ChargeResponse charge(const ChargeRequest& request) override;
  ChargeResponse refund(const RefundRequest& request) override;
  std::string describe() const override { return "webhook " + url_; }

 private:
  ChargeResponse post(const nlohmann::json& body, const std::string& key);
  WebhookGateway(std::string url, std::string origin, std::string path,
                 std::chrono::milliseconds timeout)
      : url_(std::move(url)),
        origin_(std::move(origin)),
        path_(std::move(path)),
        timeout_(timeout) {}
  std::string url_, origin_, path_;
  std::chrono::milliseconds timeout_;
};

/// The gateway the configuration names (market.gateway).
Result<std::unique_ptr<PaymentGateway>> make_gateway(const config::GatewayConfig& config);

}  // namespace segx::market
