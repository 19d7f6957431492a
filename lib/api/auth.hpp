#pragma once
// Who is calling the API: bearer tokens, kept only as SHA-256 hashes, and a per-token rate
// limit. Tokens come from the configuration (market.api.tokens) or are issued by an admin
// through the API; issued tokens are events in the ledger (token_issued, token_revoked), so
// they survive a restart and every grant of access is in the same tamper-evident journal as
// the bids it allowed.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.hpp"
#include "config/config.hpp"
#include "ledger/ledger.hpp"
#include "market/types.hpp"

namespace segx::api {

/// A principal as a token identifies it.
struct Principal {
  std::string id;
  market::Role role = market::Role::recipient;
  std::string owner;      ///< device: the recipient it acts for
  std::string sha256;     ///< the token's hash, lowercase hex
  std::string source;     ///< "config" or "api"
  int64_t issued_ns = 0;  ///< api tokens: when (ns since the Unix epoch)
  std::string issued_by;  ///< api tokens: the admin who issued it
  /// The market's view of this caller.
  market::Actor actor() const { return {id, role, owner}; }
};

/// A token just issued: the only moment its clear text exists outside the caller.
struct IssuedToken {
  std::string token;  ///< "segx_" + 64 hex digits (256 random bits)
  Principal principal;
};

/// SHA-256 of a token, lowercase hex.
std::string token_hash(std::string_view token);

/// True when the two strings are equal, in time that depends only on their length (OpenSSL's
/// CRYPTO_memcmp), so a caller cannot learn a stored hash byte by byte from response times.
bool constant_time_equal(std::string_view a, std::string_view b);

/// The tokens that open the API. Thread-safe.
class TokenStore {
 public:
  /// Takes the configured tokens and replays token_issued/token_revoked events from the
  /// ledger (may be null: configured tokens only, nothing can be issued). Fails on an
  /// unreadable token event.
  static Result<std::unique_ptr<TokenStore>> open(const std::vector<config::TokenConfig>& tokens,
                                                  ledger::Ledger* ledger);
  /// Tells the ledger that token_issued and token_revoked are the API's events, so the
  /// market's replay skips them. Call before the market opens the same ledger.
  static Status register_event_types(ledger::Ledger& ledger);

  /// The principal a presented token belongs to; nullopt for an unknown or revoked token.
  /// Looks the token's SHA-256 up in a hash table: the cost does not grow with the number of
  /// tokens.
  std::optional<Principal> authenticate(std::string_view token) const;

  /// An admin issues a token for `principal` with `role` (device: `owner` is the recipient it
  /// acts for). Returns once the token_issued event is durable; only then can the token be
  /// used. Authentication never waits for the commit. Errors: no ledger (unavailable), a
  /// role or owner that contradicts an existing token of the same principal (conflict), a
  /// device without owner (invalid).
  Result<IssuedToken> issue(const Principal& by, const std::string& principal, market::Role role,
                            const std::string& owner, int64_t now_ns);

  /// Revokes an issued token by its hash (configured tokens are changed in the
  /// configuration); it stops working once the token_revoked event is durable. Errors:
  /// unknown hash (not_found), a configured token (forbidden), no ledger (unavailable).
  Status revoke(const Principal& by, const std::string& sha256, int64_t now_ns);

  /// Every token's principal, hash and origin (never the token).
  std::vector<Principal> list() const;

 private:
  explicit TokenStore(ledger::Ledger* ledger) : ledger_(ledger) {}
  Status check_consistent(const std::string& principal, market::Role role,
                          const std::string& owner) const;

  ledger::Ledger* ledger_;
  std::mutex change_mutex_;          // one issue or revoke at a time, across its commit
  mutable std::shared_mutex mutex_;  // tokens_: authentication reads, publication writes
  std::vector<Principal> tokens_;
  std::unordered_map<std::string, size_t> by_hash_;  // sha256 -> index in tokens_

  // by_hash_ again after tokens_ changed (under the write lock, or before publication).
  void reindex();
};

/// Requests per second per key (a token's hash), as a token bucket: `rate` tokens refill per
/// second and at most `rate` are saved up, so a client may burst one second's worth. The clock
/// is the caller's (ns), so tests decide how time passes.
class RateLimiter {
 public:
  explicit RateLimiter(uint32_t rate) : rate_(rate) {}
  /// Takes one request for `key` at `now_ns`. Returns 0 when allowed, otherwise how many
  /// seconds (at least 1) until the next request would be.
  uint32_t take(const std::string& key, int64_t now_ns);
  uint32_t rate() const { return rate_; }

 private:
  struct Bucket {
    double tokens = 0;
    int64_t last_ns = 0;
  };
  uint32_t rate_;
  std::mutex mutex_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace segx::api
