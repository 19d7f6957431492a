#include "config/loader.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace segx::config {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// A complete, valid file; tests append to it or replace one line of it.
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
    rx_queues: 0
pipeline:
  lcores:
    - lcore: 1
      roles: [rx, worker, tx]
  default:
    action: forward
    output: out
)";

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

std::vector<Diagnostic> errors_of(const LoadResult& r) {
  std::vector<Diagnostic> out;
  for (const auto& d : r.diagnostics) {
    if (d.severity == Diagnostic::Severity::error) out.push_back(d);
  }
  return out;
}

// The single error of a load, checked for position, path and message.
void expect_one_error(const std::string& yaml, int line, int column, const std::string& path,
                      const std::string& message) {
  auto r = load_string(yaml, "t.yaml");
  EXPECT_FALSE(r.ok());
  auto errors = errors_of(r);
  ASSERT_EQ(errors.size(), 1u) << (errors.empty() ? "no error" : format(errors[1]));
  EXPECT_EQ(errors[0].mark.line, line) << format(errors[0]);
  EXPECT_EQ(errors[0].mark.column, column) << format(errors[0]);
  EXPECT_EQ(errors[0].path, path) << format(errors[0]);
  EXPECT_THAT(errors[0].message, HasSubstr(message));
  EXPECT_THAT(format(errors[0]), HasSubstr("t.yaml:" + std::to_string(line) + ":" +
                                           std::to_string(column) + ": error: "));
}

TEST(Loader, MinimalFileLoadsWithDocumentedDefaults) {
  auto r = load_string(base, "t.yaml");
  ASSERT_TRUE(r.ok()) << (r.diagnostics.empty() ? "" : format(r.diagnostics[0]));
  const Config& c = *r.config;
  EXPECT_EQ(c.eal.lcores, (std::vector<unsigned>{0, 1}));
  EXPECT_EQ(c.eal.main_lcore, 0u);
  EXPECT_FALSE(c.eal.hugepages);
  EXPECT_EQ(c.eal.memory_bytes, 1024ull << 20);
  EXPECT_EQ(c.eal.file_prefix, "segx");
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[0].rx_queues, 1);
  EXPECT_EQ(c.ports[0].rx_descriptors, 1024);
  EXPECT_EQ(c.ports[0].mtu, 1500);
  EXPECT_TRUE(c.ports[0].promiscuous);
  EXPECT_EQ(c.ports[1].rx_queues, 0);
  ASSERT_EQ(c.pipeline.lcores.size(), 1u);
  EXPECT_EQ(c.pipeline.lcores[0].roles, role_rx | role_worker | role_tx);
  EXPECT_EQ(c.pipeline.ring_size, 4096u);
  EXPECT_EQ(c.pipeline.burst, 32u);
  EXPECT_EQ(c.pipeline.mempool.size, 16383u);
  EXPECT_EQ(c.pipeline.default_action, DefaultAction::forward);
  EXPECT_EQ(c.pipeline.default_output, "out");
  EXPECT_TRUE(c.profiles.empty());
  EXPECT_EQ(c.providers.id, "local");
  EXPECT_EQ(c.market.ledger, "sqlite:segx-ledger.db");
  EXPECT_EQ(c.market.api.listen.port, 8080);
  EXPECT_EQ(c.metrics.listen.port, 9464);
  EXPECT_EQ(c.port_index("out"), 1);
  EXPECT_EQ(c.port_index("nope"), -1);
}

