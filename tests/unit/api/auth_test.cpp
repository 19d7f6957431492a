// Tokens and rate limits: hashes only, constant-time comparison, issued tokens that survive a
// restart through the ledger, revocation, and the token bucket's arithmetic.

#include "api/auth.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace segx::api {
namespace {

using ::testing::HasSubstr;

TEST(TokenHash, IsTheSha256InLowercaseHex) {
  EXPECT_EQ(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ConstantTimeEqual, ComparesWholeStrings) {
  EXPECT_TRUE(constant_time_equal("abcdef", "abcdef"));
  EXPECT_FALSE(constant_time_equal("abcdef", "abcdeg"));
  EXPECT_FALSE(constant_time_equal("abc", "abcdef"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

std::vector<config::TokenConfig> configured() {
  return {{"root", "admin", "", token_hash("root-token")},
          {"alice", "recipient", "", token_hash("alice-token")},
          {"alice-phone", "device", "alice", token_hash("phone-token")}};
}

TEST(TokenStore, AuthenticatesConfiguredTokensByHash) {
  auto s = TokenStore::open(configured(), nullptr);
  ASSERT_TRUE(s) << s.error();
  auto p = s.value()->authenticate("phone-token");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->id, "alice-phone");
  EXPECT_EQ(p->role, market::Role::device);
  EXPECT_EQ(p->actor().principal(), "alice");
  EXPECT_EQ(p->source, "config");
  EXPECT_FALSE(s.value()->authenticate("root-token "));
  EXPECT_FALSE(s.value()->authenticate(""));
  // The hash itself is not a token.
  EXPECT_FALSE(s.value()->authenticate(token_hash("root-token")));
}

TEST(TokenStore, IssuedTokensAreLedgerEventsThatSurviveARestart) {
  auto ledger = ledger::Ledger::open("memory:");
  ASSERT_TRUE(ledger) << ledger.error();
  auto s = TokenStore::open(configured(), ledger.value().get());
  ASSERT_TRUE(s) << s.error();
  const Principal root = *s.value()->authenticate("root-token");
  auto t = s.value()->issue(root, "bob", market::Role::recipient, "", 1000);
  ASSERT_TRUE(t) << t.error();
  EXPECT_THAT(t.value().token, ::testing::StartsWith("segx_"));
  EXPECT_EQ(t.value().token.size(), 5u + 64u);
  EXPECT_EQ(t.value().principal.sha256, token_hash(t.value().token));
  // The clear token is nowhere in the journal; its hash is.
  bool hash_seen = false;
  ASSERT_TRUE(ledger.value()->scan(1, [&](const ledger::Event& e) {
    EXPECT_EQ(e.body.find(t.value().token), std::string::npos);
    hash_seen |= e.body.find(t.value().principal.sha256) != std::string::npos;
    return true;
  }));
  EXPECT_TRUE(hash_seen);

  // A second store over the same journal (a restart) knows the token.
  auto again = TokenStore::open(configured(), ledger.value().get());
  ASSERT_TRUE(again) << again.error();
  auto bob = again.value()->authenticate(t.value().token);
  ASSERT_TRUE(bob);
  EXPECT_EQ(bob->id, "bob");
  EXPECT_EQ(bob->source, "api");
  EXPECT_EQ(bob->issued_by, "root");

  // Revoked, it stops working, and stays revoked after a restart.
  ASSERT_TRUE(again.value()->revoke(root, bob->sha256, 2000));
  EXPECT_FALSE(again.value()->authenticate(t.value().token));
  auto third = TokenStore::open(configured(), ledger.value().get());
  ASSERT_TRUE(third);
  EXPECT_FALSE(third.value()->authenticate(t.value().token));
}

TEST(TokenStore, RefusesContradictionsAndConfiguredRevocations) {
  auto ledger = ledger::Ledger::open("memory:");
  ASSERT_TRUE(ledger);
  auto s = TokenStore::open(configured(), ledger.value().get());
  ASSERT_TRUE(s);
  const Principal root = *s.value()->authenticate("root-token");
  auto role = s.value()->issue(root, "alice", market::Role::provider, "", 1);
  ASSERT_FALSE(role);
  EXPECT_THAT(role.error(), HasSubstr("one principal, one role"));
  auto owner = s.value()->issue(root, "alice-phone", market::Role::device, "bob", 1);
  ASSERT_FALSE(owner);
  EXPECT_THAT(owner.error(), HasSubstr("already belongs to 'alice'"));
  EXPECT_FALSE(s.value()->issue(root, "tablet", market::Role::device, "", 1));
  EXPECT_FALSE(s.value()->issue(root, "carol", market::Role::recipient, "alice", 1));
  // A second token of the same principal and role is fine (rotation).
  EXPECT_TRUE(s.value()->issue(root, "alice", market::Role::recipient, "", 1));
  Status cfg = s.value()->revoke(root, token_hash("alice-token"), 1);
  ASSERT_FALSE(cfg);
  EXPECT_THAT(cfg.error(), HasSubstr("comes from the configuration"));
  EXPECT_FALSE(s.value()->revoke(root, std::string(64, '0'), 1));
  // Without a ledger nothing can be issued.
  auto bare = TokenStore::open(configured(), nullptr);
  EXPECT_FALSE(bare.value()->issue(root, "bob", market::Role::recipient, "", 1));
}

TEST(RateLimiter, AllowsOneSecondsWorthThenRefillsAtTheRate) {
  RateLimiter r(4);
  const int64_t s = 1'000'000'000;
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(r.take("a", 10 * s), 0u) << i;
  EXPECT_GE(r.take("a", 10 * s), 1u);
  // Another key has its own bucket.
  EXPECT_EQ(r.take("b", 10 * s), 0u);
  // A quarter second later one more request is allowed, and no second one.
  EXPECT_EQ(r.take("a", 10 * s + s / 4), 0u);
  EXPECT_GE(r.take("a", 10 * s + s / 4), 1u);
  // Idle for long, it saves up no more than one second's worth.
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(r.take("a", 100 * s), 0u) << i;
  EXPECT_GE(r.take("a", 100 * s), 1u);
}

}  // namespace
}  // namespace segx::api
