// Reloading a running segx's configuration (issue 17): SIGHUP, `segxctl reload` and POST
// /v1/admin/reload, on the API fixture's appliance (pcap in replayed without end, pcap out).
// A refused reload changes nothing; an applied one moves the generation and is counted.

#include <regex>

#include "api_run.hpp"

namespace segx::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class Reload : public ApiRun {
 protected:
  // One sample of /metrics ("name{labels}"), or -1 when absent.
  double metric(const std::string& series) {
    httplib::Client m("127.0.0.1", metrics_port_);
    auto r = m.Get("/metrics");
    EXPECT_TRUE(r);
    if (!r) return -1;
    std::string escaped;
    for (char c : series) {
      if (std::string("{}[]().*+?^$|\\").find(c) != std::string::npos) escaped += '\\';
      escaped += c;
    }
    std::smatch m2;
    if (!std::regex_search(r->body, m2, std::regex("\n" + escaped + " ([0-9.e+]+)\n"))) return -1;
    return std::stod(m2[1].str());
  }

  // Packets received so far; waits until it has grown past `than` (traffic flows).
  double received_beyond(double than) {
    for (int i = 0; i < 300; ++i) {
      const double v = metric("segx_received_packets_total");
      if (v > than) return v;
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "segx_received_packets_total stayed at " << than;
    return than;
  }

  std::string config_text() { return read_file(dir_ / "segx.yaml"); }
  void rewrite(const std::string& from, const std::string& to) {
    std::string text = config_text();
    const size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    write_file(dir_ / "segx.yaml", text);
  }

  // SIGHUP, then waits for the reload's log line ("configuration reloaded" or "reload
  // refused"), the `count`-th of its kind.
  void hangup_and_wait(const std::string& line, size_t count) {
    proc_->signal(SIGHUP);
    for (int i = 0; i < 300; ++i) {
      const std::string err = proc_->err();
      size_t n = 0;
      for (size_t at = err.find(line); at != std::string::npos; at = err.find(line, at + 1))
        ++n;
      if (n >= count) return;
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "no '" << line << "' #" << count << " in the log:\n" << proc_->err();
  }

  // A counter once two scrapes 300 ms apart agree (the data plane's passes after a reload
  // take milliseconds; the deadline only guards a hang).
  double settled(const std::string& series) {
    double last = metric(series);
    for (int i = 0; i < 100; ++i) {
      std::this_thread::sleep_for(300ms);
      const double now = metric(series);
      if (now == last) return now;
      last = now;
    }
    ADD_FAILURE() << series << " never settled";
    return last;
  }

  // The profiles /v1/profiles shows, by name, with their services.
  json profiles() { return request("GET", "/v1/profiles", "root", "", 200)["profiles"]; }
};

TEST_F(Reload, TheAdminRouteIsForAdminsOnly) {
  const fs::path config = write_config();
  start(config);
  auto c = client();
  auto none = c.Post("/v1/admin/reload", "", "application/json");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401) << none->body;
  request("POST", "/v1/admin/reload", "acme", "", 403);
  request("POST", "/v1/admin/reload", "alice", "", 403);
  request("POST", "/v1/admin/reload", "bob-phone", "", 403);
  EXPECT_EQ(ctl("ctl-provider", "acme", {"reload"}), 1);
  EXPECT_THAT(ctl_err("ctl-provider"), HasSubstr("403"));
  EXPECT_EQ(ctl("ctl-anonymous", "", {"reload"}), 1);
  EXPECT_THAT(ctl_err("ctl-anonymous"), HasSubstr("401"));
  // None of them reloaded anything, not even a refused one.
  EXPECT_EQ(metric("segx_config_reloads_total{result=\"applied\"}"), 0);
  EXPECT_EQ(metric("segx_config_reloads_total{result=\"refused\"}"), 0);
  EXPECT_EQ(metric("segx_config_generation"), 1);
  // The route is in the OpenAPI document, for admins.
  json doc = request("GET", "/v1/openapi.json", "", "", 200);
  ASSERT_TRUE(doc["paths"].contains("/v1/admin/reload"));
  EXPECT_THAT(doc["paths"]["/v1/admin/reload"]["post"]["description"].get<std::string>(),
              HasSubstr("Roles: admin."));
}

TEST_F(Reload, ARefusedReloadNamesItsErrorsAndChangesNothing) {
  const fs::path config = write_config();
  start(config);
  const double before = received_beyond(0);
  const double classified = metric("segx_profile_packets_total{profile=\"all\"}");
  const json profiles_before = profiles();
  const std::string good = config_text();

  // A value out of range: the answer carries the file, line and column, like --check-config.
  rewrite("segment: {packets: 64}", "segment: {packets: 70000}");
  json j = request("POST", "/v1/admin/reload", "root", "", 422);
  EXPECT_EQ(j["result"], "refused") << j.dump();
  EXPECT_EQ(j["generation"], 1);
  ASSERT_EQ(j["errors"].size(), 1u) << j.dump();
  EXPECT_EQ(j["errors"][0]["file"], config.string());
  EXPECT_GT(j["errors"][0]["line"].get<int>(), 0);
  EXPECT_EQ(j["errors"][0]["key"], "profiles[0].segment.packets");
  EXPECT_THAT(j["errors"][0]["message"].get<std::string>(),
              HasSubstr(config.string() + ":" + std::to_string(j["errors"][0]["line"].get<int>())));

  // A YAML syntax error, by SIGHUP: the log says why, with file:line.
  write_file(config, good + "profiles: [\n");
  hangup_and_wait("reload refused", 2);
  EXPECT_THAT(proc_->err(), HasSubstr("SIGHUP: reload refused, the running configuration stays "
                                      "(generation 1): 1 error(s) in " +
                                      config.string() + ", first: " + config.string() + ":"));

  // Keys that need a restart: a port's and EAL's, each named; segxctl exits 1 and prints them.
  write_file(config, good);
  rewrite("  - {name: in, device: net_pcap0}", "  - {name: in, device: net_pcap0, mtu: 9000}");
  rewrite("  memory: 512MiB", "  memory: 640MiB");
  EXPECT_EQ(ctl("ctl-refused", "root", {"reload"}), 1) << ctl_err("ctl-refused");
  EXPECT_THAT(ctl_out("ctl-refused"), HasSubstr("reload refused; generation 1 keeps running"));
  EXPECT_THAT(ctl_out("ctl-refused"), HasSubstr("eal.memory changed: it needs a restart"));
  EXPECT_THAT(ctl_out("ctl-refused"), HasSubstr("ports[0].mtu changed: it needs a restart"));
  EXPECT_EQ(ctl("ctl-refused-json", "root", {"--json", "reload"}), 1);
  json k = json::parse(ctl_out("ctl-refused-json"));
  ASSERT_EQ(k["errors"].size(), 2u) << k.dump();
  EXPECT_EQ(k["errors"][0]["key"], "eal.memory");
  EXPECT_EQ(k["errors"][1]["key"], "ports[0].mtu");
  EXPECT_THAT(proc_->err(), HasSubstr("changed keys need a restart: eal.memory, ports[0].mtu"));

  // Nothing changed: generation, profiles, and traffic still flows.
  EXPECT_EQ(metric("segx_config_generation"), 1);
  EXPECT_EQ(metric("segx_config_reloads_total{result=\"refused\"}"), 4);
  EXPECT_EQ(metric("segx_config_reloads_total{result=\"applied\"}"), 0);
  EXPECT_EQ(profiles(), profiles_before);
  received_beyond(before);
  received_beyond(metric("segx_received_packets_total"));
  // Still classified into the profile it ran with, whose counters go on from where they were.
  EXPECT_GE(metric("segx_profile_packets_total{profile=\"all\"}"), classified);
  EXPECT_GT(classified, 0);
  EXPECT_THAT(proc_->err(), Not(HasSubstr("configuration reloaded")));
}

TEST_F(Reload, WhatTheDataPlaneRefusesChangesNothingElse) {
  // No profile is metered at start, so metering's tables were never made: the data plane
  // refuses the first metered profile, and the market and the API keep what they had.
  const fs::path config = write_config();
  rewrite("    metered: true\n", "    metered: false\n");
  start(config);
  rewrite("    metered: false\n", "    metered: true\n");
  json j = request("POST", "/v1/admin/reload", "root", "", 422);
  EXPECT_EQ(j["generation"], 1);
  ASSERT_EQ(j["errors"].size(), 1u) << j.dump();
  EXPECT_THAT(j["errors"][0]["message"].get<std::string>(),
              HasSubstr("restart segx to add the first metered profile"));
  EXPECT_EQ(metric("segx_config_generation"), 1);
  EXPECT_EQ(metric("segx_config_reloads_total{result=\"refused\"}"), 1);
  json p = profiles();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0]["for_sale"], false);
  // Nothing for sale: the market still refuses a lot of the profile.
  request("POST", "/v1/lots", "acme",
          R"({"profile": "all", "closes_in": "1h", "start_in": "2h", "duration": "1h"})", 422);
}