TEST(Loader, EverySectionLoadsItsValues) {
  const std::string full = base + R"(profiles:
  - name: web
    match:
      input_ports: in
      vlan: [100, "200-299"]
      src: [10.0.0.0/8]
      dst: 192.0.2.0/24
      protocol: [tcp, 17]
      dst_port: [80, "8000-8080"]
      dscp: 46
    segment:
      packets: 32
      bytes: 64KiB
      time: 250ms
      idle: 0s
      tcp_close: false
    services:
      - count
      - name: dpi
        patterns: [foo]
    output: out
providers:
  id: acme
  offers: [pass, count]
  address: 192.0.2.1
  peers:
    - id: beta
      port: out
      address: 192.0.2.2
      mac: 02:00:00:00:00:02
      offers: [dpi]
      timeout: 20ms
      fallback: drop
subscribers:
  - id: alice
    devices:
      - id: alice-phone
        ip: [10.1.0.5, 2001:db8::/64]
        mac: 02:00:00:00:00:05
        phone: "+15551230005"
        vlan: 100
market:
  role: moderator
  appliance: edge-1
  rate_share: 0.5
  ledger: postgresql://segx@localhost/segx
  currency: USD
  rating_window: 7d
  bids_per_lot: 50
  gateway:
    kind: webhook
    url: https://pay.example/charge
    retries: 5
  api:
    listen: "[::1]:8443"
    threads: 8
    body_limit: 1MiB
    tls: {cert: c.pem, key: k.pem}
    tokens:
      - principal: alice
        role: recipient
        sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
      - principal: alice-phone
        role: device
        owner: alice
        sha256: fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9
metrics:
  enabled: false
  listen: 0.0.0.0:9100
)";
  auto r = load_string(full, "full.yaml");
  ASSERT_TRUE(r.ok()) << (r.diagnostics.empty() ? "" : format(r.diagnostics[0]));
  const Config& c = *r.config;
  ASSERT_EQ(c.profiles.size(), 1u);
  const ProfileConfig& p = c.profiles[0];
  EXPECT_EQ(p.match.ports, (std::vector<std::string>{"in"}));
  EXPECT_EQ(p.match.vlans, (std::vector<Range>{{100, 100}, {200, 299}}));
  EXPECT_EQ(format_prefix(p.match.dst.at(0)), "192.0.2.0/24");
  EXPECT_EQ(p.match.protocols, (std::vector<uint8_t>{6, 17}));
  EXPECT_EQ(p.match.dst_ports, (std::vector<Range>{{80, 80}, {8000, 8080}}));
  EXPECT_EQ(p.match.dscp, (std::vector<Range>{{46, 46}}));
  EXPECT_EQ(p.segment.packets, 32u);
  EXPECT_EQ(p.segment.bytes, 65536u);
  EXPECT_EQ(p.segment.time, Duration(250ms));
  EXPECT_EQ(p.segment.idle, Duration(0));
  EXPECT_FALSE(p.segment.tcp_close);
  ASSERT_EQ(p.services.size(), 2u);
  EXPECT_EQ(p.services[1].name, "dpi");
  EXPECT_EQ(p.services[1].path, "profiles[0].services[1]");
  EXPECT_EQ(p.services[1].options["patterns"][0].as<std::string>(), "foo");
  EXPECT_FALSE(p.services[1].options["name"]);
  EXPECT_EQ(c.providers.peers.at(0).fallback, Fallback::drop);
  EXPECT_EQ(c.providers.peers.at(0).timeout, Duration(20ms));
  EXPECT_EQ(format_mac(*c.providers.peers.at(0).mac), "02:00:00:00:00:02");
  const DeviceConfig& d = c.subscribers.at(0).devices.at(0);
  EXPECT_EQ(d.ips.size(), 2u);
  EXPECT_EQ(d.phones, (std::vector<std::string>{"+15551230005"}));
  EXPECT_EQ(d.vlans, (std::vector<uint16_t>{100}));
  EXPECT_EQ(c.market.role, "moderator");
  EXPECT_EQ(c.market.appliance, "edge-1");
  EXPECT_DOUBLE_EQ(c.market.rate_share, 0.5);
  EXPECT_EQ(c.market.currency, "USD");
  EXPECT_EQ(c.market.gateway.retries, 5u);
  EXPECT_EQ(c.market.api.listen.host, "::1");
  EXPECT_EQ(c.market.api.body_limit, 1u << 20);
  EXPECT_EQ(c.market.api.tokens.at(1).owner, "alice");
  EXPECT_FALSE(c.metrics.enabled);
}

TEST(Loader, UnknownKeySuggestsTheNearestKnownOne) {
  expect_one_error(replace(base, "    rx_queues: 0\n", "    rx_queue: 0\n"), 11, 5,
                   "ports[1].rx_queue", "unknown key 'rx_queue'; did you mean 'rx_queues'?");
}

TEST(Loader, UnknownTopLevelSectionListsTheSections) {
  auto r = load_string(base + "profile:\n  - name: x\n", "t.yaml");
  auto errors = errors_of(r);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].mark.line, 19);
  EXPECT_THAT(errors[0].message, HasSubstr("did you mean 'profiles'?"));
}

