// The numbering an rx lcore does for one tx lcore's reorder buffer (SeqnSpace): rte_reorder's
// sequence numbers are 32 bits and wrap, but the guard that keeps numbering within the
// buffer's window compares counts that never wrap, so it still holds after 2^32 packets.
// No EAL: plain arithmetic.

#include <gtest/gtest.h>

#include <cstdint>

#include "dataplane/lcore_plan.hpp"

namespace segx::dataplane {
namespace {

constexpr uint64_t window = 1024;

TEST(SeqnSpace, TheWindowGuardHoldsAcrossTheWrapOfSequenceNumbers) {
  // 2^32 - 100 packets numbered and released before this test starts.
  SeqnSpace s;
  s.next = (uint64_t{1} << 32) - 100;
  uint64_t released = s.next - 1;
  uint32_t last = 0;
  // Fill the window: every number fits, and the numbers run on through 2^32 (mod 2^32).
  for (uint64_t i = 0; i < window; ++i) {
    ASSERT_TRUE(s.room(released, window)) << "numbered " << i << " of " << window;
    const uint32_t n = s.take();
    if (i > 0) {
      EXPECT_EQ(n, static_cast<uint32_t>(last + 1));
    }
    last = n;
  }
  EXPECT_LT(last, 1000u) << "the sequence numbers wrapped";
  // The window is full: nothing more until the tx lcore releases some.
  EXPECT_FALSE(s.room(released, window));
  released += 10;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(s.room(released, window));
    s.take();
  }
  EXPECT_FALSE(s.room(released, window));
}

TEST(SeqnSpace, NumbersStartAtOne) {
  SeqnSpace s;
  EXPECT_TRUE(s.room(0, 1));
  EXPECT_EQ(s.take(), 1u);
  EXPECT_FALSE(s.room(0, 1));
  EXPECT_TRUE(s.room(1, 1));
}

}  // namespace
}  // namespace segx::dataplane
