// The market's events as the journal stores them: every type reads back as written, and a
// payment token never enters the hash-chained journal (issue 14, problem 7).
#include "market/events.hpp"

#include <openssl/hmac.h>
#include <sys/stat.h>

#include <fstream>

#include "market_fixture.hpp"

namespace segx::market {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

TEST(Events, EveryTypeReadsBackAsWritten) {
  Bid b;
  b.id = 7;
  b.lot = 3;
  b.bidder = "al\"ice";
  b.device = "phone";
  b.price = 900;
  b.quantity = 2;
  b.members = {ip("10.1.1.5/32"), member("phone:+4930123456")};
  b.token_fp = "00ff";
  LotSpec spec;
  spec.profile = "web";
  spec.min_recipient_wilson = 0.25;
  Usage u;
  u.active_ns = 5;
  u.bytes[1] = 9;
  u.member_bytes["ip 10.1.1.5/32"] = {1, 2, 3};
  Rating r;
  r.id = 11;
  r.lease = 2;
  r.by = "alice";
  r.of = "acme";
  r.positive = true;
  r.score = 4;
  r.comment = "ok";
  r.time_ns = 77;
  const std::vector<MarketEvent> events = {
      MarketCreated{"0123456789abcdef"},
      LotCreated{3, "acme", spec, "EUR"},
      LotCancelled{3, "acme"},
      BidPlaced{b, 1234, {}},
      GroupCreated{8, 3, "bob", 500, 1, {{"bob", {ip("10.1.2.0/24")}}}, 0},
      Pledged{8, "bob", 300, "aa", 99, {}},
      PledgeWithdrawn{8, "bob"},
      LotClosed{3, Outcome::awarded, 600, {{1, 7, 2, 600, {{"al\"ice", 1200}}}}, {{9, "overlap"}}},
      Activated{1, "edge", false, true, "no metered profile"},
      LeaseFailed{1, "refused", 3},
      UsageRecorded{1, "edge", true, false, u},
      ChargeSettled{1, 12, 1, "alice", 1200, "EUR", ChargeResult::declined, "ref", "no", 2, "k"},
      RefundSettled{1, ChargeResult::accepted, "re", "", 1},
      RatingGiven{r, Evidence{1, 2, 3, 4, 5, 6}},
      RatingNoted{11, "acme", "note"},
  };
  ASSERT_EQ(events.size(), market_event_types().size());
  for (const MarketEvent& e : events) {
    const ledger::Event le = encode(e, 77);
    EXPECT_EQ(le.type, event_type(e));
    auto back = decode(le.type, le.body, 77);
    ASSERT_TRUE(back) << le.type << ": " << back.error();
    EXPECT_EQ(encode(back.value(), 77).body, le.body) << le.type;
    // Canonical: keys sorted, as json::dump writes them.
    EXPECT_EQ(json::parse(le.body).dump(), le.body) << le.type;
  }
}

// Groups made since members join by pledging say so in their event; one journalled before
// reads as it was then (every member takes part), so a replay decides as the market did.
TEST(Events, AGroupsConsentRuleIsJournalled) {
  GroupCreated g{8, 3, "bob", 500, 1, {{"carol", {ip("10.1.3.0/24")}}}, 0, true};
  const ledger::Event le = encode(g, 77);
  EXPECT_NE(le.body.find(R"("consent":true)"), std::string::npos) << le.body;
  EXPECT_TRUE(std::get<GroupCreated>(decode(le.type, le.body, 77).value()).consent);
  const std::string before =
      R"({"id":8,"lot":3,"members":[{"members":["ip:10.1.3.0/24"],"principal":"carol"}],)"
      R"("organizer":"bob","price":500,"quantity":1})";
  EXPECT_FALSE(std::get<GroupCreated>(decode("group_created", before, 77).value()).consent);
}

TEST(Events, AmountsAndNumbersOutOfRangeAreRefused) {
  EXPECT_FALSE(decode("pledge", R"({"amount":4611686018427387904,"group":1,"principal":"a"})", 0));
  EXPECT_FALSE(decode("pledge", R"({"amount":-1,"group":1,"principal":"a"})", 0));
  EXPECT_FALSE(decode("lot_cancelled", R"({"by":"a","lot":1.8e25})", 0));
  EXPECT_FALSE(decode(
      "bid", R"({"bidder":"a","id":1,"lot":1,"members":["fax:1"],"price":1,"quantity":1})", 0));
  EXPECT_FALSE(decode("surprise", "{}", 0));
}

TEST_F(MarketTest, PaymentTokensNeverEnterTheJournal) {
  const uint64_t lot = make_lot(lot_spec(Format::uniform, 2));
  ASSERT_TRUE(bid(alice, lot, 900, "tok_visa"));
  GroupSpec g;
  g.lot = lot;
  g.price = 800;
  g.members = {{"bob", {own_ip(bob)}}, {"carol", {own_ip(carol)}}};
  const uint64_t group = market_->create_group(bob, g).value().id;
  ASSERT_TRUE(market_->pledge(carol, group, 800, "tok_mastercard"));
  ASSERT_TRUE(bid(dave, lot, 100, "tok_accept"));
  // Kept beside the journal while a charge may need them, under names, not in events.
  const uint64_t alice_bid = market_->bids(alice, lot).value().at(0).bid.id;
  EXPECT_EQ(ledger_->secret(bid_token_name(alice_bid)).value(),
            std::optional<std::string>("tok_visa"));
  EXPECT_EQ(ledger_->secret(pledge_token_name(group, "carol")).value(),
            std::optional<std::string>("tok_mastercard"));
  at(t0 + 601 * s);
  ASSERT_EQ(gateway_.accepted_charges(), 2u);
  // Final charges erased their tokens; dave lost, so his is gone too.
  EXPECT_FALSE(ledger_->secret(bid_token_name(alice_bid)).value());
  EXPECT_FALSE(ledger_->secret(pledge_token_name(group, "carol")).value());
  const uint64_t dave_bid = market_->bids(dave, lot).value().at(0).bid.id;
  EXPECT_FALSE(ledger_->secret(bid_token_name(dave_bid)).value());
  // The journal holds a keyed fingerprint (HMAC-SHA256 with a key kept outside the chain,
  // first 128 bits), never the token; the chain verifies.
  const std::string key = ledger_->secret("market/fingerprint-key").value().value();
  unsigned char mac[32];
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>("tok_visa"), 8, mac, &len);
  std::string expected;
  for (int i = 0; i < 16; ++i) {
    char hex[3];
    std::snprintf(hex, sizeof hex, "%02x", mac[i]);
    expected += hex;
  }
  bool fingerprinted = false;
  ASSERT_TRUE(ledger_->scan(1, [&](const ledger::Event& e) {
    EXPECT_EQ(e.body.find("tok_"), std::string::npos) << e.type << ": " << e.body;
    if (e.type == "bid" && json::parse(e.body)["bidder"] == "alice") {
      EXPECT_EQ(json::parse(e.body)["token_fp"], expected);
      fingerprinted = true;
    }
    return true;
  }));
  EXPECT_TRUE(fingerprinted);
  EXPECT_TRUE(ledger_->verify().ok);
  if (!journal_.postgres()) {
    // Not even in the files: erased rows are overwritten (secure_delete) and the WAL that
    // wrote them is truncated.
    for (const char* suffix : {"", "-wal"}) {
      std::ifstream in(journal_.file() + suffix, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), {});
      EXPECT_EQ(bytes.find("tok_visa"), std::string::npos) << suffix;
    }
  }
}