TEST(Loader, WrongTypeIsNamed) {
  expect_one_error(
      replace(base, "    device: net_pcap1\n", "    device: net_pcap1\n    mtu: [1500]\n"), 11, 10,
      "ports[1].mtu", "expected a value, got a list");
  expect_one_error(
      replace(base, "    device: net_pcap1\n", "    device: net_pcap1\n    promiscuous: yes\n"), 11,
      18, "ports[1].promiscuous", "expected true or false, got 'yes'");
  expect_one_error(replace(base, "    rx_queues: 0\n", "    rx_queues: two\n"), 11, 16,
                   "ports[1].rx_queues", "expected an integer, got 'two'");
  expect_one_error(replace(base, "  lcores:\n    - lcore: 1\n      roles: [rx, worker, tx]\n",
                           "  lcores: {lcore: 1}\n"),
                   13, 11, "pipeline.lcores", "expected a list, got a mapping");
}

TEST(Loader, OutOfRangeNamesTheRange) {
  expect_one_error(replace(base, "    rx_queues: 0\n", "    rx_queues: 100\n"), 11, 16,
                   "ports[1].rx_queues", "must be between 0 and 64, got 100");
  expect_one_error(base +
                       "profiles:\n  - {name: a, output: out}\n  - {name: b, output: out}\n"
                       "  - name: c\n    output: out\n    segment:\n      packets: 70000\n",
                   25, 16, "profiles[2].segment.packets", "must be between 0 and 65535, got 70000");
  expect_one_error(replace(base, "  vdevs:", "  memory: 10MiB\n  vdevs:"), 3, 11, "eal.memory",
                   "must be between 67108864 and 1099511627776 bytes");
}

TEST(Loader, DanglingReferencesAreFound) {
  expect_one_error(base + "profiles:\n  - name: web\n    output: nowhere\n", 21, 13,
                   "profiles[0].output", "no port named 'nowhere' (ports: in, out)");
  expect_one_error(replace(base, "    - lcore: 1\n", "    - lcore: 5\n"), 14, 14,
                   "pipeline.lcores[0].lcore", "lcore 5 is not started by EAL (eal.lcores)");
  expect_one_error(replace(base, "    output: out\n", "    output: outt\n"), 18, 13,
                   "pipeline.default.output", "no port named 'outt'");
  expect_one_error(replace(base, "    device: net_pcap1\n", "    device: net_pcap7\n"), 10, 13,
                   "ports[1].device", "device 'net_pcap7' is neither a vdev in eal.vdevs");
  expect_one_error(replace(base, "    device: net_pcap1\n", "    device: 0000:3b:00.0\n"), 10, 13,
                   "ports[1].device", "PCI device 0000:3b:00.0 is not in eal.pci_allow");
}

TEST(Loader, MainLcoreCannotRunTheDataPlane) {
  expect_one_error(replace(base, "    - lcore: 1\n", "    - lcore: 0\n"), 14, 14,
                   "pipeline.lcores[0].lcore", "is the main lcore");
}

TEST(Loader, DuplicateNamesAreErrors) {
  auto r = load_string(replace(base, "  - name: out\n", "  - name: in\n"), "t.yaml");
  auto errors = errors_of(r);
  ASSERT_GE(errors.size(), 1u);
  EXPECT_EQ(errors[0].mark.line, 9);
  EXPECT_EQ(errors[0].path, "ports[1]");
  EXPECT_THAT(errors[0].message, HasSubstr("port name 'in' is used twice"));
}

TEST(Loader, DuplicateKeysAreErrors) {
  expect_one_error(replace(base, "    rx_queues: 0\n", "    rx_queues: 0\n    rx_queues: 1\n"), 12,
                   5, "ports[1].rx_queues", "key given twice (first at line 11)");
}

TEST(Loader, EmptyFileIsAnError) {
  for (const char* text : {"", "\n\n  \n", "# only a comment\n"}) {
    auto r = load_string(text, "empty.yaml");
    auto errors = errors_of(r);
    ASSERT_EQ(errors.size(), 1u) << text;
    EXPECT_EQ(errors[0].mark.line, 1);
    EXPECT_EQ(errors[0].mark.column, 1);
    EXPECT_THAT(errors[0].message, HasSubstr("empty"));
  }
}

