#pragma once
// Limits per client address, for limits that must hold without a token: who counts as one
// client (client_key) and a request rate per client (AddressRateLimiter). The connection caps
// that use client_key are in http/server.hpp.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace segx::http {

/// The client an address belongs to, for per-client limits: an IPv4 address as itself (an
/// IPv4-mapped IPv6 address too), an IPv6 address as its /64 ("2001:db8:0:1::/64"), since one
/// subscriber usually holds a whole /64. Text that is not an address is returned unchanged.
std::string client_key(std::string_view address);

/// Requests per second per client key, as token buckets: `rate` tokens refill per second and at
/// most `rate` are saved up, so a client may burst one second's worth. The number of buckets
/// is bounded: when `max_clients` are held, buckets that have refilled completely are dropped
/// (they carry no state; one sweep a second at most); until there is room again, newcomers share
/// one overflow bucket. Thread-safe.
class AddressRateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  /// `rate` 0: no limit.
  explicit AddressRateLimiter(uint32_t rate, size_t max_clients = 65536)
      : rate_(rate), max_clients_(max_clients) {}
  /// Takes one request for `key` at `now`. Returns 0 when allowed, otherwise how many whole
  /// seconds (at least 1) until the next request would be allowed (for Retry-After).
  uint32_t take(const std::string& key, Clock::time_point now);
  uint32_t rate() const { return rate_; }
  /// Buckets held (at most max_clients + 1).
  size_t clients() const;

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point last{};
  };
  uint32_t take(Bucket& b, Clock::time_point now);
  uint32_t rate_;
  size_t max_clients_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
  Bucket overflow_;
  bool overflow_used_ = false;
  Clock::time_point last_sweep_{};
};

}  // namespace segx::http
