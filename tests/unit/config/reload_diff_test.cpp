#include "config/reload_diff.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "config/loader.hpp"

namespace segx::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A running configuration with every live section; tests change one line of it.
const std::string base = R"(eal:
  lcores: "0-1"
  vdevs:
    - net_pcap0,rx_pcap=in.pcap
    - net_pcap1,tx_pcap=out.pcap
ports:
  - name: in
    device: net_pcap0
  - name: out
    device: net_pcap1
    rx_queues: 1
pipeline:
  lcores:
    - lcore: 1
      roles: [rx, worker, tx]
  ring_size: 1024
  default:
    action: forward
    output: out
    by_input: {out: in}
profiles:
  - name: web
    match:
      dst_port: 80
    segment:
      packets: 32
    services:
      - count
      - name: anonymize
        mode: prefix
        key: k1
    output: out
    metered: true
  - name: dns
    match:
      dst_port: 53
    output: out
providers:
  offers: [pass, count, anonymize]
market:
  api:
    listen: 127.0.0.1:8080
subscribers:
  - id: alice
    prefixes: [10.1.0.0/16]
    devices:
      - {id: alice-phone, ip: 10.1.0.5, phone: "+15551230005"}
metrics:
  listen: 127.0.0.1:9464
blocks:
  - id: b1
    profile: web
    start: 2s
    duration: 10s
    members:
      - {device: alice-phone}
log:
  level: info
)";

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

Config load(const std::string& yaml) {
  auto r = load_string(yaml, "segx.yaml");
  for (const auto& d : r.diagnostics)
    ADD_FAILURE() << format(d);
  return r.ok() ? *r.config : Config{};
}

ReloadDiff diff(const std::string& next) {
  return reload_diff(load(base), load(next));
}

TEST(ReloadDiff, TheSameFileChangesNothing) {
  const ReloadDiff d = diff(base);
  EXPECT_TRUE(d.empty());
  EXPECT_TRUE(d.live_only());
  EXPECT_THAT(d.restart, IsEmpty());
  EXPECT_THAT(d.live, IsEmpty());
}

TEST(ReloadDiff, SpellingAndOrderOfOptionsDoNotCount) {
  // Same values: a service's option keys in another order, a duration in other units, a
  // flow-style list, a quoted scalar.
  std::string next = replace(base, "        mode: prefix\n        key: k1\n",
                             "        key: \"k1\"\n        mode: prefix\n");
  next = replace(next, "    duration: 10s\n", "    duration: 10000ms\n");
  next = replace(next, "    prefixes: [10.1.0.0/16]\n", "    prefixes:\n      - 10.1.0.0/16\n");
  EXPECT_TRUE(diff(next).empty());
}

TEST(ReloadDiff, ProfilesChangeLiveAndAreNamed) {
  // A segment rule, a service's option, a new profile, a removed one.
  const ReloadDiff seg = diff(replace(base, "      packets: 32\n", "      packets: 16\n"));
  EXPECT_THAT(seg.restart, IsEmpty());
  EXPECT_THAT(seg.live, ElementsAre("profiles"));
  EXPECT_THAT(seg.profiles_changed, ElementsAre("web"));
  EXPECT_THAT(seg.profiles_added, IsEmpty());

  const ReloadDiff opt = diff(replace(base, "        key: k1\n", "        key: k2\n"));
  EXPECT_THAT(opt.profiles_changed, ElementsAre("web"));

  const ReloadDiff chain = diff(replace(base, "      - count\n", ""));
  EXPECT_THAT(chain.profiles_changed, ElementsAre("web"));

  const ReloadDiff added = diff(replace(base, "providers:\n",
                                        "  - name: ssh\n    match:\n      dst_port: 22\n"
                                        "    output: out\nproviders:\n"));
  EXPECT_TRUE(added.live_only());
  EXPECT_THAT(added.profiles_added, ElementsAre("ssh"));
  EXPECT_THAT(added.profiles_changed, IsEmpty());

  const ReloadDiff removed =
      diff(replace(base, "  - name: dns\n    match:\n      dst_port: 53\n    output: out\n", ""));
  EXPECT_THAT(removed.profiles_removed, ElementsAre("dns"));
  EXPECT_THAT(removed.profiles_changed, IsEmpty());
}

TEST(ReloadDiff, AProfileThatMovesInTheListHasChanged) {
  // The first matching profile wins: order is part of a profile.
  const std::string dns = "  - name: dns\n    match:\n      dst_port: 53\n    output: out\n";
  const std::string next = replace(replace(base, dns, ""), "profiles:\n", "profiles:\n" + dns);
  const ReloadDiff d = diff(next);
  EXPECT_TRUE(d.live_only());
  EXPECT_THAT(d.profiles_changed, ElementsAre("dns", "web"));
}