TEST(Loader, NotYamlGivesTheParserPosition) {
  auto r = load_string("ports: [in\npipeline: {\n", "broken.yaml");
  auto errors = errors_of(r);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_GT(errors[0].mark.line, 0);
  EXPECT_THAT(errors[0].message, HasSubstr("not valid YAML"));
  EXPECT_THAT(format(errors[0]), HasSubstr("broken.yaml:"));

  auto tab = load_string("eal:\n\tlcores: 1\n", "tab.yaml");
  ASSERT_EQ(errors_of(tab).size(), 1u);
  EXPECT_EQ(errors_of(tab)[0].mark.line, 2);
}

TEST(Loader, TopLevelMustBeAMapping) {
  for (const char* text : {"- a\n- b\n", "just text\n"}) {
    auto r = load_string(text, "t.yaml");
    auto errors = errors_of(r);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_THAT(errors[0].message, HasSubstr("mapping of sections"));
  }
}

TEST(Loader, MissingRequiredKeysAreNamed) {
  expect_one_error(replace(base, "    device: net_pcap1\n", ""), 9, 5, "ports[1]",
                   "missing required key 'device'");
  auto r = load_string("eal:\n  lcores: 0-1\n", "t.yaml");
  auto errors = errors_of(r);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_THAT(errors[0].message, HasSubstr("missing required key 'ports'"));
  EXPECT_THAT(errors[1].message, HasSubstr("missing required key 'pipeline'"));
}

TEST(Loader, AllErrorsAreReportedInFileOrder) {
  std::string text = replace(base, "    rx_queues: 0\n", "    rx_queues: 99\n");
  text = replace(text, "  lcores: \"0-1\"\n", "  lcores: \"0-1\"\n  hugepages: maybe\n");
  text = replace(text, "    output: out\n", "    output: elsewhere\n");
  auto r = load_string(text, "t.yaml");
  auto errors = errors_of(r);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].path, "eal.hugepages");
  EXPECT_EQ(errors[1].path, "ports[1].rx_queues");
  EXPECT_EQ(errors[2].path, "pipeline.default.output");
  EXPECT_LT(errors[0].mark.line, errors[1].mark.line);
  EXPECT_LT(errors[1].mark.line, errors[2].mark.line);
  EXPECT_FALSE(r.config.has_value());
}

TEST(Loader, EveryRoleNeedsAnLcore) {
  expect_one_error(replace(base, "roles: [rx, worker, tx]", "roles: [rx, worker]"), 14, 5,
                   "pipeline.lcores", "rx: 1, worker: 1, tx: 0");
}

TEST(Loader, EachTxLcoreNeedsItsOwnTxQueueOnPortsItSendsTo) {
  std::string text = replace(base, "  lcores: \"0-1\"\n", "  lcores: \"0-2\"\n");
  text = replace(text, "      roles: [rx, worker, tx]\n",
                 "      roles: [rx, worker, tx]\n    - lcore: 2\n      roles: [worker, tx]\n");
  auto r = load_string(text, "t.yaml");
  auto errors = errors_of(r);
  // 'out' is the default output; 'in' is sent nothing, so its single queue is fine.
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0].message,
              HasSubstr("port 'out' has 1 tx queue(s) but the pipeline has 2 tx lcores"));
  EXPECT_EQ(errors[0].mark.line, 9);
  EXPECT_TRUE(
      load_string(replace(text, "    rx_queues: 0\n", "    rx_queues: 0\n    tx_queues: 2\n"),
                  "t.yaml")
          .ok());
}

TEST(Loader, MempoolMustCoverDescriptorsAndCaches) {
  auto r = load_string(
      replace(base, "  default:", "  mempool:\n    size: 1000\n    cache: 32\n  default:"),
      "t.yaml");
  auto errors = errors_of(r);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0].message, HasSubstr("cannot fill the 3072 port descriptors"));
  EXPECT_THAT(errors[0].message, HasSubstr("needs at least 3200"));
}

TEST(Loader, ServiceMustBeOfferedHereOrByAPeer) {
  expect_one_error(
      base + "profiles:\n  - name: web\n    services: [count, dpi]\n    output: out\n", 21, 23,
      "profiles[0].services[1]",
      "service 'dpi' is offered neither here (providers.offers: pass, count) nor by any peer");
}

TEST(Loader, PeersNeedATunnelAddressAndKnownPorts) {
  auto r = load_string(
      base + "providers:\n  peers:\n    - {id: b, port: link, address: 192.0.2.2, offers: [dpi]}\n",
      "t.yaml");
  auto errors = errors_of(r);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_THAT(errors[0].message, HasSubstr("providers.address"));
  EXPECT_THAT(errors[1].message, HasSubstr("no port named 'link'"));
}

