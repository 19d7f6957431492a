// Time-block metering: the trTCM colour split for a known traffic shape (time injected),
// members by IPv4/IPv6 prefix, MAC and VLAN, profiles kept apart, usage, the errors the
// control plane gets, and blocks changing while another lcore meters packets.

#include "dataplane/metering.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <rte_launch.h>

#include <atomic>
#include <cmath>

#include "config/loader.hpp"
#include "eal_environment.hpp"
#include "test_packets.hpp"

namespace segx::dataplane {
namespace {

using ::testing::HasSubstr;

const std::string text = R"(eal: {vdevs: [net_null0, net_null1]}
ports:
  - {name: a, device: net_null0}
  - {name: b, device: net_null1, rx_queues: 0}
pipeline:
  lcores: [{lcore: 1, roles: [rx, worker, tx]}]
  default: {action: forward, output: b}
  metering: {blocks: 3, members: 16, burst: 10ms}
profiles:
  - {name: web, metered: true, output: b}
  - {name: voice, metered: true, output: b}
  - {name: free, output: b}
)";

config::Config& cfg() {
  static config::Config c = [] {
    auto r = config::load_string(text, "t.yaml");
    EXPECT_TRUE(r.ok()) << (r.diagnostics.empty() ? "" : config::format(r.diagnostics[0]));
    return *r.config;
  }();
  return c;
}

int instances = 0;
std::unique_ptr<Metering> make() {
  auto m = Metering::create(cfg(), 1, "mt" + std::to_string(++instances));
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error());
  return std::move(m).value();
}

MemberId ip(const char* prefix) {
  return {MemberId::Kind::ip, config::parse_ip_prefix(prefix).value(), {}, 0};
}

const uint8_t no_macs[12] = {};

MeterVerdict meter(Metering& m, const PacketInfo& i, uint32_t profile, uint32_t bytes = 100,
                   const uint8_t* frame = no_macs, uint64_t now = 0) {
  return m.meter(0, *m.snapshot(), i, frame, profile, bytes, now ? now : rte_get_tsc_cycles());
}

// RFC 2698, colour-blind, with exact arithmetic: what the meter must do.
struct ReferenceTrTcm {
  double cir, pir, cbs, pbs, tc, tp, last;
  ReferenceTrTcm(double cir_, double pir_, double cbs_, double pbs_, double t)
      : cir(cir_), pir(pir_), cbs(cbs_), pbs(pbs_), tc(cbs_), tp(pbs_), last(t) {}
  int colour(double t, double bytes) {
    tc = std::min(cbs, tc + cir * (t - last));
    tp = std::min(pbs, tp + pir * (t - last));
    last = t;
    if (tp < bytes) return 2;
    if (tc < bytes) {
      tp -= bytes;
      return 1;
    }
    tp -= bytes;
    tc -= bytes;
    return 0;
  }
};

TEST(Metering, TrTcmSplitsAKnownShapeAsTheDefinitionPredicts) {
  auto m = make();
  // 10 kB/s minimum, 20 kB/s maximum; bucket depth 10 ms at rate, at least 2048 bytes.
  ASSERT_TRUE(m->activate({"b", 0, 80'000, 160'000, {ip("10.0.0.0/24")}}).ok());
  const double hz = static_cast<double>(rte_get_tsc_hz());
  const uint64_t t0 = rte_get_tsc_cycles() + rte_get_tsc_hz();  // buckets are full by then
  ReferenceTrTcm ref(10'000, 20'000, 2048, 2048, 0);
  std::array<int, 3> got{}, want{};
  // 1000-byte packets every 25 ms for 10 s: 40 kB/s offered.
  for (int i = 0; i < 400; ++i) {
    const double t = i * 0.025;
    const auto v = meter(*m, ip_packet("10.0.0.1", "8.8.8.8"), 0, 1000, no_macs,
                         t0 + static_cast<uint64_t>(t * hz));
    ASSERT_TRUE(v.member);
    ++got[v.colour];
    ++want[ref.colour(t, 1000)];
  }
  EXPECT_NEAR(got[0], want[0], 2) << "green";
  EXPECT_NEAR(got[1], want[1], 2) << "yellow";
  EXPECT_NEAR(got[2], want[2], 2) << "red";
  EXPECT_NEAR(want[0], 102, 2) << "the shape itself: CBS + CIR x 10 s of green";
  EXPECT_NEAR(want[0] + want[1], 202, 2) << "PBS + PIR x 10 s not red";
  const auto u = m->usage("b").value();
  EXPECT_EQ(u.total.packets[0] + u.total.packets[1] + u.total.packets[2], 400u);
  EXPECT_EQ(u.total.bytes[2], static_cast<uint64_t>(got[2]) * 1000);
}

