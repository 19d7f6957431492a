// The /metrics endpoint: content type, body, unknown paths, a port already in use.

#include "metrics/server.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

namespace segx::metrics {
namespace {

using ::testing::HasSubstr;

TEST(Server, ServesTheRegistryAtMetrics) {
  Registry r;
  r.add_counter("segx_test_total", "A test").add({}).increment(7);
  auto started = Server::start("127.0.0.1", 0, r);
  ASSERT_TRUE(started.ok()) << started.error();
  Server& s = *started.value();
  ASSERT_NE(s.port(), 0);
  EXPECT_EQ(s.url(), "http://127.0.0.1:" + std::to_string(s.port()) + "/metrics");

  httplib::Client client("127.0.0.1", s.port());
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), content_type);
  EXPECT_THAT(res->body, HasSubstr("segx_test_total 7\n"));
  auto missing = client.Get("/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  s.stop();
  s.stop();  // idempotent
}

TEST(Server, ABrokenCollectorGivesAnErrorNotACrash) {
  Registry r;
  r.add_collector([](std::vector<FamilySnapshot>& out) {
    out.push_back(FamilySnapshot{"not valid", "", Type::gauge, {}});
  });
  auto started = Server::start("127.0.0.1", 0, r);
  ASSERT_TRUE(started.ok()) << started.error();
  httplib::Client client("127.0.0.1", started.value()->port());
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);
  EXPECT_THAT(res->body, HasSubstr("invalid metric name"));
}

TEST(Server, APortInUseIsAnErrorNamingIt) {
  Registry r;
  auto first = Server::start("127.0.0.1", 0, r);
  ASSERT_TRUE(first.ok()) << first.error();
  const uint16_t port = first.value()->port();
  auto second = Server::start("127.0.0.1", port, r);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.error(), HasSubstr("metrics.listen 127.0.0.1:" + std::to_string(port)));
}

}  // namespace
}  // namespace segx::metrics
