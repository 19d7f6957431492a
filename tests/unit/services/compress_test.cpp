// compress: each payload compresses on its own, what the service reports equals what zstd
// gives independently, every output decompresses to its input, and payloads that do not
// shrink count as sent uncompressed.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zstd.h>

#include <random>

#include "dataplane/eal_environment.hpp"
#include "service_harness.hpp"
#include "test_frames.hpp"

namespace segx::test {
namespace {

TEST(Compress, ReportsWhatZstdGivesAndRoundTrips) {
  std::mt19937 rng(7);
  std::string random(1200, '\0');
  for (char& c : random)
    c = static_cast<char>(rng());
  std::string text;
  while (text.size() < 1400)
    text += "segment " + std::to_string(text.size() % 7) + " of a compressible stream; ";
  const std::vector<std::string> payloads{text, random, text.substr(0, 300)};

  std::vector<rte_mbuf*> pkts;
  uint64_t in = 0, out = 0;
  int incompressible = 0;
  for (size_t i = 0; i < payloads.size(); ++i) {
    pkts.push_back(to_mbuf(EalEnvironment::pool(),
                           make_frame("10.0.0.1", "10.0.0.2", 17, payloads[i]).bytes,
                           i == 0 ? 500 : 0));
    // Independently: a zstd context of the test's own at the same level, and back.
    std::vector<char> c(ZSTD_compressBound(payloads[i].size()));
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 5);
    const size_t n =
        ZSTD_compress2(cctx, c.data(), c.size(), payloads[i].data(), payloads[i].size());
    ZSTD_freeCCtx(cctx);
    ASSERT_FALSE(ZSTD_isError(n));
    std::string back(payloads[i].size(), '\0');
    ASSERT_EQ(ZSTD_decompress(back.data(), back.size(), c.data(), n), payloads[i].size());
    EXPECT_EQ(back, payloads[i]);
    in += payloads[i].size();
    out += n < payloads[i].size() ? n : payloads[i].size();
    incompressible += n >= payloads[i].size();
  }
  auto s = make_service("compress", "{level: 5, verify: true}");
  ASSERT_TRUE(s);
  const auto r = run_segment(*s, pkts, {2, 1})["compress"];
  EXPECT_EQ(r["algorithm"], "zstd");
  EXPECT_EQ(r["packets"], 3);
  EXPECT_EQ(r["in_bytes"], in);
  // A context in static memory (the service's) may choose a different match finder than a
  // heap one for the same level, so sizes can differ by a few bytes per payload.
  EXPECT_NEAR(r["out_bytes"].get<double>(), static_cast<double>(out), 8.0 * payloads.size())
      << r.dump();
  EXPECT_EQ(r["incompressible"], incompressible);
  EXPECT_EQ(incompressible, 1) << "the random payload does not shrink";
  EXPECT_EQ(r["verify_failed"], 0) << "every output decompressed to its input";
  EXPECT_NEAR(r["ratio"].get<double>(), static_cast<double>(in) / r["out_bytes"].get<double>(),
              0.001);
  EXPECT_GT(r["ratio"].get<double>(), 1.5);
  for (rte_mbuf* m : pkts)
    rte_pktmbuf_free(m);
}

TEST(Compress, LeavesPacketsUnchanged) {
  const Frame f = make_frame("2001:db8::1", "2001:db8::2", 6, std::string(800, 'a'));
  rte_mbuf* m = to_mbuf(EalEnvironment::pool(), f.bytes);
  auto s = make_service("compress", "{}");
  ASSERT_TRUE(s);
  EXPECT_EQ(run_segment(*s, {m})["compress"]["packets"], 1);
  EXPECT_EQ(from_mbuf(m), f.bytes);
  rte_pktmbuf_free(m);
}

}  // namespace
}  // namespace segx::test
