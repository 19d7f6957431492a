// The exposition format and the instruments: what a scrape shows, escaping, histograms,
// name rules, and families merged into one group.

#include "metrics/metrics.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>
#include <thread>

namespace segx::metrics {
namespace {

using ::testing::HasSubstr;

TEST(Format, ValuesAsPrometheusReadsThem) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(42), "42");
  EXPECT_EQ(format_value(-3), "-3");
  EXPECT_EQ(format_value(18446744073709551615.0), "18446744073709551616");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(1e-6), "1e-06");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(Format, EscapesHelpAndLabelValues) {
  EXPECT_EQ(escape_help("a\\b\nc \"q\""), "a\\\\b\\nc \"q\"");
  EXPECT_EQ(escape_label_value("a\\b\nc \"q\""), "a\\\\b\\nc \\\"q\\\"");
  const std::string text =
      serialize({FamilySnapshot{"x_total", "line one\nback\\slash", Type::counter, {}}.add(
          {{"path", "C:\\dir\n\"quoted\""}}, 1)});
  EXPECT_EQ(text,
            "# HELP x_total line one\\nback\\\\slash\n"
            "# TYPE x_total counter\n"
            "x_total{path=\"C:\\\\dir\\n\\\"quoted\\\"\"} 1\n");
}

TEST(Format, UnlabelledAndLabelledSamples) {
  FamilySnapshot f{"segx_things", "Things", Type::gauge, {}};
  f.add({}, 3).add({{"a", "1"}, {"b", "two"}}, 4.5);
  EXPECT_EQ(serialize({f}),
            "# HELP segx_things Things\n# TYPE segx_things gauge\n"
            "segx_things 3\nsegx_things{a=\"1\",b=\"two\"} 4.5\n");
}

TEST(Format, HistogramHasCumulativeBucketsInfSumAndCount) {
  FamilySnapshot f{"lat_seconds", "Latency", Type::histogram, {}};
  f.add({{"op", "x"}}, HistogramValue{{0.1, 1}, {2, 3, 4}, 7.5});
  EXPECT_EQ(serialize({f}),
            "# HELP lat_seconds Latency\n# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{op=\"x\",le=\"0.1\"} 2\n"
            "lat_seconds_bucket{op=\"x\",le=\"1\"} 5\n"
            "lat_seconds_bucket{op=\"x\",le=\"+Inf\"} 9\n"
            "lat_seconds_sum{op=\"x\"} 7.5\n"
            "lat_seconds_count{op=\"x\"} 9\n");
}

TEST(Format, PartsOfOneFamilyAreWrittenAsOneGroup) {
  FamilySnapshot a{"n_total", "N", Type::counter, {}};
  a.add({{"k", "a"}}, 1);
  FamilySnapshot other{"m", "M", Type::gauge, {}};
  other.add({}, 0);
  FamilySnapshot b{"n_total", "", Type::counter, {}};
  b.add({{"k", "b"}}, 2);
  EXPECT_EQ(serialize({a, other, b}),
            "# HELP n_total N\n# TYPE n_total counter\nn_total{k=\"a\"} 1\nn_total{k=\"b\"} 2\n"
            "# HELP m M\n# TYPE m gauge\nm 0\n");
  FamilySnapshot clash{"n_total", "", Type::gauge, {}};
  EXPECT_THROW(serialize({a, clash}), std::invalid_argument);
}

TEST(Format, RefusesInvalidNames) {
  EXPECT_TRUE(valid_metric_name("segx_a:b_total"));
  EXPECT_FALSE(valid_metric_name("1abc"));
  EXPECT_FALSE(valid_metric_name("a-b"));
  EXPECT_FALSE(valid_metric_name(""));
  EXPECT_TRUE(valid_label_name("port_2"));
  EXPECT_FALSE(valid_label_name("__name"));
  EXPECT_FALSE(valid_label_name("a:b"));
  EXPECT_THROW(serialize({FamilySnapshot{"bad name", "", Type::gauge, {}}}), std::invalid_argument);
  FamilySnapshot f{"ok", "", Type::gauge, {}};
  f.add({{"bad-label", "v"}}, 1);
  EXPECT_THROW(serialize({f}), std::invalid_argument);
  FamilySnapshot h{"h", "", Type::histogram, {}};
  h.add({}, HistogramValue{{2, 1}, {0, 0, 0}, 0});
  EXPECT_THROW(serialize({h}), std::invalid_argument);
}