TEST(Loader, ServedServicesAreOfferedHereOncePerService) {
  auto r = load_string(base +
                           "providers:\n  offers: [count, pass]\n  hold: 128\n  serve:\n"
                           "    - count\n    - {name: count}\n    - pass\n    - dpi\n",
                       "t.yaml");
  auto errors = errors_of(r);
  ASSERT_EQ(errors.size(), 2u) << errors.size();
  EXPECT_THAT(errors[0].message, HasSubstr("service 'count' is served twice"));
  EXPECT_THAT(errors[1].message,
              HasSubstr("service 'dpi' is served to peers but not offered here"));
  auto ok = load_string(base + "providers:\n  offers: [count]\n  hold: 128\n  serve: [count]\n",
                        "t.yaml");
  ASSERT_TRUE(ok.ok()) << errors_of(ok).size();
  EXPECT_EQ(ok.config->providers.hold, 128u);
  ASSERT_EQ(ok.config->providers.serve.size(), 1u);
  EXPECT_EQ(ok.config->providers.serve[0].name, "count");
}

TEST(Loader, SubscriberIdentifiersBelongToOneDevice) {
  expect_one_error(
      base +
          "subscribers:\n  - id: a\n    devices:\n      - {id: a1, phone: \"+15551230001\"}\n"
          "  - id: b\n    devices:\n      - {id: b1, phone: \"+15551230001\"}\n",
      25, 25, "subscribers[1].devices[0].phone",
      "telephone number +15551230001 already belongs to device 'a1'");
}

TEST(Loader, SubscribersHoldGrantsThatNoOtherSubscriberOverlaps) {
  auto r = load_string(base +
                           "subscribers:\n"
                           "  - {id: alice, prefixes: [10.1.0.0/16, \"2001:db8:1::/48\"], "
                           "macs: [\"02:00:00:00:00:01\"], vlans: [100-101]}\n"
                           "  - id: bob\n    prefixes: 10.2.0.0/16\n    devices:\n"
                           "      - {id: bob-phone, ip: 10.2.0.7, phone: \"+15551230002\"}\n",
                       "t.yaml");
  ASSERT_TRUE(r.ok()) << errors_of(r).size();
  const SubscriberConfig& alice = r.config->subscribers.at(0);
  EXPECT_EQ(alice.prefixes.size(), 2u);
  EXPECT_EQ(alice.macs.size(), 1u);
  EXPECT_EQ(alice.vlans, (std::vector<uint16_t>{100, 101}));
  EXPECT_TRUE(alice.devices.empty());
  // A prefix (granted, or a device's address) of one subscriber inside another's.
  expect_one_error(base +
                       "subscribers:\n  - {id: alice, prefixes: [10.1.0.0/16]}\n"
                       "  - id: bob\n    devices:\n      - {id: b1, ip: 10.1.2.3}\n",
                   23, 22, "subscribers[1].devices[0].ip",
                   "address 10.1.2.3/32 overlaps 10.1.0.0/16 of subscriber 'alice'");
  expect_one_error(base +
                       "subscribers:\n  - {id: alice, macs: [\"02:00:00:00:00:01\"]}\n"
                       "  - {id: bob, macs: [\"02:00:00:00:00:01\"]}\n",
                   21, 22, "subscribers[1].macs[0]",
                   "MAC 02:00:00:00:00:01 already belongs to subscriber alice");
  expect_one_error(base + "subscribers:\n  - {id: nobody}\n", 20, 5, "subscribers[0]",
                   "a subscriber needs devices or grants");
}

TEST(Loader, DeviceTokensNeedAKnownOwner) {
  expect_one_error(base +
                       "market:\n  api:\n    tokens:\n      - principal: ph\n        role: device\n"
                       "        owner: nobody\n        sha256: " +
                       std::string(64, 'a') + "\n",
                   22, 9, "market.api.tokens[0]",
                   "owner 'nobody' is neither a recipient token nor a subscriber");
}

TEST(Loader, SharedLedgerRolesNeedPostgres) {
  expect_one_error(base + "market:\n  role: appliance\n  appliance: a1\n  ledger: sqlite:x.db\n",
                   22, 11, "market.ledger", "needs a postgresql:// ledger");
}

