// anonymize: Crypto-PAn gives the reference implementation's outputs, preserves prefixes
// exactly, is deterministic per key, and the service leaves every checksum valid.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <random>

#include "cryptopan.hpp"
#include "dataplane/eal_environment.hpp"
#include "service_harness.hpp"
#include "test_frames.hpp"

namespace segx::test {
namespace {

// The sample key of the Crypto-PAn reference distribution.
const std::array<uint8_t, 32> reference_key{21,  34, 23,  141, 51, 164, 207, 128, 19,  10,  91,
                                            22,  73, 144, 125, 16, 216, 152, 143, 131, 121, 121,
                                            101, 39, 98,  87,  76, 45,  42,  132, 34,  2};
const std::string reference_hex =
    "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202";

std::unique_ptr<services::CryptoPan> pan(const std::array<uint8_t, 32>& key) {
  auto p = services::CryptoPan::create(std::span<const uint8_t, 32>(key));
  EXPECT_TRUE(p.ok());
  return std::move(p).value();
}

std::string anon(services::CryptoPan& p, const std::string& text) {
  uint8_t in[16] = {}, out[16] = {};
  char buf[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, text.c_str(), in) == 1) {
    p.anonymize4(in, out);
    return inet_ntop(AF_INET, out, buf, sizeof buf);
  }
  inet_pton(AF_INET6, text.c_str(), in);
  p.anonymize6(in, out);
  return inet_ntop(AF_INET6, out, buf, sizeof buf);
}

TEST(CryptoPan, MatchesTheReferenceSampleTrace) {
  auto p = pan(reference_key);
  // From the reference distribution's sample_trace_raw / sample_trace_sanitized.
  EXPECT_EQ(anon(*p, "128.11.68.132"), "135.242.180.132");
  EXPECT_EQ(anon(*p, "129.118.74.4"), "134.136.186.123");
  EXPECT_EQ(anon(*p, "130.132.252.244"), "133.68.164.234");
  EXPECT_EQ(anon(*p, "141.223.7.43"), "141.167.8.160");
  EXPECT_EQ(anon(*p, "192.102.249.13"), "252.138.62.131");
  EXPECT_EQ(anon(*p, "64.39.15.238"), "0.219.7.41");
  // IPv6 has no reference trace; the next test checks its prefixes and determinism. (One
  // published set of IPv6 vectors has every 16-bit group byte-swapped relative to network
  // order, which is not prefix-preserving on the wire; segx does not follow it.)
}

int common_prefix(const uint8_t* a, const uint8_t* b, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    if (a[i] != b[i]) return i * 8 + std::countl_zero(static_cast<uint8_t>(a[i] ^ b[i]));
  }
  return bytes * 8;
}

TEST(CryptoPan, PreservesPrefixesExactlyAndIsDeterministicPerKey) {
  std::mt19937 rng(3);
  std::array<uint8_t, 32> other = reference_key;
  other[0] ^= 1;
  auto p = pan(reference_key), again = pan(reference_key), q = pan(other);
  int differ = 0;
  for (int family : {4, 6}) {
    const int bytes = family == 4 ? 4 : 16;
    for (int i = 0; i < 500; ++i) {
      uint8_t a[16], b[16], aa[16], bb[16], a2[16], qa[16];
      for (int k = 0; k < bytes; ++k)
        a[k] = b[k] = static_cast<uint8_t>(rng());
      // b shares a random number of leading bits with a.
      const int keep = static_cast<int>(rng() % (bytes * 8));
      b[keep / 8] ^= static_cast<uint8_t>(0x80 >> (keep % 8));
      for (int k = keep / 8 + 1; k < bytes; ++k)
        b[k] = static_cast<uint8_t>(rng());
      const auto run = [&](services::CryptoPan& x, const uint8_t* in, uint8_t* out) {
        family == 4 ? x.anonymize4(in, out) : x.anonymize6(in, out);
      };
      run(*p, a, aa);
      run(*p, b, bb);
      run(*again, a, a2);
      run(*q, a, qa);
      ASSERT_EQ(common_prefix(aa, bb, bytes), common_prefix(a, b, bytes));
      ASSERT_EQ(std::memcmp(aa, a2, bytes), 0) << "same key, same result";
      differ += std::memcmp(aa, qa, bytes) != 0;
    }
  }
  EXPECT_GT(differ, 990) << "another key, another mapping";
}

TEST(Anonymize, RewritesAddressesAndKeepsEveryChecksumValid) {
  auto s = make_service("anonymize", "{key: \"" + reference_hex + "\"}");
  ASSERT_TRUE(s);
  auto p = pan(reference_key);
  struct Case {
    std::string src, dst;
    uint8_t proto;
    bool udp_zero;
  };
  for (const Case& c : std::vector<Case>{{"128.11.68.132", "129.118.74.4", 6, false},
                                         {"128.11.68.132", "129.118.74.4", 17, false},
                                         {"10.0.0.1", "10.0.0.2", 17, true},
                                         {"2001:db8::1", "2001:db8::2", 6, false},
                                         {"2001:db8::1", "2001:db8::2", 17, false},
                                         {"2001:db8::1", "2001:db8::2", 58, false}}) {
    const Frame f = make_frame(c.src, c.dst, c.proto, "some payload bytes", c.udp_zero);
    ASSERT_TRUE(checksums_valid(f));
    std::vector<rte_mbuf*> pkts{to_mbuf(EalEnvironment::pool(), f.bytes),
                                to_mbuf(EalEnvironment::pool(), f.bytes)};
    const auto r = run_segment(*s, pkts, {1, 1})["anonymize"];
    EXPECT_EQ(r["rewritten"], 2);
    EXPECT_EQ(r["src"], anon(*p, c.src));
    EXPECT_EQ(r["dst"], anon(*p, c.dst));
    for (rte_mbuf* m : pkts) {
      Frame out = f;
      out.bytes = from_mbuf(m);
      EXPECT_TRUE(checksums_valid(out)) << c.src << " proto " << int(c.proto);
      const size_t at = f.family == 4 ? f.l3 + 12 : f.l3 + 8;
      char buf[INET6_ADDRSTRLEN];
      EXPECT_EQ(
          inet_ntop(f.family == 4 ? AF_INET : AF_INET6, out.bytes.data() + at, buf, sizeof buf),
          anon(*p, c.src));
      const auto tail = [](const std::vector<uint8_t>& b) {
        return std::vector<uint8_t>(b.end() - 18, b.end());
      };
      EXPECT_EQ(tail(out.bytes), tail(f.bytes)) << "the payload does not change";
      EXPECT_EQ(out.bytes.size(), f.bytes.size());
      if (c.udp_zero) {
        EXPECT_EQ(out.bytes[f.l4 + 6] | out.bytes[f.l4 + 7], 0) << "still no checksum";
      }
      rte_pktmbuf_free(m);
    }
  }
}

TEST(Anonymize, SourceOnly) {
  auto s = make_service("anonymize", "{key: \"" + reference_hex + "\", addresses: source}");
  ASSERT_TRUE(s);
  const Frame f = make_frame("128.11.68.132", "129.118.74.4", 6, "x");
  rte_mbuf* m = to_mbuf(EalEnvironment::pool(), f.bytes);
  const auto r = run_segment(*s, {m})["anonymize"];
  EXPECT_EQ(r["src"], "135.242.180.132");
  EXPECT_EQ(r["dst"], "129.118.74.4");
  Frame out = f;
  out.bytes = from_mbuf(m);
  EXPECT_TRUE(checksums_valid(out));
  rte_pktmbuf_free(m);
}

}  // namespace
}  // namespace segx::test