TEST(Metering, NoMaximumMeansNothingIsRed) {
  auto m = make();
  ASSERT_TRUE(m->activate({"b", 0, 0, 0, {ip("10.0.0.1")}}).ok());
  for (int i = 0; i < 1000; ++i)
    EXPECT_NE(meter(*m, ip_packet("10.0.0.1", "1.1.1.1"), 0, 1500).colour, 2);
}

TEST(Metering, MembersByPrefixMacAndVlanForTheirProfileOnly) {
  auto m = make();
  MemberId mac{MemberId::Kind::mac, {}, config::parse_mac("02:00:00:00:00:09").value(), 0};
  MemberId vlan{MemberId::Kind::vlan, {}, {}, 100};
  auto serial =
      m->activate({"web1", 0, 0, 0, {ip("10.1.0.0/16"), ip("2001:db8:1::/48"), mac, vlan}});
  ASSERT_TRUE(serial.ok());
  EXPECT_TRUE(meter(*m, ip_packet("10.1.2.3", "8.8.8.8"), 0).member) << "source address";
  EXPECT_TRUE(meter(*m, ip_packet("8.8.8.8", "10.1.2.3"), 0).member) << "destination address";
  EXPECT_EQ(meter(*m, ip_packet("10.1.2.3", "8.8.8.8"), 0).block_serial, serial.value());
  EXPECT_TRUE(meter(*m, ip_packet("2001:db8:1:ff::1", "2001:db8:9::1"), 0).member) << "IPv6";
  EXPECT_FALSE(meter(*m, ip_packet("10.2.0.1", "8.8.8.8"), 0).member);
  EXPECT_FALSE(meter(*m, ip_packet("10.1.2.3", "8.8.8.8"), 1).member) << "another profile";
  uint8_t frame[12] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 9};  // destination, then source MAC
  EXPECT_TRUE(meter(*m, ip_packet("9.9.9.9", "8.8.8.8"), 0, 100, frame).member) << "source MAC";
  PacketInfo tagged = ip_packet("9.9.9.9", "8.8.8.8");
  tagged.vlan_count = 1;
  tagged.outer_vlan = 100;
  EXPECT_TRUE(meter(*m, tagged, 0).member) << "VLAN";
  tagged.outer_vlan = 101;
  EXPECT_FALSE(meter(*m, tagged, 0).member);

  // The same address in a block of another profile is a separate membership.
  ASSERT_TRUE(m->activate({"voice1", 1, 0, 0, {ip("10.1.0.0/16")}}).ok());
  EXPECT_TRUE(meter(*m, ip_packet("10.1.2.3", "8.8.8.8"), 1).member);

  const auto u = m->usage("web1").value();
  ASSERT_EQ(u.members.size(), 4u);
  EXPECT_EQ(u.members[0].first, "ip 10.1.0.0/16");
  EXPECT_EQ(u.members[0].second.packets[0] + u.members[0].second.packets[1], 3u);
  EXPECT_EQ(u.members[2].first, "mac 02:00:00:00:00:09");

  auto final_usage = m->deactivate("web1");
  ASSERT_TRUE(final_usage.ok());
  EXPECT_EQ(final_usage.value().total.packets[1], 6u) << "no minimum: all yellow";
  EXPECT_EQ(final_usage.value().total.packets[0], 0u);
  EXPECT_FALSE(meter(*m, ip_packet("10.1.2.3", "8.8.8.8"), 0).member) << "deactivated";
  EXPECT_TRUE(meter(*m, ip_packet("10.1.2.3", "8.8.8.8"), 1).member) << "the other block stays";
  EXPECT_FALSE(meter(*m, ip_packet("2001:db8:1::1", "::1"), 0).member);
}

