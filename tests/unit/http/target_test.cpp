// Request targets: the path decoded, the query split and decoded the way routes read them.

#include "http/target.hpp"

#include <gtest/gtest.h>

namespace segx::http {
namespace {

TEST(Target, DecodesPercentAndPlusOnlyInTheQuery) {
  EXPECT_EQ(percent_decode("a%20b+c", false), "a b+c");
  EXPECT_EQ(percent_decode("a%20b+c", true), "a b c");
  EXPECT_EQ(percent_decode("%41%4a%4A", false), "AJJ");
  // Broken escapes stay as they are, to the last byte.
  EXPECT_EQ(percent_decode("%", false), "%");
  EXPECT_EQ(percent_decode("%4", false), "%4");
  EXPECT_EQ(percent_decode("%zz%4g", false), "%zz%4g");
  EXPECT_EQ(percent_decode("%00", false), std::string(1, '\0'));
}

TEST(Target, SplitsPathAndQuery) {
  Target t = parse_target("/v1/lots%2F1?state=open&q=a+b%26c&flag&=skipped&state=closed");
  // An encoded slash stays inside its segment: no route reads it as two.
  EXPECT_EQ(t.path, "/v1/lots%2F1");
  EXPECT_EQ(parse_target("/v1/lots%2f1%20x").path, "/v1/lots%2f1 x");
  EXPECT_EQ(parse_target("/a%2Fb?p=c%2Fd").query.find("p")->second, "c/d");
  ASSERT_EQ(t.query.size(), 4u);
  auto states = t.query.equal_range("state");
  ASSERT_EQ(std::distance(states.first, states.second), 2);
  EXPECT_EQ(states.first->second, "open");
  EXPECT_EQ(t.query.find("q")->second, "a b&c");
  EXPECT_EQ(t.query.find("flag")->second, "");
  EXPECT_EQ(parse_target("/x?").query.size(), 0u);
  EXPECT_EQ(parse_target("/x?a=b=c").query.find("a")->second, "b=c");
  EXPECT_EQ(parse_target("").path, "");
}

}  // namespace
}  // namespace segx::http