TEST(ReloadDiff, DefaultActionSubscribersBlocksAndLogLevelChangeLive) {
  const ReloadDiff by =
      diff(replace(base, "    by_input: {out: in}\n", "    by_input: {out: drop}\n"));
  EXPECT_THAT(by.restart, IsEmpty());
  EXPECT_THAT(by.live, ElementsAre("pipeline.default.by_input"));
  // Packets from `out` go back out of `out` unless by_input routes them: keep it routed.
  const ReloadDiff out = diff(replace(base, "    output: out\n    by_input: {out: in}\n",
                                      "    output: in\n    by_input: {in: out, out: in}\n"));
  EXPECT_THAT(out.live, ElementsAre("pipeline.default.output", "pipeline.default.by_input"));

  const ReloadDiff action = diff(replace(base, "    action: forward\n", "    action: drop\n"));
  EXPECT_THAT(action.live, ElementsAre("pipeline.default.action"));

  const ReloadDiff grant = diff(
      replace(base, "    prefixes: [10.1.0.0/16]\n", "    prefixes: [10.1.0.0/16, 10.3.0.0/16]\n"));
  EXPECT_THAT(grant.live, ElementsAre("subscribers"));
  EXPECT_THAT(grant.restart, IsEmpty());

  const ReloadDiff block = diff(replace(base, "    duration: 10s\n", "    duration: 20s\n"));
  EXPECT_THAT(block.live, ElementsAre("blocks"));
  EXPECT_THAT(block.blocks_changed, ElementsAre("b1"));

  const ReloadDiff b2 = diff(replace(base, "log:\n",
                                     "  - {id: b2, profile: web, duration: 1s, members: "
                                     "[{ip: 10.1.0.9}]}\nlog:\n"));
  EXPECT_THAT(b2.blocks_added, ElementsAre("b2"));

  const ReloadDiff level = diff(replace(base, "  level: info\n", "  level: debug\n"));
  EXPECT_THAT(level.live, ElementsAre("log.level"));
  EXPECT_TRUE(level.live_only());
}

TEST(ReloadDiff, EveryKeyThatNeedsARestartIsNamed) {
  const ReloadDiff q = diff(replace(base, "    rx_queues: 1\n", "    rx_queues: 0\n"));
  EXPECT_THAT(q.restart, ElementsAre("ports[1].rx_queues"));
  EXPECT_FALSE(q.live_only());

  // Several at once, with a live change beside them: all named, in the file's order.
  std::string next = replace(base, "  lcores: \"0-1\"\n", "  lcores: \"0-2\"\n");
  next = replace(next, "  ring_size: 1024\n", "  ring_size: 2048\n");
  next = replace(next, "    listen: 127.0.0.1:8080\n", "    listen: 127.0.0.1:8081\n");
  next = replace(next, "  listen: 127.0.0.1:9464\n", "  listen: 127.0.0.1:9465\n");
  next = replace(next, "      packets: 32\n", "      packets: 16\n");
  const ReloadDiff d = diff(next);
  EXPECT_THAT(d.restart, ElementsAre("eal.lcores", "pipeline.ring_size", "market.api.listen",
                                     "metrics.listen"));
  EXPECT_THAT(d.live, ElementsAre("profiles"));

  EXPECT_THAT(diff(base + "results:\n  file: records.jsonl\n").restart,
              ElementsAre("results.file"));
  EXPECT_THAT(diff(replace(base, "  offers: [pass, count, anonymize]\n",
                           "  offers: [pass, count, anonymize]\n  hold: 64\n"))
                  .restart,
              ElementsAre("providers.hold"));
}

TEST(ReloadDiff, AnAddedPortIsNamedOnceWithTheDeviceItNeeds) {
  std::string next = replace(base, "    - net_pcap1,tx_pcap=out.pcap\n",
                             "    - net_pcap1,tx_pcap=out.pcap\n    - net_null0\n");
  next = replace(next, "pipeline:\n", "  - name: spare\n    device: net_null0\npipeline:\n");
  EXPECT_THAT(diff(next).restart, ElementsAre("eal.vdevs", "ports[2]"));
  // And removed, the other way round.
  EXPECT_THAT(reload_diff(load(next), load(base)).restart, ElementsAre("eal.vdevs", "ports[2]"));
}

TEST(ReloadDiff, EveryShippedConfigurationReadTwiceIsTheSame) {
  // The file read again, unchanged, is applied as "nothing changed": no key of a real
  // configuration (service options, peers, tokens, blocks) may compare unequal to itself.
  const char* root = std::getenv("SEGX_SOURCE_ROOT");
  ASSERT_NE(root, nullptr) << "SEGX_SOURCE_ROOT must point at the source tree";
  std::vector<std::filesystem::path> files{std::filesystem::path(root) / "dist/segx.yaml"};
  for (const auto& e :
       std::filesystem::directory_iterator(std::filesystem::path(root) / "drivers-config")) {
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  }
  ASSERT_GE(files.size(), 6u);
  for (const auto& f : files) {
    auto a = load_file(f.string());
    auto b = load_file(f.string());
    ASSERT_TRUE(a.ok() && b.ok()) << f;
    const ReloadDiff d = reload_diff(*a.config, *b.config);
    EXPECT_TRUE(d.empty()) << f << ": " << ::testing::PrintToString(d.restart)
                           << ::testing::PrintToString(d.live);
  }
}

TEST(ReloadDiff, OnlyCompares) {
  const Config running = load(base);
  Config next = load(replace(base, "      packets: 32\n", "      packets: 16\n"));
  const Config running_copy = running;
  const ReloadDiff d = reload_diff(running, next);
  EXPECT_THAT(d.profiles_changed, ElementsAre("web"));
  // Comparing twice gives the same answer: neither side was touched.
  const ReloadDiff again = reload_diff(running, next);
  EXPECT_EQ(again.profiles_changed, d.profiles_changed);
  EXPECT_TRUE(reload_diff(running, running_copy).empty());
}

}  // namespace
}  // namespace segx::config