TEST(Loader, SharedLedgerRolesNeedAnApplianceNameAndAShareUpToOne) {
  expect_one_error(base + "market:\n  role: appliance\n  ledger: postgresql://h/db\n", 20, 3,
                   "market", "market.appliance");
  expect_one_error(base +
                       "market:\n  role: moderator\n  appliance: m\n  ledger: postgresql://h/db\n"
                       "  rate_share: 1.5\n",
                   23, 15, "market.rate_share", "at most 1");
}

TEST(Loader, ApiAndMetricsCannotShareAPort) {
  expect_one_error(
      base + "market:\n  api: {listen: \"127.0.0.1:9000\"}\nmetrics:\n  listen: \":9000\"\n", 22,
      11, "metrics.listen", "same port (9000)");
}

TEST(Loader, ListenerLimitsHaveDocumentedDefaultsAndBounds) {
  auto d = load_string(base, "t.yaml");
  ASSERT_TRUE(d.ok()) << (d.diagnostics.empty() ? "" : format(d.diagnostics[0]));
  const ApiConfig& a = d.config->market.api;
  EXPECT_EQ(a.header_timeout, Duration(5s));
  EXPECT_EQ(a.body_timeout, Duration(30s));
  EXPECT_EQ(a.keep_alive_timeout, Duration(5s));
  EXPECT_EQ(a.keep_alive_requests, 100u);
  EXPECT_EQ(a.max_connections, 512u);
  EXPECT_EQ(a.max_connections_per_address, 16u);
  EXPECT_EQ(a.anonymous_rate_limit, 20u);
  EXPECT_TRUE(a.tls_ciphers.empty());
  EXPECT_EQ(d.config->metrics.max_connections, 32u);
  EXPECT_EQ(d.config->metrics.max_connections_per_address, 8u);

  auto r =
      load_string(base +
                      "market:\n  api:\n    header_timeout: 2s\n    body_timeout: 1m\n"
                      "    keep_alive_timeout: 0s\n    keep_alive_requests: 3\n"
                      "    max_connections: 4\n    anonymous_rate_limit: 0\n"
                      "    tls: {cert: c.pem, key: k.pem, ciphers: ECDHE-RSA-AES128-GCM-SHA256,"
                      " ciphersuites: TLS_AES_128_GCM_SHA256}\n"
                      "metrics:\n  max_connections: 2\n  max_connections_per_address: 1\n",
                  "t.yaml");
  ASSERT_TRUE(r.ok()) << (r.diagnostics.empty() ? "" : format(r.diagnostics[0]));
  const ApiConfig& b = r.config->market.api;
  EXPECT_EQ(b.header_timeout, Duration(2s));
  EXPECT_EQ(b.body_timeout, Duration(60s));
  EXPECT_EQ(b.keep_alive_timeout, Duration(0));
  EXPECT_EQ(b.keep_alive_requests, 3u);
  EXPECT_EQ(b.max_connections, 4u);
  // Not given: the per-address default (16) shrinks to the total.
  EXPECT_EQ(b.max_connections_per_address, 4u);
  EXPECT_EQ(b.anonymous_rate_limit, 0u);
  EXPECT_EQ(b.tls_ciphers, "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(b.tls_ciphersuites, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(r.config->metrics.max_connections, 2u);
  EXPECT_EQ(r.config->metrics.max_connections_per_address, 1u);

  expect_one_error(base +
                       "market:\n  api:\n    max_connections: 8\n"
                       "    max_connections_per_address: 9\n",
                   22, 34, "market.api.max_connections_per_address",
                   "more than max_connections (8)");
  expect_one_error(base + "market:\n  api:\n    header_timeout: 0s\n", 21, 21,
                   "market.api.header_timeout", "");
}

TEST(Loader, PortZeroMeansAnyFreePortAndNeverClashes) {
  auto r = load_string(base +
                           "market:\n  api: {listen: \"127.0.0.1:0\"}\nmetrics:\n  listen: "
                           "\"127.0.0.1:0\"\n",
                       "t.yaml");
  ASSERT_TRUE(r.ok()) << (r.diagnostics.empty() ? "" : format(r.diagnostics[0]));
  EXPECT_EQ(r.config->metrics.listen.port, 0);
}

TEST(Loader, UnusedVdevIsAWarningNotAnError) {
  auto r = load_string(replace(base, "    - net_pcap1,tx_pcap=out.pcap\n",
                               "    - net_pcap1,tx_pcap=out.pcap\n    - net_null0\n"),
                       "t.yaml");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].severity, Diagnostic::Severity::warning);
  EXPECT_THAT(r.diagnostics[0].message, HasSubstr("net_null0"));
  EXPECT_EQ(r.diagnostics[0].mark.line, 6);
  EXPECT_EQ(r.diagnostics[0].path, "eal.vdevs[2]");
}

