// compress with engine: compressdev, on DPDK's software PMDs (compress_zlib0: flat sources
// only, a private xform per op; compress_isal0: chained sources, shared xforms). What the
// device produces is raw DEFLATE that zlib's own inflate, run here, turns back into each
// payload; with the zlib PMD the sizes equal zlib's at the same level exactly; verification
// notices a corrupted output; every op and mbuf goes back to its pool; a device that does not
// exist, or one with no queue pair left, fails at start with a message naming it.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rte_compressdev.h>
#include <rte_mempool.h>
#include <zlib.h>

#include <random>

#include "compressdev.hpp"
#include "dataplane/eal_environment.hpp"
#include "service_harness.hpp"
#include "test_frames.hpp"

namespace segx::test {
namespace {

using services::CompressdevEngine;
using services::CompressTotals;
using ::testing::HasSubstr;

const bool vdevs_added = [] {
  EalEnvironment::extra_args().push_back("--vdev=compress_zlib0");
  EalEnvironment::extra_args().push_back("--vdev=compress_isal0");
  return true;
}();

/// zlib's raw DEFLATE of `in` at `level` with the zlib PMD's parameters (32 KiB window,
/// memLevel 8, default strategy), computed here independently of DPDK.
std::vector<uint8_t> zlib_deflate(const std::string& in, int level) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::vector<uint8_t> out(deflateBound(&z, in.size()));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

/// zlib's raw inflate; empty with ok = false when the input is not one whole DEFLATE stream.
std::string zlib_inflate(const uint8_t* in, size_t n, bool& ok) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, -15), Z_OK);
  std::string out(70000, '\0');
  z.next_in = const_cast<Bytef*>(in);
  z.avail_in = static_cast<uInt>(n);
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  ok = inflate(&z, Z_FINISH) == Z_STREAM_END && z.avail_in == 0;
  out.resize(ok ? z.total_out : 0);
  inflateEnd(&z);
  return out;
}

/// A frame's mbuf chain with segments of at most `seg` bytes (0: one segment).
rte_mbuf* to_chain(const std::vector<uint8_t>& bytes, size_t seg) {
  if (seg == 0 || bytes.size() <= seg) return to_mbuf(EalEnvironment::pool(), bytes);
  rte_mbuf* head = nullptr;
  for (size_t at = 0; at < bytes.size(); at += seg) {
    const size_t n = std::min(seg, bytes.size() - at);
    rte_mbuf* m = rte_pktmbuf_alloc(EalEnvironment::pool());
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(n)), bytes.data() + at, n);
    if (head == nullptr) {
      head = m;
    } else {
      EXPECT_EQ(rte_pktmbuf_chain(head, m), 0);
    }
  }
  return head;
}

struct Payload {
  std::string bytes;
  size_t segment = 0;  // mbuf segment size of its frame (0: one segment)
};

/// Compressible text, random bytes, a short text, a payload across a chain of mbufs, one
/// of the largest an IPv4 TCP packet carries (33 segments), a single byte.
std::vector<Payload> payloads() {
  std::mt19937 rng(11);
  std::string random(1200, '\0');
  for (char& c : random)
    c = static_cast<char>(rng());
  std::string text;
  while (text.size() < 1400)
    text += "segment " + std::to_string(text.size() % 7) + " of a compressible stream; ";
  std::string log;
  while (log.size() < 65495) {
    log += "2026-11-26T16:" + std::to_string(10 + log.size() % 50) + " worker " +
           std::to_string(rng() % 4) + " flow " + std::to_string(rng() % 100000) + " closed\n";
  }
  log.resize(65495);  // 65535 - 20 (IPv4) - 20 (TCP)
  return {{text}, {random}, {text.substr(0, 300)}, {text + text, 1000}, {log, 2000}, {"x"}};
}

std::vector<rte_mbuf*> packets_of(const std::vector<Payload>& ps) {
  std::vector<rte_mbuf*> pkts;
  for (const Payload& p : ps)
    pkts.push_back(to_chain(make_frame("10.0.0.1", "10.0.0.2", 6, p.bytes).bytes, p.segment));
  return pkts;
}

/// A configuration with the two vdevs, as `compress` entries naming them need.
config::Config with_vdevs() {
  config::Config c;
  c.eal.vdevs = {"compress_zlib0", "compress_isal0"};
  return c;
}

unsigned in_use(const std::string& pool) {
  rte_mempool* mp = rte_mempool_lookup(pool.c_str());
  return mp ? rte_mempool_in_use_count(mp) : 0;
}

