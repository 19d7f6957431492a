#include "http/client_limits.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace segx::http {

std::string client_key(std::string_view address) {
  const std::string text(address);
  in6_addr a6{};
  if (inet_pton(AF_INET6, text.c_str(), &a6) != 1) return text;  // IPv4, or not an address
  static constexpr uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char buf[INET6_ADDRSTRLEN] = {};
  if (std::memcmp(a6.s6_addr, mapped, sizeof mapped) == 0) {
    inet_ntop(AF_INET, a6.s6_addr + 12, buf, sizeof buf);
    return buf;
  }
  std::memset(a6.s6_addr + 8, 0, 8);
  inet_ntop(AF_INET6, &a6, buf, sizeof buf);
  return std::string(buf) + "/64";
}

uint32_t AddressRateLimiter::take(Bucket& b, Clock::time_point now) {
  const double rate = rate_;
  if (b.last == Clock::time_point{}) {
    b.tokens = rate;
  } else if (now > b.last) {
    b.tokens =
        std::min(rate, b.tokens + std::chrono::duration<double>(now - b.last).count() * rate);
  }
  b.last = std::max(b.last, now);
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  return static_cast<uint32_t>(std::max(1.0, std::ceil((1 - b.tokens) / rate)));
}

uint32_t AddressRateLimiter::take(const std::string& key, Clock::time_point now) {
  if (rate_ == 0) return 0;
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    // A bucket that has refilled since its last request is the same as a new one. One sweep a
    // second at most, so a crowd of new clients costs no more than one pass each second.
    const auto second = std::chrono::seconds(1);
    if (buckets_.size() >= max_clients_ && now - last_sweep_ >= second) {
      last_sweep_ = now;
      std::erase_if(buckets_, [&](const auto& kv) { return now - kv.second.last >= second; });
    }
    if (buckets_.size() >= max_clients_) {
      overflow_used_ = true;
      return take(overflow_, now);
    }
    it = buckets_.emplace(key, Bucket{}).first;
  }
  return take(it->second, now);
}

size_t AddressRateLimiter::clients() const {
  std::lock_guard lock(mutex_);
  return buckets_.size() + (overflow_used_ ? 1 : 0);
}

}  // namespace segx::http