TEST(Loader, OnlyEthdevVdevsAreUnusedPorts) {
  // A compressdev vdev is for the compress service, not a port: no warning.
  auto r = load_string(replace(base, "    - net_pcap1,tx_pcap=out.pcap\n",
                               "    - net_pcap1,tx_pcap=out.pcap\n    - compress_zlib0\n"
                               "    - eth_null0\n"),
                       "t.yaml");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.diagnostics.size(), 1u) << format(r.diagnostics[0]);
  EXPECT_THAT(r.diagnostics[0].message, HasSubstr("vdev 'eth_null0' is not used by any port"));
}

TEST(Loader, DefaultRoutesPerInputPort) {
  std::string text = replace(base, "    rx_queues: 0\n", "");
  text = replace(text, "    output: out\n", "    by_input: {in: out, out: in}\n");
  auto r = load_string(text, "t.yaml");
  ASSERT_TRUE(r.ok()) << (r.diagnostics.empty() ? "" : format(r.diagnostics[0]));
  EXPECT_TRUE(r.diagnostics.empty());
  EXPECT_EQ(r.config->default_output_index(0), 1);
  EXPECT_EQ(r.config->default_output_index(1), 0);

  auto dropped = load_string(replace(text, "{in: out, out: in}", "{in: out, out: drop}"), "t.yaml");
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(dropped.config->default_output_index(1), -1);

  auto drop_all = load_string(
      replace(base, "    action: forward\n    output: out\n", "    action: drop\n"), "t.yaml");
  ASSERT_TRUE(drop_all.ok());
  EXPECT_EQ(drop_all.config->default_output_index(0), -1);
}

TEST(Loader, EveryReceivingPortNeedsADefaultOutput) {
  std::string text = replace(base, "    rx_queues: 0\n", "");
  expect_one_error(replace(text, "    output: out\n", "    by_input: {in: out}\n"), 16, 5,
                   "pipeline.default", "needs an output for packets from port 'out'");
  expect_one_error(replace(text, "    output: out\n", "    by_input: {in: nowhere, out: in}\n"), 17,
                   20, "pipeline.default.by_input.in", "no port named 'nowhere'");
}

TEST(Loader, SendingPacketsBackOutOfTheirPortIsAWarning) {
  auto r = load_string(replace(base, "    rx_queues: 0\n", ""), "t.yaml");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].severity, Diagnostic::Severity::warning);
  EXPECT_THAT(r.diagnostics[0].message,
              HasSubstr("port 'out' that no profile takes are sent back out of it"));
}

TEST(Loader, DropIsNotAPortName) {
  auto r = load_string(replace(base, "  - name: out\n", "  - name: drop\n"), "t.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(errors_of(r)[0].message, HasSubstr("'drop' is reserved"));
}

const std::string with_blocks = base + R"(profiles:
  - name: web
    metered: true
    unmetered: drop
    output: out
  - name: free
    output: out
subscribers:
  - id: alice
    devices:
      - {id: phone, ip: 10.1.0.5, phone: "+15551230005"}
      - {id: laptop, mac: "02:00:00:00:00:07"}
blocks:
  - id: b1
    profile: web
    start: 2s
    duration: 10s
    min_rate: 1Mbit/s
    max_rate: 10Mbit/s
    members:
      - {ip: 10.9.0.0/16}
      - {mac: "02:00:00:00:00:09"}
      - {vlan: 100}
      - {phone: "+15551230005"}
      - {device: laptop}
      - {subscriber: alice}
  - id: b2
    profile: web
    start: 2026-11-26T12:00:00Z
    duration: 1h
    members: [{ip: 10.8.0.1}]
)";