class Compressdev : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(vdevs_added);
    ASSERT_GE(rte_compressdev_get_dev_id(GetParam().c_str()), 0) << "EAL made no " << GetParam();
    dev_ = static_cast<uint8_t>(rte_compressdev_get_dev_id(GetParam().c_str()));
    start_in_use_ = rte_mempool_in_use_count(EalEnvironment::pool());
  }
  void TearDown() override {
    for (rte_mbuf* m : pkts_)
      rte_pktmbuf_free(m);
    EXPECT_EQ(rte_mempool_in_use_count(EalEnvironment::pool()), start_in_use_)
        << "every packet mbuf back in its pool";
    EXPECT_EQ(rte_mempool_lookup(CompressdevEngine::op_pool_name(dev_, 0).c_str()), nullptr)
        << "the engine's pools are freed with it";
  }
  bool zlib_pmd() const { return GetParam() == "compress_zlib0"; }

  uint8_t dev_ = 0;
  unsigned start_in_use_ = 0;
  std::vector<rte_mbuf*> pkts_;
};

// Each output, taken as the device wrote it, inflates with zlib to exactly its payload.
TEST_P(Compressdev, OutputIsRawDeflateThatZlibInflatesToThePayload) {
  const auto ps = payloads();
  pkts_ = packets_of(ps);
  auto e = CompressdevEngine::open({GetParam(), 6, false, 1});
  ASSERT_TRUE(e.ok()) << e.error();
  struct Seen {
    std::vector<std::string> inflated, expected;
    std::vector<uint32_t> sizes;
  } seen;
  e.value()->set_tap(
      [](void* ctx, const rte_mbuf* pkt, services::Range r, rte_mbuf* out, uint32_t produced) {
        auto& s = *static_cast<Seen*>(ctx);
        ASSERT_LE(produced, rte_pktmbuf_data_len(out)) << "output in one flat buffer";
        bool ok = false;
        s.inflated.push_back(zlib_inflate(rte_pktmbuf_mtod(out, const uint8_t*), produced, ok));
        EXPECT_TRUE(ok) << "a whole raw DEFLATE stream";
        std::string payload(r.length, '\0');
        const void* p = rte_pktmbuf_read(pkt, r.offset, r.length, payload.data());
        if (p != payload.data()) std::memcpy(payload.data(), p, r.length);
        s.expected.push_back(payload);
        s.sizes.push_back(produced);
      },
      &seen);
  CompressTotals t{};
  e.value()->run(pkts_.data(), static_cast<uint16_t>(pkts_.size()), t);
  EXPECT_EQ(t.errors, 0u);
  EXPECT_EQ(t.packets, ps.size());
  ASSERT_EQ(seen.inflated.size(), 4u) << "text, short text, chained text and the 64 KB log";
  for (size_t i = 0; i < seen.inflated.size(); ++i)
    EXPECT_TRUE(seen.inflated[i] == seen.expected[i]) << "output " << i << " inflates back";
  if (zlib_pmd()) {
    // Same library, same parameters: the very same sizes.
    EXPECT_EQ(seen.sizes[0], zlib_deflate(ps[0].bytes, 6).size());
    EXPECT_EQ(seen.sizes[3], zlib_deflate(ps[4].bytes, 6).size());
  }
  EXPECT_EQ(in_use(CompressdevEngine::op_pool_name(dev_, 0)), 0u);
  EXPECT_EQ(in_use(CompressdevEngine::mbuf_pool_name(dev_, 0)), 0u);
}

// The service's record: what a zlib computation gives (exactly with the zlib PMD), each
// payload at most its own size, verified, packets unchanged, pools whole.
TEST_P(Compressdev, ServiceReportsWhatZlibGivesAndVerifies) {
  const auto ps = payloads();
  pkts_ = packets_of(ps);
  std::vector<std::vector<uint8_t>> before;
  for (rte_mbuf* m : pkts_)
    before.push_back(from_mbuf(m));
  uint64_t in = 0, out = 0;
  unsigned incompressible = 0;
  for (const Payload& p : ps) {
    const size_t n = zlib_deflate(p.bytes, 9).size();
    in += p.bytes.size();
    out += std::min(n, p.bytes.size());
    incompressible += n >= p.bytes.size();
  }
  auto s = make_service("compress",
                        "{engine: compressdev, device: " + GetParam() + ", level: 9, verify: true}",
                        with_vdevs());
  ASSERT_TRUE(s);
  const auto r = run_segment(*s, pkts_, {2, 1, 3})["compress"];
  EXPECT_EQ(r["algorithm"], "deflate");
  EXPECT_EQ(r["engine"], "compressdev");
  EXPECT_EQ(r["device"], GetParam());
  EXPECT_EQ(r["level"], 9);
  EXPECT_EQ(r["packets"], ps.size());
  EXPECT_EQ(r["in_bytes"], in);
  EXPECT_EQ(r["errors"], 0);
  EXPECT_EQ(r["verify_failed"], 0) << "every output decompressed on the device to its input";
  if (zlib_pmd()) {
    EXPECT_EQ(r["out_bytes"], out) << r.dump();
    EXPECT_EQ(r["incompressible"], incompressible);
  } else {
    // ISA-L's own encoder: not zlib's bytes, but the same kind of result.
    EXPECT_NEAR(r["out_bytes"].get<double>(), static_cast<double>(out), 0.25 * out) << r.dump();
    EXPECT_GE(r["incompressible"].get<unsigned>(), 2u) << "random bytes and one byte";
  }
  EXPECT_EQ(incompressible, 2u) << "the random payload and the single byte do not shrink";
  EXPECT_LE(r["out_bytes"].get<uint64_t>(), in);
  EXPECT_NEAR(r["ratio"].get<double>(), static_cast<double>(in) / r["out_bytes"].get<double>(),
              0.001);
  EXPECT_GT(r["ratio"].get<double>(), 3.0);
  for (size_t i = 0; i < pkts_.size(); ++i)
    EXPECT_EQ(from_mbuf(pkts_[i]), before[i]) << "packet " << i << " unchanged";
  EXPECT_EQ(in_use(CompressdevEngine::op_pool_name(dev_, 0)), 0u);
  EXPECT_EQ(in_use(CompressdevEngine::mbuf_pool_name(dev_, 0)), 0u);
}