TEST_F(Reload, SighupAndSegxctlApplyALiveChange) {
  const fs::path config = write_config();
  start(config);
  const double before = received_beyond(0);
  EXPECT_EQ(metric("segx_config_generation"), 1);

  // The same file again: applied, nothing changed, the generation stays.
  EXPECT_EQ(ctl("ctl-same", "root", {"reload"}), 0) << ctl_err("ctl-same");
  EXPECT_THAT(ctl_out("ctl-same"), HasSubstr("reload applied: generation 1; nothing changed"));

  // A profile's segment rule, by SIGHUP: generation 2, and the data plane took it: the
  // profile's open segments (traffic never stops) closed with the reason reload.
  const std::string reload_closes =
      "segx_profile_segments_total{profile=\"all\",reason=\"reload\"}";
  EXPECT_EQ(metric(reload_closes), 0);
  rewrite("segment: {packets: 64}", "segment: {packets: 16}");
  hangup_and_wait("configuration reloaded", 2);
  EXPECT_THAT(proc_->err(),
              HasSubstr("SIGHUP: configuration reloaded (generation 2): profiles changed all"));
  EXPECT_EQ(metric("segx_config_generation"), 2);
  EXPECT_EQ(metric("segx_config_reloads_total{result=\"applied\"}"), 2);
  const double closed = settled(reload_closes);
  EXPECT_GT(closed, 0);

  // A new profile and a new grant, by segxctl: generation 3, and the API shows the profile.
  rewrite("    output: out\nsubscribers:\n",
          "    output: out\n  - {name: spare, metered: true, match: {dst_port: 7}, output: out}\n"
          "subscribers:\n  - {id: dave, prefixes: [203.0.113.0/24]}\n");
  EXPECT_EQ(ctl("ctl-applied", "root", {"reload"}), 0) << ctl_err("ctl-applied");
  EXPECT_THAT(ctl_out("ctl-applied"),
              HasSubstr("reload applied: generation 3; profiles added spare; subscribers"));
  EXPECT_EQ(metric("segx_config_generation"), 3);
  EXPECT_EQ(metric("segx_config_reloads_total{result=\"applied\"}"), 3);
  EXPECT_EQ(metric("segx_config_reloads_total{result=\"refused\"}"), 0);
  bool spare = false;
  for (const auto& p : profiles())
    spare = spare || p["name"] == "spare";
  EXPECT_TRUE(spare);
  // "all" did not change: its flows kept their segments.
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(settled(reload_closes), closed);

  // The JSON answer of the route itself: what changed, by kind.
  rewrite("  - {name: spare, metered: true, match: {dst_port: 7}, output: out}\n", "");
  json j = request("POST", "/v1/admin/reload", "root", "", 200);
  EXPECT_EQ(j["result"], "applied");
  EXPECT_EQ(j["generation"], 4);
  EXPECT_EQ(j["changed"]["profiles"]["removed"], json::array({"spare"}));
  EXPECT_EQ(j["changed"]["subscribers"], false);
  received_beyond(before);
}

}  // namespace
}  // namespace segx::test