TEST(Metering, ControlPlaneErrors) {
  auto m = make();
  ASSERT_TRUE(m->activate({"a", 0, 0, 0, {ip("10.0.0.1")}}).ok());
  auto dup = m->activate({"b", 0, 0, 0, {ip("10.0.0.1")}});
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(
      dup.error(),
      HasSubstr("ip 10.0.0.1/32 is already a member of another active block of profile 'web'"));
  EXPECT_THAT(m->activate({"a", 1, 0, 0, {ip("10.0.0.2")}}).error(), HasSubstr("already active"));
  EXPECT_THAT(m->activate({"c", 2, 0, 0, {ip("10.0.0.3")}}).error(), HasSubstr("not metered"));
  ASSERT_TRUE(m->activate({"b", 1, 0, 0, {ip("10.0.0.4")}}).ok());
  ASSERT_TRUE(m->activate({"c", 1, 0, 0, {ip("10.0.0.5")}}).ok());
  EXPECT_THAT(m->activate({"d", 1, 0, 0, {ip("10.0.0.6")}}).error(),
              HasSubstr("no free block slot"));
  EXPECT_THAT(m->deactivate("zz").error(), HasSubstr("no active block 'zz'"));
  // A failed activation leaves nothing behind: the freed slot is usable.
  ASSERT_TRUE(m->deactivate("c").ok());
  std::vector<MemberId> many;
  for (int i = 0; i < 20; ++i)
    many.push_back(ip(("10.9.0." + std::to_string(i)).c_str()));
  EXPECT_THAT(m->activate({"big", 1, 0, 0, many}).error(), HasSubstr("no free member entry"));
  EXPECT_FALSE(meter(*m, ip_packet("10.9.0.1", "1.1.1.1"), 1).member);
  ASSERT_TRUE(m->activate({"c", 1, 0, 0, {ip("10.0.0.5")}}).ok());
  EXPECT_TRUE(meter(*m, ip_packet("10.0.0.5", "1.1.1.1"), 1).member);
}

TEST(ResolveMembers, DevicesSubscribersAndPhones) {
  auto r = config::load_string(text + R"(subscribers:
  - id: alice
    devices:
      - {id: phone, ip: [10.1.0.5, "2001:db8::5"], phone: "+15551230005"}
      - {id: laptop, mac: "02:00:00:00:00:07", vlan: 7}
)",
                               "t.yaml");
  ASSERT_TRUE(r.ok());
  using K = config::MemberConfig::Kind;
  std::vector<config::MemberConfig> members(3);
  members[0].kind = K::phone;
  members[0].name = "+15551230005";
  members[1].kind = K::subscriber;
  members[1].name = "alice";
  members[2].kind = K::device;
  members[2].name = "laptop";
  auto ids = resolve_members(*r.config, members);
  ASSERT_TRUE(ids.ok());
  std::vector<std::string> labels;
  for (const auto& m : ids.value())
    labels.push_back(m.label());
  EXPECT_EQ(labels, (std::vector<std::string>{"ip 10.1.0.5/32", "ip 2001:db8::5/128",
                                              "mac 02:00:00:00:00:07", "vlan 7"}));
}

// Blocks change while another lcore meters: a block that stays active is never missed,
// and the one that comes and goes is seen both ways.
struct Reader {
  Metering* m;
  std::atomic<bool> stop{false};
  uint64_t missed_a = 0, seen_b = 0, not_b = 0, rounds = 0;
};

int read_loop(void* arg) {
  auto& r = *static_cast<Reader*>(arg);
  rte_rcu_qsbr* rcu = r.m->rcu();
  rte_rcu_qsbr_thread_register(rcu, 0);
  rte_rcu_qsbr_thread_online(rcu, 0);
  const PacketInfo a = ip_packet("10.0.0.1", "1.1.1.1"), b = ip_packet("2001:db8::7", "::1");
  while (!r.stop.load()) {
    const MeterSnapshot& s = *r.m->snapshot();
    if (!r.m->meter(0, s, a, no_macs, 0, 64, rte_get_tsc_cycles()).member) ++r.missed_a;
    if (r.m->meter(0, s, b, no_macs, 0, 64, rte_get_tsc_cycles()).member)
      ++r.seen_b;
    else
      ++r.not_b;
    ++r.rounds;
    rte_rcu_qsbr_quiescent(rcu, 0);
  }
  rte_rcu_qsbr_thread_offline(rcu, 0);
  rte_rcu_qsbr_thread_unregister(rcu, 0);
  return 0;
}

TEST(Metering, BlocksChangeWhilePacketsFlow) {
  auto m = make();
  ASSERT_TRUE(m->activate({"a", 0, 0, 0, {ip("10.0.0.0/8")}}).ok());
  Reader r{m.get()};
  ASSERT_EQ(rte_eal_remote_launch(read_loop, &r, 1), 0);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(m->activate({"b", 0, 0, 0, {ip("2001:db8::/64"), ip("192.168.0.0/16")}}).ok());
    ASSERT_TRUE(m->deactivate("b").ok());
  }
  r.stop = true;
  rte_eal_wait_lcore(1);
  EXPECT_GT(r.rounds, 0u);
  EXPECT_EQ(r.missed_a, 0u) << "an unchanged block was missed during an update";
  EXPECT_GT(r.not_b, 0u);
  EXPECT_FALSE(meter(*m, ip_packet("2001:db8::7", "::1"), 0).member) << "b ended inactive";
}

}  // namespace
}  // namespace segx::dataplane