// A corrupted output does not decompress to its input, and verification says so.
TEST_P(Compressdev, VerificationNoticesACorruptedOutput) {
  const auto ps = payloads();
  pkts_ = packets_of({ps[0], ps[3]});
  auto e = CompressdevEngine::open({GetParam(), 1, true, 1});
  ASSERT_TRUE(e.ok()) << e.error();
  CompressTotals clean{};
  e.value()->run(pkts_.data(), 2, clean);
  EXPECT_EQ(clean.verify_failed, 0u);
  int calls = 0;
  e.value()->set_tap(
      [](void* ctx, const rte_mbuf*, services::Range, rte_mbuf* out, uint32_t produced) {
        if (++*static_cast<int*>(ctx) == 2) rte_pktmbuf_mtod(out, uint8_t*)[produced / 2] ^= 0x5a;
      },
      &calls);
  CompressTotals t{};
  e.value()->run(pkts_.data(), 2, t);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(t.verify_failed, 1u) << "only the output that was changed";
  EXPECT_EQ(t.errors, 0u);
  EXPECT_EQ(in_use(CompressdevEngine::op_pool_name(dev_, 0)), 0u);
  EXPECT_EQ(in_use(CompressdevEngine::mbuf_pool_name(dev_, 0)), 0u);
}

// Engines share a device, each on its queue pair; one too many is refused by name; the last
// one to go closes the device, which opens again with another number of queue pairs.
TEST_P(Compressdev, OneQueuePairPerEngine) {
  const auto ps = payloads();
  pkts_ = packets_of({ps[0]});
  {
    auto a = CompressdevEngine::open({GetParam(), 6, true, 2});
    auto b = CompressdevEngine::open({GetParam(), 3, false, 2});
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a.value()->queue_pair(), 0);
    EXPECT_EQ(b.value()->queue_pair(), 1);
    auto c = CompressdevEngine::open({GetParam(), 6, false, 2});
    ASSERT_FALSE(c.ok());
    EXPECT_THAT(c.error(), HasSubstr("compressdev '" + GetParam() + "': all 2 queue pairs"));
    CompressTotals ta{}, tb{};
    a.value()->run(pkts_.data(), 1, ta);
    b.value()->run(pkts_.data(), 1, tb);
    EXPECT_EQ(ta.packets, 1u);
    EXPECT_EQ(tb.packets, 1u);
    EXPECT_LT(ta.out_bytes, ps[0].bytes.size());
    EXPECT_LT(tb.out_bytes, ps[0].bytes.size());
    EXPECT_EQ(ta.verify_failed + ta.errors + tb.errors, 0u);
  }
  auto again = CompressdevEngine::open({GetParam(), 6, false, 1});
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(again.value()->queue_pair(), 0);
}

INSTANTIATE_TEST_SUITE_P(SoftwarePmds, Compressdev,
                         ::testing::Values("compress_zlib0", "compress_isal0"),
                         [](const auto& info) { return info.param.substr(9, 4); });

TEST(CompressdevStart, AMissingDeviceIsNamedWithTheOnesThereAre) {
  auto e = CompressdevEngine::open({"compress_zlib7", 6, false, 1});
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.error(), HasSubstr("no compressdev named 'compress_zlib7' (compressdevs: "
                                   "compress_zlib0, compress_isal0)"));
  // A hardware device's name passes the load checks when a PCI device is allowed; at start
  // the service finds no such compressdev.
  config::Config c;
  c.eal.pci_allow = {"0000:3d:00.0"};
  services::register_services();
  auto s =
      dataplane::ServiceRegistry::instance()
          .find("compress")
          ->create(
              config::ServiceConfig{
                  "compress", YAML::Load("{engine: compressdev, device: 0000:3d:00.0_qat_comp}"),
                  "profiles[0].services[2]"},
              c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error(), HasSubstr("compress: no compressdev named '0000:3d:00.0_qat_comp'"));
}

}  // namespace
}  // namespace segx::test
