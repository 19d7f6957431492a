// A block's per-second delivery series: points are the differences of the data plane's
// cumulative counters, compliance counts whole seconds against the promised rates, rings stay
// bounded, and ended series are released after keep_ended.

#include "market/series.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

namespace segx::market {
namespace {

constexpr int64_t s_ns = 1'000'000'000;
constexpr int64_t t0 = 1'790'000'000LL * s_ns;  // a wall-clock second

// Counters that grow by `bytes_per_s` a second of 1000-byte packets, split as the meter would
// split them against min and max (bits per second).
struct Feed {
  BlockSample s;
  void second(uint64_t offered_bps, uint64_t dropped_bps = 0) {
    const uint64_t offered = offered_bps / 8;
    const uint64_t min = s.min_rate / 8, max = s.max_rate ? s.max_rate / 8 : UINT64_MAX;
    const uint64_t green = std::min(offered, min);
    const uint64_t yellow = std::min(offered, max) - green;
    const uint64_t red = offered - green - yellow;
    const uint64_t add[3] = {green, yellow, red};
    for (int c = 0; c < 3; ++c) {
      s.bytes[c] += add[c];
      s.packets[c] += add[c] / 1000;
    }
    s.dropped_bytes += dropped_bps / 8;
    s.dropped_packets += dropped_bps / 8 / 1000;
  }
};

Feed block(const std::string& id, uint64_t min, uint64_t max, uint64_t serial = 1) {
  Feed f;
  f.s.id = id;
  f.s.serial = serial;
  f.s.min_rate = min;
  f.s.max_rate = max;
  f.s.members = {{"ip 10.0.0.1/32", {0, 0, 0}}};
  return f;
}

TEST(BlockSeries, PointsAreTheSecondsDifferencesAndRatesFollowThem) {
  BlockSeries series;
  Feed f = block("lease-1", 400'000, 1'200'000);
  for (int i = 1; i <= 12; ++i) {
    f.second(800'000);
    f.s.members[0].second[0] = f.s.bytes[0];
    f.s.members[0].second[1] = f.s.bytes[1];
    series.sample(f.s, t0, t0 + i * s_ns);
  }
  auto v = series.view("lease-1", 0);
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->active);
  ASSERT_EQ(v->points.size(), 12u);
  EXPECT_EQ(v->first, 0u);
  EXPECT_EQ(v->next, 12u);
  for (size_t i = 0; i < v->points.size(); ++i) {
    const SeriesPoint& p = v->points[i];
    EXPECT_EQ(p.seq, i);
    EXPECT_EQ(p.dt_ms, 1000u);
    EXPECT_EQ(p.t_ms, (t0 + static_cast<int64_t>(i + 1) * s_ns) / 1'000'000);
    EXPECT_EQ(p.bytes[0], 50'000u);  // 400 kbit/s green
    EXPECT_EQ(p.bytes[1], 50'000u);  // the rest, up to 1.2 Mbit/s, yellow
    EXPECT_EQ(p.bytes[2], 0u);
    EXPECT_DOUBLE_EQ(p.delivered_bps(), 800'000.0);
  }
  EXPECT_DOUBLE_EQ(v->delivered_bps_1s, 800'000.0);
  EXPECT_DOUBLE_EQ(v->delivered_bps_10s, 800'000.0);
  EXPECT_EQ(v->total_bytes[0], 12u * 50'000);
  ASSERT_EQ(v->members.size(), 1u);
  EXPECT_DOUBLE_EQ(v->members[0].delivered_bps_1s, 800'000.0);
  EXPECT_DOUBLE_EQ(v->members[0].delivered_bps_10s, 800'000.0);

  // ?since= and a page size.
  auto page = series.view("lease-1", 5, 3);
  ASSERT_EQ(page->points.size(), 3u);
  EXPECT_EQ(page->points.front().seq, 5u);
  EXPECT_EQ(page->points.back().seq, 7u);
  EXPECT_TRUE(series.view("lease-1", 12)->points.empty());
  EXPECT_FALSE(series.view("lease-2", 0));
}

TEST(BlockSeries, ComplianceCountsOwedShortAndCappedSeconds) {
  BlockSeries series;
  Feed f = block("lease-1", 400'000, 1'200'000);
  int64_t t = t0;
  const auto second = [&](uint64_t offered, uint64_t dropped = 0) {
    f.second(offered, dropped);
    t += s_ns;
    series.sample(f.s, t0, t);
  };
  for (int i = 0; i < 3; ++i)
    second(200'000);  // below the minimum: nothing owed
  for (int i = 0; i < 4; ++i)
    second(800'000);  // between: owed and delivered
  for (int i = 0; i < 2; ++i)
    second(2'000'000);  // above the maximum: red, still delivered
  for (int i = 0; i < 2; ++i)
    second(800'000, 500'000);  // owed, but 500k dropped: short
  const Compliance c = series.view("lease-1", 0)->compliance;
  EXPECT_EQ(c.seconds, 11u);
  EXPECT_EQ(c.owed_seconds, 8u);
  EXPECT_EQ(c.shortfall_seconds, 2u);
  EXPECT_EQ(c.at_max_seconds, 2u);
  EXPECT_DOUBLE_EQ(c.ratio(), 6.0 / 8.0);

  // The end: a last (short) point, judged only when it covers half a second.
  f.second(800'000);
  const Compliance end = series.end(f.s, t + s_ns / 4);
  EXPECT_EQ(end.seconds, 11u);
  auto v = series.view("lease-1", 0);
  EXPECT_FALSE(v->active);
  EXPECT_EQ(v->points.size(), 12u);
  EXPECT_EQ(v->points.back().dt_ms, 250u);
  // Nothing more is taken once ended.
  series.sample(f.s, t0, t + 2 * s_ns);
  EXPECT_EQ(series.view("lease-1", 0)->points.size(), 12u);
}

TEST(BlockSeries, WithoutAMinimumNothingIsOwed) {
  BlockSeries series;
  Feed f = block("cfg", 0, 1'000'000);
  for (int i = 1; i <= 5; ++i) {
    f.second(3'000'000);
    series.sample(f.s, t0, t0 + i * s_ns);
  }
  const Compliance c = series.view("cfg", 0)->compliance;
  EXPECT_EQ(c.owed_seconds, 0u);
  EXPECT_EQ(c.at_max_seconds, 5u);
  EXPECT_DOUBLE_EQ(c.ratio(), 1.0);
}

TEST(BlockSeries, TheRingKeepsTheNewestPointsAndANewActivationStartsAfresh) {
  BlockSeries series({.max_points = 10, .keep_ended_ns = 60 * s_ns});
  Feed f = block("lease-1", 0, 0);
  for (int i = 1; i <= 25; ++i) {
    f.second(8'000 * static_cast<uint64_t>(i));  // point i carries i kB
    series.sample(f.s, t0, t0 + i * s_ns);
  }
  auto v = series.view("lease-1", 0);
  EXPECT_EQ(v->first, 15u);
  EXPECT_EQ(v->next, 25u);
  ASSERT_EQ(v->points.size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(v->points[i].seq, 15 + i);
    EXPECT_EQ(v->points[i].bytes[1], 1000u * (16 + i));  // no minimum: yellow
    EXPECT_EQ(v->points[i].dt_ms, 1000u);                // the oldest kept still knows its interval
  }
  EXPECT_LE(series.memory_bytes(), 10 * BlockSeries::point_bytes);

  // The same id activated again (a new serial): counters restart from zero.
  Feed again = block("lease-1", 0, 0, 2);
  again.second(80'000);
  series.sample(again.s, t0 + 30 * s_ns, t0 + 31 * s_ns);
  v = series.view("lease-1", 0);
  EXPECT_EQ(v->first, 0u);
  ASSERT_EQ(v->points.size(), 1u);
  EXPECT_EQ(v->points[0].bytes[1], 10'000u);
}

TEST(BlockSeries, EndedSeriesAreReleasedAfterKeepEnded) {
  BlockSeries series({.max_points = 100, .keep_ended_ns = 60 * s_ns});
  Feed a = block("a", 0, 0), b = block("b", 0, 0);
  for (int i = 1; i <= 3; ++i) {
    a.second(1000);
    b.second(1000);
    series.sample(a.s, t0, t0 + i * s_ns);
    series.sample(b.s, t0, t0 + i * s_ns);
  }
  series.end(a.s, t0 + 4 * s_ns);
  series.end_missing({"a"}, t0 + 4 * s_ns);  // b is no longer active in the data plane
  EXPECT_FALSE(series.view("b", 0)->active);
  EXPECT_TRUE(series.active().empty());
  EXPECT_EQ(series.expire(t0 + 63 * s_ns), 0u);
  EXPECT_EQ(series.size(), 2u);
  EXPECT_EQ(series.expire(t0 + 64 * s_ns), 2u);
  EXPECT_EQ(series.size(), 0u);
  EXPECT_EQ(series.memory_bytes(), 0u);
}

// ASan's allocator keeps freed memory and shadows the rest: resident memory says nothing
// there. g++ says so with __SANITIZE_ADDRESS__, clang (build-asan/) with __has_feature.
#if defined(__SANITIZE_ADDRESS__)
#define SEGX_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SEGX_UNDER_ASAN 1
#endif
#endif

size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * 4096;
}

// docs/configuration.md (metering.series_points): 1,000 blocks of an hour at 1 s take about
// 202 MB of points; the rings grow in five-minute steps, so at most 17 KB more per block.
TEST(BlockSeries, AThousandHourLongBlocksStayBounded) {
  const size_t before = resident_bytes();
  {
    BlockSeries series({.max_points = 3600, .keep_ended_ns = 0});
    std::vector<Feed> feeds;
    for (int b = 0; b < 1000; ++b)
      feeds.push_back(block("lease-" + std::to_string(b), 1000, 2000));
    // An hour and a bit: the rings are full and have wrapped.
    for (int i = 1; i <= 3700; ++i) {
      for (Feed& f : feeds) {
        f.s.bytes[0] += 125;
        series.sample(f.s, t0, t0 + i * s_ns);
      }
    }
    const size_t limit = 1000 * 3600 * BlockSeries::point_bytes;  // 201.6 MB
    EXPECT_LE(series.memory_bytes(), limit);
    EXPECT_GE(series.memory_bytes(), limit);  // full rings, nothing more
#ifndef SEGX_UNDER_ASAN
    const size_t grown = resident_bytes() - before;
    EXPECT_LT(grown, limit + 1000 * 20 * 1024) << grown << " bytes resident";
#else
    (void)before;
#endif
    auto v = series.view("lease-999", 0);
    EXPECT_EQ(v->points.size(), 3600u);
    EXPECT_EQ(v->first, 100u);
    // Ending them all and expiring releases every ring.
    for (Feed& f : feeds)
      series.end(f.s, t0 + 3701 * s_ns);
    EXPECT_EQ(series.expire(t0 + 3701 * s_ns), 1000u);
    EXPECT_EQ(series.memory_bytes(), 0u);
  }
}

}  // namespace
}  // namespace segx::market