TEST(Registry, InstrumentsAppearInRegistrationOrder) {
  Registry r;
  auto& requests = r.add_counter("segx_requests_total", "Requests");
  auto& temp = r.add_gauge("segx_temperature_celsius", "Temperature");
  requests.add({{"code", "200"}}).increment(2);
  requests.add({{"code", "500"}}).increment();
  requests.add({{"code", "200"}}).increment();    // the same instrument as before
  requests.add({{"code", "200"}}).increment(-5);  // ignored: counters only go up
  temp.add({}).set(21.5);
  temp.add({}).decrement(0.5);
  EXPECT_EQ(r.expose(),
            "# HELP segx_requests_total Requests\n# TYPE segx_requests_total counter\n"
            "segx_requests_total{code=\"200\"} 3\nsegx_requests_total{code=\"500\"} 1\n"
            "# HELP segx_temperature_celsius Temperature\n"
            "# TYPE segx_temperature_celsius gauge\nsegx_temperature_celsius 21\n");
}

TEST(Registry, HistogramBucketsByUpperBoundInclusive) {
  Registry r;
  auto& h = r.add_histogram("segx_wait_seconds", "Wait", {0.5, 1, 2}).add({});
  for (double v : {0.1, 0.5, 0.7, 1.0, 3.0, 100.0})
    h.observe(v);
  const HistogramValue v = h.value();
  EXPECT_EQ(v.counts, (std::vector<uint64_t>{2, 2, 0, 2}));
  EXPECT_DOUBLE_EQ(v.sum, 105.3);
  EXPECT_THAT(r.expose(), HasSubstr("segx_wait_seconds_bucket{le=\"0.5\"} 2\n"
                                    "segx_wait_seconds_bucket{le=\"1\"} 4\n"
                                    "segx_wait_seconds_bucket{le=\"2\"} 4\n"
                                    "segx_wait_seconds_bucket{le=\"+Inf\"} 6\n"
                                    "segx_wait_seconds_sum "));
  EXPECT_THAT(r.expose(), HasSubstr("\nsegx_wait_seconds_count 6\n"));
}

TEST(Registry, RefusesBadRegistrations) {
  Registry r;
  r.add_counter("a_total", "");
  EXPECT_THROW(r.add_counter("a_total", ""), std::invalid_argument);
  EXPECT_THROW(r.add_gauge("a_total", ""), std::invalid_argument);
  EXPECT_THROW(r.add_counter("requests", ""), std::invalid_argument);  // no _total
  EXPECT_THROW(r.add_gauge("9lives", ""), std::invalid_argument);
  EXPECT_THROW(r.add_histogram("h", "", {1, 1}), std::invalid_argument);
  EXPECT_THROW(r.add_histogram("h2", "", {1}).add({{"le", "x"}}), std::invalid_argument);
  EXPECT_THROW(r.add_gauge("g", "").add({{"__x", "1"}}), std::invalid_argument);
}

TEST(Registry, CollectorsAddFamiliesAtEachScrape) {
  Registry r;
  int scrapes = 0;
  r.add_gauge("segx_first", "First").add({}).set(1);
  r.add_collector([&scrapes](std::vector<FamilySnapshot>& out) {
    ++scrapes;
    out.push_back(FamilySnapshot{"segx_scrapes_total", "Scrapes", Type::counter, {}});
    out.back().add({}, scrapes);
  });
  EXPECT_THAT(r.expose(), HasSubstr("segx_scrapes_total 1\n"));
  const std::string second = r.expose();
  EXPECT_THAT(second, HasSubstr("segx_scrapes_total 2\n"));
  EXPECT_LT(second.find("segx_first"), second.find("segx_scrapes_total"));
}

TEST(Registry, ConcurrentUpdatesAreNotLost) {
  Registry r;
  auto& c = r.add_counter("segx_n_total", "").add({});
  auto& h = r.add_histogram("segx_h", "", {1}).add({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.increment();
        h.observe(0.5);
        if (i % 1000 == 0) (void)r.expose();
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(c.value(), 40000);
  EXPECT_EQ(h.value().counts[0], 40000u);
  EXPECT_DOUBLE_EQ(h.value().sum, 20000);
}

}  // namespace
}  // namespace segx::metrics
