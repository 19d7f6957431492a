// Who counts as one client, and the per-client rate: bursts, refill, Retry-After, a bounded
// number of buckets whatever the number of clients.

#include "http/client_limits.hpp"

#include <gtest/gtest.h>

namespace segx::http {
namespace {

using namespace std::chrono_literals;

TEST(ClientKey, IPv4IsItselfIPv6IsItsSlash64) {
  EXPECT_EQ(client_key("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(client_key("::ffff:192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(client_key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  EXPECT_EQ(client_key("2001:db8:1:2::ffff"), client_key("2001:db8:1:2:aaaa::1"));
  EXPECT_NE(client_key("2001:db8:1:2::1"), client_key("2001:db8:1:3::1"));
  EXPECT_EQ(client_key("::1"), "::/64");
  EXPECT_EQ(client_key("not an address"), "not an address");
}

TEST(AddressRateLimiter, BurstsOneSecondThenRefills) {
  AddressRateLimiter l(5);
  const auto t0 = AddressRateLimiter::Clock::now();
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(l.take("a", t0), 0u) << i;
  EXPECT_EQ(l.take("a", t0), 1u);  // Retry-After: at least a second
  EXPECT_EQ(l.take("b", t0), 0u);  // another client is not affected
  EXPECT_EQ(l.take("a", t0 + 100ms), 1u);
  EXPECT_EQ(l.take("a", t0 + 250ms), 0u);  // 5/s: one more after 200 ms
  EXPECT_EQ(l.take("a", t0 + 250ms), 1u);
  AddressRateLimiter off(0);
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(off.take("a", t0), 0u);
}

TEST(AddressRateLimiter, HoldsABoundedNumberOfClients) {
  AddressRateLimiter l(2, 100);
  const auto t0 = AddressRateLimiter::Clock::now();
  for (int i = 0; i < 10'000; ++i)
    l.take("c" + std::to_string(i), t0);
  EXPECT_LE(l.clients(), 101u);
  // Newcomers beyond the bound share one bucket: they are limited together, not let through.
  EXPECT_NE(l.take("newcomer", t0), 0u);
  // A second later every bucket has refilled; the sweep makes room again.
  EXPECT_EQ(l.take("newcomer", t0 + 2s), 0u);
  EXPECT_LE(l.clients(), 101u);
}

}  // namespace
}  // namespace segx::http
