// fingerprint: the digest of a segment's payloads equals one computed independently (OpenSSL's
// EVP interface over the concatenated payloads; the published CRC-32C check value), however
// the packets are split into runs and mbuf segments.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "dataplane/eal_environment.hpp"
#include "service_harness.hpp"
#include "test_frames.hpp"

namespace segx::test {
namespace {

std::string hex(const unsigned char* p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

std::string sha256(const std::string& data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), d, &len, EVP_sha256(), nullptr);
  return hex(d, len);
}

TEST(Fingerprint, Sha256OfPayloadsInOrderAcrossRunsAndMbufSegments) {
  const std::vector<std::string> payloads{"GET / HTTP/1.1\r\n", std::string(1000, 'x'), "", "tail"};
  std::vector<rte_mbuf*> pkts;
  std::string all;
  for (size_t i = 0; i < payloads.size(); ++i) {
    const Frame f = make_frame(i % 2 ? "2001:db8::1" : "10.0.0.1",
                               i % 2 ? "2001:db8::2" : "10.0.0.2", i % 2 ? 17 : 6, payloads[i]);
    // The second packet's payload spans two mbuf segments.
    pkts.push_back(to_mbuf(EalEnvironment::pool(), f.bytes, i == 1 ? 200 : 0));
    all += payloads[i];
  }
  auto s = make_service("fingerprint", "{}");
  ASSERT_TRUE(s);
  const auto r = run_segment(*s, pkts, {1, 2, 1})["fingerprint"];
  EXPECT_EQ(r["algorithm"], "sha256");
  EXPECT_EQ(r["packets"], 4);
  EXPECT_EQ(r["bytes"], all.size());
  EXPECT_EQ(r["digest"], sha256(all));

  // Whole frames: the digest of the frames' bytes.
  auto frames = make_service("fingerprint", "{over: frame}");
  std::string bytes;
  for (rte_mbuf* m : pkts) {
    const auto b = from_mbuf(m);
    bytes.append(b.begin(), b.end());
  }
  EXPECT_EQ(run_segment(*frames, pkts)["fingerprint"]["digest"], sha256(bytes));
  for (rte_mbuf* m : pkts)
    rte_pktmbuf_free(m);
}

TEST(Fingerprint, Crc32cMatchesTheCheckValueAndNeedsLittleState) {
  // CRC-32C of "123456789" is e3069283 (RFC 3720, appendix B.4), here split over two packets.
  std::vector<rte_mbuf*> pkts{
      to_mbuf(EalEnvironment::pool(), make_frame("10.0.0.1", "10.0.0.2", 17, "1234").bytes),
      to_mbuf(EalEnvironment::pool(), make_frame("10.0.0.1", "10.0.0.2", 17, "56789").bytes)};
  auto s = make_service("fingerprint", "{algorithm: crc32c}");
  ASSERT_TRUE(s);
  EXPECT_LE(s->state_size(), 16u) << "CRC-32C needs no SHA-256 context";
  const auto r = run_segment(*s, pkts)["fingerprint"];
  EXPECT_EQ(r["digest"], "e3069283");
  EXPECT_EQ(r["bytes"], 9);
  for (rte_mbuf* m : pkts)
    rte_pktmbuf_free(m);
}

TEST(Fingerprint, EmptySegmentHasTheDigestOfNothing) {
  auto s = make_service("fingerprint", "{}");
  EXPECT_EQ(run_segment(*s, {})["fingerprint"]["digest"], sha256(""));
}

}  // namespace
}  // namespace segx::test
