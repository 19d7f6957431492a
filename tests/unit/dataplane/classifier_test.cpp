// Profile classification through rte_acl: first profile written wins, every match field
// (input port, VLAN, prefixes of both families, protocol, port ranges, DSCP), and the
// limit on rule expansion.

#include "dataplane/classifier.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.hpp"
#include "eal_environment.hpp"
#include "test_packets.hpp"

namespace segx::dataplane {
namespace {

const std::string head = R"(eal: {vdevs: [net_null0, net_null1]}
ports:
  - {name: a, device: net_null0}
  - {name: b, device: net_null1}
pipeline:
  lcores: [{lcore: 1, roles: [rx, worker, tx]}]
  default: {action: forward, by_input: {a: b, b: a}}
)";

config::Config load(const std::string& profiles) {
  auto r = config::load_string(head + profiles, "t.yaml");
  EXPECT_TRUE(r.ok()) << (r.diagnostics.empty() ? "" : config::format(r.diagnostics[0]));
  return r.ok() ? *r.config : config::Config{};
}

int counter = 0;
std::unique_ptr<Classifier> build(const config::Config& c) {
  auto cls = Classifier::build(c, "t" + std::to_string(++counter));
  EXPECT_TRUE(cls.ok()) << (cls.ok() ? "" : cls.error());
  return cls.ok() ? std::move(cls).value() : nullptr;
}

// The profile index + 1 the classifier gives a packet on input port `port`.
uint32_t classify(const Classifier& c, const PacketInfo& i, uint8_t port = 0) {
  uint32_t result = 0;
  if (i.family == 4) {
    const AclKey4 k = make_acl_key4(i, port);
    const AclKey4* kp = &k;
    c.classify4(&kp, &result, 1);
  } else {
    const AclKey6 k = make_acl_key6(i, port);
    const AclKey6* kp = &k;
    c.classify6(&kp, &result, 1);
  }
  return result;
}

TEST(Classifier, FirstProfileWrittenWins) {
  const auto c = build(load(R"(profiles:
  - {name: web, match: {protocol: tcp, dst_port: [80, 443]}, output: b}
  - {name: tcp, match: {protocol: tcp}, output: b}
  - {name: any, output: b}
)"));
  ASSERT_TRUE(c);
  EXPECT_EQ(classify(*c, ip_packet("10.0.0.1", "10.0.0.2", 6, 1000, 80)), 1u);
  EXPECT_EQ(classify(*c, ip_packet("10.0.0.1", "10.0.0.2", 6, 1000, 22)), 2u);
  EXPECT_EQ(classify(*c, ip_packet("10.0.0.1", "10.0.0.2", 17, 1000, 80)), 3u);
  EXPECT_EQ(classify(*c, ip_packet("2001:db8::1", "2001:db8::2", 6, 1, 443)), 1u);
}

TEST(Classifier, PortRangesAndPrefixes) {
  const auto c = build(load(R"(profiles:
  - name: p
    match: {src: [10.1.0.0/16, 192.0.2.7], dst: 0.0.0.0/0, protocol: udp, src_port: "1024-2048", dst_port: "5060-5061"}
    output: b
)"));
  ASSERT_TRUE(c);
  EXPECT_EQ(classify(*c, ip_packet("10.1.200.3", "8.8.8.8", 17, 1024, 5060)), 1u);
  EXPECT_EQ(classify(*c, ip_packet("10.1.200.3", "8.8.8.8", 17, 2048, 5061)), 1u);
  EXPECT_EQ(classify(*c, ip_packet("192.0.2.7", "8.8.8.8", 17, 1500, 5060)), 1u);
  EXPECT_EQ(classify(*c, ip_packet("10.2.0.1", "8.8.8.8", 17, 1500, 5060)), 0u)
      << "outside the prefix";
  EXPECT_EQ(classify(*c, ip_packet("192.0.2.8", "8.8.8.8", 17, 1500, 5060)), 0u) << "a /32";
  EXPECT_EQ(classify(*c, ip_packet("10.1.0.1", "8.8.8.8", 17, 1023, 5060)), 0u)
      << "below the range";
  EXPECT_EQ(classify(*c, ip_packet("10.1.0.1", "8.8.8.8", 17, 1500, 5062)), 0u)
      << "above the range";
  EXPECT_EQ(classify(*c, ip_packet("10.1.0.1", "8.8.8.8", 6, 1500, 5060)), 0u) << "wrong protocol";
}

TEST(Classifier, Ipv6PrefixesAcrossWordBoundaries) {
  const auto c = build(load(R"(profiles:
  - {name: narrow, match: {dst: "2001:db8:0:1:8000::/65"}, output: b}
  - {name: wide, match: {dst: "2001:db8::/32"}, output: b}
)"));
  ASSERT_TRUE(c);
  EXPECT_EQ(classify(*c, ip_packet("::1", "2001:db8:0:1:8000::5", 6, 1, 2)), 1u);
  EXPECT_EQ(classify(*c, ip_packet("::1", "2001:db8:0:1:7fff::5", 6, 1, 2)), 2u);
  EXPECT_EQ(classify(*c, ip_packet("::1", "2001:db9::1", 6, 1, 2)), 0u);
  EXPECT_EQ(classify(*c, ip_packet("10.0.0.1", "10.0.0.2", 6, 1, 2)), 0u) << "IPv6-only profiles";
}

TEST(Classifier, VlanInputPortAndDscp) {
  const auto c = build(load(R"(profiles:
  - {name: tagged, match: {vlan: ["100-199"], input_ports: b}, output: a}
  - {name: voice, match: {dscp: 46}, output: b}
  - {name: untagged, match: {vlan: 0}, output: b}
)"));
  ASSERT_TRUE(c);
  PacketInfo i = ip_packet("10.0.0.1", "10.0.0.2", 17, 1, 2);
  i.vlan_count = 1;
  i.outer_vlan = 150;
  EXPECT_EQ(classify(*c, i, 1), 1u);
  EXPECT_EQ(classify(*c, i, 0), 0u) << "tagged from the other port, no DSCP 46: nothing";
  i.dscp = 46;
  EXPECT_EQ(classify(*c, i, 0), 2u);
  i.outer_vlan = 200;
  i.dscp = 0;
  EXPECT_EQ(classify(*c, i, 1), 0u);
  i.vlan_count = 0;
  EXPECT_EQ(classify(*c, i, 1), 3u) << "untagged frames have VLAN 0";
}

TEST(Classifier, IcmpBelongsToItsFamily) {
  const auto c = build(load(R"(profiles:
  - {name: ping, match: {protocol: [icmp, icmpv6]}, output: b}
)"));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->rules4(), 1u);
  EXPECT_EQ(c->rules6(), 1u);
  EXPECT_EQ(classify(*c, ip_packet("10.0.0.1", "10.0.0.2", 1, 0, 0)), 1u);
  EXPECT_EQ(classify(*c, ip_packet("::1", "::2", 58, 0, 0)), 1u);
  EXPECT_EQ(classify(*c, ip_packet("::1", "::2", 1, 0, 0)), 0u);
}

TEST(Classifier, NoProfilesMatchesNothing) {
  const auto c = build(load(""));
  ASSERT_TRUE(c);
  EXPECT_EQ(classify(*c, ip_packet("10.0.0.1", "10.0.0.2", 6, 1, 2)), 0u);
  EXPECT_EQ(classify(*c, ip_packet("::1", "::2", 6, 1, 2)), 0u);
}

TEST(Classifier, ExpansionIsTheCrossProductAndHasALimit) {
  const auto cfg = load(R"(profiles:
  - {name: p, match: {protocol: [tcp, udp], dst_port: [1, 2, 3], vlan: [1, 2]}, output: b}
)");
  auto rules = expand_profile(cfg, 0, 1000);
  ASSERT_TRUE(rules.ok());
  EXPECT_EQ(rules.value().size(), 2u * 2 * 3 * 2) << "both families x protocols x ports x vlans";
  auto limited = expand_profile(cfg, 0, 10);
  ASSERT_FALSE(limited.ok());
  EXPECT_THAT(limited.error(), ::testing::HasSubstr("expands to more than 10 classifier rules"));
}

}  // namespace
}  // namespace segx::dataplane