TEST_F(MarketTest, TheLedgerFilesAreTheOwnersOnly) {
  if (journal_.postgres()) GTEST_SKIP() << "files: SQLite only";
  const uint64_t lot = make_lot(lot_spec());
  ASSERT_TRUE(bid(alice, lot, 900));
  for (const char* suffix : {"", "-wal", "-shm"}) {
    struct stat st {};
    ASSERT_EQ(stat((journal_.file() + suffix).c_str(), &st), 0) << suffix;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << suffix;
  }
}

// Journals written before tokens left the chain still replay, and their pending charges
// are still made with the token they carry.
TEST_F(MarketTest, AJournalWithTokensInItsEventsStillSettles) {
  market_.reset();
  ledger_.reset();
  test::TempDir d;
  auto l = ledger::Ledger::open("sqlite:" + (d / "old.db").string());
  ASSERT_TRUE(l);
  ledger::Ledger& old = *l.value();
  LotSpec spec = lot_spec();
  json lot = {{"id", 1},
              {"provider", "acme"},
              {"currency", "EUR"},
              {"profile", "web"},
              {"start_ns", spec.start_ns},
              {"duration_ns", spec.duration_ns},
              {"min_rate", 0},
              {"max_rate", 0},
              {"max_members", 4},
              {"quantity", 1},
              {"reserve", 100},
              {"max_price", 0},
              {"format", "second_price"},
              {"closes_ns", spec.closes_ns},
              {"soft_close_ns", 0},
              {"max_extension_ns", 0},
              {"increment", 1},
              {"min_recipient_wilson", 0.0},
              {"min_recipient_ratings", 0}};
  ASSERT_TRUE(old.append_durable("lot_created", lot.dump(), t0));
  ASSERT_TRUE(old.append_durable("bid",
                                 json{{"bidder", "alice"},
                                      {"id", 2},
                                      {"lot", 1},
                                      {"members", {"ip:10.1.1.5/32"}},
                                      {"payment_token", "tok_visa"},
                                      {"price", 900},
                                      {"quantity", 1}}
                                     .dump(),
                                 t0));
  TestGateway g;
  auto m = Market::open(test_options(), old, g, clock_);
  ASSERT_TRUE(m) << m.error();
  clock_.now = t0 + 601 * s;
  m.value()->tick(nullptr);
  m.value()->settle();
  const Lease lease = m.value()->leases(admin).at(0);
  const Charge c = m.value()->charges(admin, lease.id).at(0);
  EXPECT_EQ(c.result, ChargeResult::accepted);
  EXPECT_EQ(c.idempotency_key.rfind("segx-", 0), 0u);
}

}  // namespace
}  // namespace segx::market
