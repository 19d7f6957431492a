// rte_reorder as the tx lcores use it: started at sequence 0 with a placeholder so that
// packets numbered from 1 come out in order whatever order they are inserted in, even when
// the first one inserted is not the lowest.

#include <gtest/gtest.h>
#include <rte_reorder.h>

#include <algorithm>
#include <random>

#include "eal_environment.hpp"

namespace segx::test {
namespace {

rte_reorder_buffer* started_buffer(const char* name, unsigned size) {
  rte_reorder_buffer* b = rte_reorder_create(name, 0, size);
  rte_mbuf* first = rte_pktmbuf_alloc(EalEnvironment::pool());
  *rte_reorder_seqn(first) = 0;
  EXPECT_EQ(rte_reorder_insert(b, first), 0);
  rte_mbuf* out = nullptr;
  EXPECT_EQ(rte_reorder_drain(b, &out, 1), 1u);
  EXPECT_EQ(out, first);
  rte_pktmbuf_free(out);
  return b;
}

TEST(Reorder, OutOfOrderCompletionComesOutInOrder) {
  rte_reorder_buffer* b = started_buffer("ro_a", 1024);
  const uint32_t n = 1000;
  std::vector<rte_mbuf*> pkts(n);
  for (uint32_t i = 0; i < n; ++i) {
    pkts[i] = rte_pktmbuf_alloc(EalEnvironment::pool());
    ASSERT_NE(pkts[i], nullptr);
    *rte_reorder_seqn(pkts[i]) = i + 1;
  }
  // Two workers finishing at their own pace: interleave two halves, each in order.
  std::vector<rte_mbuf*> order;
  std::mt19937 rng(7);
  size_t a = 0, c = 0;
  std::vector<rte_mbuf*> odd, even;
  for (uint32_t i = 0; i < n; ++i)
    (i % 2 ? odd : even).push_back(pkts[i]);
  while (a < odd.size() || c < even.size()) {
    if (c == even.size() || (a < odd.size() && rng() % 2))
      order.push_back(odd[a++]);
    else
      order.push_back(even[c++]);
  }
  ASSERT_NE(order.front(), pkts[0]) << "the test needs a first insert that is not the lowest";
  std::vector<rte_mbuf*> out;
  rte_mbuf* drained[64];
  for (rte_mbuf* m : order) {
    ASSERT_EQ(rte_reorder_insert(b, m), 0);
    unsigned k;
    while ((k = rte_reorder_drain(b, drained, 64)) > 0)
      out.insert(out.end(), drained, drained + k);
  }
  ASSERT_EQ(out.size(), n);
  for (uint32_t i = 0; i < n; ++i)
    EXPECT_EQ(*rte_reorder_seqn(out[i]), i + 1);
  for (rte_mbuf* m : out)
    rte_pktmbuf_free(m);
  rte_reorder_free(b);
}

TEST(Reorder, NothingComesOutPastAGap) {
  rte_reorder_buffer* b = started_buffer("ro_b", 64);
  rte_mbuf* p2 = rte_pktmbuf_alloc(EalEnvironment::pool());
  rte_mbuf* p1 = rte_pktmbuf_alloc(EalEnvironment::pool());
  *rte_reorder_seqn(p2) = 2;
  *rte_reorder_seqn(p1) = 1;
  ASSERT_EQ(rte_reorder_insert(b, p2), 0);
  rte_mbuf* out[4];
  EXPECT_EQ(rte_reorder_drain(b, out, 4), 0u) << "1 is missing";
  ASSERT_EQ(rte_reorder_insert(b, p1), 0);
  ASSERT_EQ(rte_reorder_drain(b, out, 4), 2u);
  EXPECT_EQ(out[0], p1);
  EXPECT_EQ(out[1], p2);
  rte_pktmbuf_free(p1);
  rte_pktmbuf_free(p2);
  rte_reorder_free(b);
}

TEST(Reorder, NumbersKeepTheirOrderAcrossTheWrapAt2To32) {
  // An rx lcore counts what it numbered in 64 bits and writes the low 32 bits as the
  // sequence number: after 2^32 packets the numbers wrap, and the buffer must go on.
  rte_reorder_buffer* b = rte_reorder_create("ro_wrap", 0, 64);
  const uint32_t start = 0xfffffff0u;
  rte_mbuf* first = rte_pktmbuf_alloc(EalEnvironment::pool());
  *rte_reorder_seqn(first) = start;
  ASSERT_EQ(rte_reorder_insert(b, first), 0);
  rte_mbuf* out[64];
  ASSERT_EQ(rte_reorder_drain(b, out, 64), 1u);
  rte_pktmbuf_free(out[0]);
  // 40 numbers after `start`, 16 below the wrap and 24 past it, inserted in reverse.
  std::vector<rte_mbuf*> pkts(40);
  for (uint32_t i = 0; i < 40; ++i) {
    pkts[i] = rte_pktmbuf_alloc(EalEnvironment::pool());
    ASSERT_NE(pkts[i], nullptr);
    *rte_reorder_seqn(pkts[i]) = start + 1 + i;  // wraps past 0xffffffff
  }
  for (uint32_t i = 40; i-- > 1;)
    ASSERT_EQ(rte_reorder_insert(b, pkts[i]), 0) << i;
  EXPECT_EQ(rte_reorder_drain(b, out, 64), 0u) << "the first is missing";
  ASSERT_EQ(rte_reorder_insert(b, pkts[0]), 0);
  ASSERT_EQ(rte_reorder_drain(b, out, 64), 40u);
  for (uint32_t i = 0; i < 40; ++i)
    EXPECT_EQ(out[i], pkts[i]) << i;
  for (uint32_t i = 0; i < 40; ++i)
    rte_pktmbuf_free(out[i]);
  rte_reorder_free(b);
}

}  // namespace
}  // namespace segx::test