TEST(Loader, BlocksLoadWithEveryMemberKind) {
  auto r = load_string(with_blocks, "t.yaml");
  ASSERT_TRUE(r.ok()) << (r.diagnostics.empty() ? "" : format(r.diagnostics[0]));
  const Config& c = *r.config;
  EXPECT_TRUE(c.profiles[0].metered);
  EXPECT_EQ(c.profiles[0].unmetered, Unmetered::drop);
  EXPECT_FALSE(c.profiles[1].metered);
  ASSERT_EQ(c.blocks.size(), 2u);
  const BlockConfig& b = c.blocks[0];
  EXPECT_EQ(b.profile, "web");
  EXPECT_EQ(b.start_after, Duration(2s));
  EXPECT_FALSE(b.start_at.has_value());
  EXPECT_EQ(b.duration, Duration(10s));
  EXPECT_EQ(b.min_rate, 1'000'000u);
  EXPECT_EQ(b.max_rate, 10'000'000u);
  ASSERT_EQ(b.members.size(), 6u);
  EXPECT_EQ(b.members[0].kind, MemberConfig::Kind::ip);
  EXPECT_EQ(format_prefix(b.members[0].ip), "10.9.0.0/16");
  EXPECT_EQ(b.members[2].vlan, 100);
  EXPECT_EQ(b.members[3].name, "+15551230005");
  EXPECT_EQ(b.members[5].kind, MemberConfig::Kind::subscriber);
  EXPECT_EQ(c.blocks[1].start_at.value(), 1'795'694'400'000'000'000);
}

TEST(Loader, BlockErrorsAreNamed) {
  const auto one_error = [](const std::string& from, const std::string& to,
                            const std::string& msg) {
    auto r = load_string(replace(with_blocks, from, to), "t.yaml");
    auto errors = errors_of(r);
    ASSERT_EQ(errors.size(), 1u) << from << " -> " << to;
    EXPECT_THAT(errors[0].message, HasSubstr(msg));
  };
  one_error("    profile: web\n    start: 2s", "    profile: free\n    start: 2s",
            "is not metered");
  one_error("{device: laptop}", "{device: tablet}", "no subscriber device named 'tablet'");
  one_error("{phone: \"+15551230005\"}", "{phone: \"+15551230009\"}",
            "belongs to no subscriber device with an ip");
  one_error("min_rate: 1Mbit/s", "min_rate: 20Mbit/s",
            "min_rate 20Mbit/s is above max_rate 10Mbit/s");
  one_error("    duration: 10s\n", "", "missing required key 'duration'");
  one_error("{vlan: 100}", "{vlan: 100, mac: \"02:00:00:00:00:01\"}",
            "expected one of {ip: PREFIX}");
  one_error("start: 2s", "start: tomorrow", "expected an RFC 3339 time");
  one_error("max_rate: 10Mbit/s", "max_rate: 10MB/s", "expected a rate");
  one_error("{ip: 10.9.0.0/16}", "{ip: 0.0.0.0/0}", "0.0.0.0/1 and 128.0.0.0/1");
  one_error("{ip: 10.9.0.0/16}", "{ip: \"::/0\"}", "::/1 and 8000::/1");
}

TEST(Loader, ResultsNeedAFileOrASocket) {
  auto r = load_string(base + "results: {socket: /run/segx/records.sock}\n", "t.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->results.socket, "/run/segx/records.sock");
  EXPECT_TRUE(r.config->results.file.empty());
  auto e = load_string(base + "results: {}\n", "t.yaml");
  EXPECT_FALSE(e.ok());
  ASSERT_FALSE(e.diagnostics.empty());
  EXPECT_THAT(e.diagnostics[0].message, HasSubstr("a file, a socket, or both"));
}

TEST(Loader, DataPlaneTablesAndResults) {
  auto r = load_string(base + "results: {file: /tmp/segments.jsonl}\n", "t.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->results.file, "/tmp/segments.jsonl");
  EXPECT_EQ(r.config->pipeline.flow_table.size, 65536u);
  EXPECT_EQ(r.config->pipeline.flow_table.idle_timeout, Duration(30s));
  EXPECT_EQ(r.config->pipeline.segment_pool, 16383u);
  EXPECT_EQ(r.config->pipeline.metering.blocks, 256u);
  EXPECT_FALSE(r.config->ports[0].gtpu);
  expect_one_error(replace(base, "  default:", "  flow_table: {size: 10}\n  default:"), 16, 22,
                   "pipeline.flow_table.size", "must be between 64 and 16777216");
}

TEST(Loader, MissingFileIsAnError) {
  auto r = load_file("/nonexistent/segx.yaml");
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_THAT(format(r.diagnostics[0]),
              HasSubstr("/nonexistent/segx.yaml: error: cannot read the file"));
}

}  // namespace
}  // namespace segx::config
