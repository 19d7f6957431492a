// The REST API of a running segx over real HTTP(S) on loopback: every core route, each error
// class, limits, the OpenAPI document probed against the server, metrics, a second segx on
// the same port, segxctl end to end (a whole market cycle), and TLS with a self-signed
// certificate. segx runs on pcap virtual devices with its own directory and file prefix.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <regex>
#include <thread>

#include "api_run.hpp"

namespace segx::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using json = nlohmann::json;

struct ThreadInfo {
  std::string name;  // /proc/PID/task/TID/comm
  std::string cpus;  // Cpus_allowed_list of /proc/PID/task/TID/status
};

// The threads of a process.
std::vector<ThreadInfo> threads_of(pid_t pid) {
  std::vector<ThreadInfo> out;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    ThreadInfo i;
    i.name = read_file(t.path() / "comm");
    while (!i.name.empty() && i.name.back() == '\n')
      i.name.pop_back();
    static const std::regex cpus("Cpus_allowed_list:\\s*(\\S+)");
    std::smatch m;
    const std::string status = read_file(t.path() / "status");
    if (std::regex_search(status, m, cpus)) i.cpus = m[1];
    out.push_back(i);
  }
  return out;
}

TEST_F(ApiRun, CoreRoutesAndEveryErrorClassOverHttp) {
  start(write_config());
  // api.threads unset: one thread per CPU the control plane may use, and after EAL init that
  // is main lcore 0's one CPU.
  EXPECT_THAT(proc_->err(), HasSubstr("(6 tokens, 1 thread)"));
  const auto threads = threads_of(proc_->pid());
  std::string listing;
  for (const auto& t : threads)
    listing += t.name + " on " + t.cpus + "; ";
  const auto named = [&](const std::string& n) {
    return std::count_if(threads.begin(), threads.end(),
                         [&](const ThreadInfo& t) { return t.name == n; });
  };
  EXPECT_EQ(named("segx-api"), 1) << listing;
  EXPECT_EQ(named("segx-api-wait"), 2) << listing;
  EXPECT_EQ(named("segx-ledger"), 1) << listing;
  // Only the data-plane lcore (lcore 1) runs on CPU 1: every thread of segx's own (the main
  // thread, settlement, the ledger's writer, the API's, metrics) stays on main lcore 0's.
  for (const auto& t : threads) {
    if (t.name.rfind("segx", 0) == 0) {
      EXPECT_EQ(t.cpus, "0") << t.name << "; all: " << listing;
    }
  }
  json h = request("GET", "/healthz", "", "", 200);
  EXPECT_EQ(h["status"], "ok");

  json lot = request("POST", "/v1/lots", "acme",
                     R"({"profile": "all", "closes_in": "1h", "start_in": "2h", "duration": "30m",
                         "min_rate": "1Mbit/s", "max_rate": 8000000, "reserve": 10})",
                     201);
  const std::string id = std::to_string(lot["id"].get<uint64_t>());
  json lots = request("GET", "/v1/lots", "alice", "", 200);
  ASSERT_EQ(lots["lots"].size(), 1u);
  EXPECT_TRUE(lots["lots"][0].contains("provider_reputation"));
  EXPECT_EQ(lots["lots"][0]["min_rate"], 1'000'000);
  json bid =
      request("POST", "/v1/lots/" + id + "/bids", "alice",
              R"({"price": 120, "members": ["ip:10.0.0.0/8"], "payment_token": "tok_visa"})", 201);
  EXPECT_TRUE(bid["id"].is_number_unsigned());
  request("POST", "/v1/lots/" + id + "/bids", "carol",
          R"({"price": 90, "members": ["ip:192.0.2.0/24"], "payment_token": "tok_visa"})", 201);
  // A recipient never sees another's sealed bid; the provider sees all.
  json seen = request("GET", "/v1/lots/" + id + "/bids", "carol", "", 200);
  ASSERT_EQ(seen["bids"].size(), 1u);
  EXPECT_EQ(seen["bids"][0]["bidder"], "carol");
  EXPECT_EQ(request("GET", "/v1/lots/" + id + "/bids", "acme", "", 200)["bids"].size(), 2u);
  // A device bids for its recipient only.
  json by_device = request("POST", "/v1/lots/" + id + "/bids", "bob-phone",
                           R"({"price": 80, "members": ["ip:198.51.100.0/24"],
                               "payment_token": "tok_visa"})",
                           201);
  EXPECT_EQ(by_device["bidder"], "bob");
  EXPECT_EQ(by_device["device"], "bob-phone");
  EXPECT_EQ(request("GET", "/v1/bids", "bob-phone", "", 200)["bids"].size(), 1u);

  // Error classes.
  request("GET", "/v1/lots", "", "", 401);
  request("GET", "/v1/lots", "mallory", "", 401);
  request("POST", "/v1/lots/" + id + "/bids", "acme",
          R"({"price": 1, "members": ["ip:10.0.0.0/8"]})", 403);
  request("POST", "/v1/lots", "alice", "{}", 403);
  request("GET", "/v1/leases/999", "alice", "", 404);
  request("GET", "/v1/no-such-thing", "alice", "", 404);
  request("PUT", "/v1/lots", "acme", "{}", 405);
  json bad = request("POST", "/v1/lots/" + id + "/bids", "carol", "{\"price\": 1,", 400);
  EXPECT_THAT(bad["detail"].get<std::string>(), HasSubstr("JSON"));
  request("POST", "/v1/lots/" + id + "/bids", "carol", R"({"price": "1", "members": []})", 422);
  json big = request("POST", "/v1/lots/" + id + "/bids", "carol",
                     "{\"pad\": \"" + std::string(4096, 'x') + "\"}", 413);
  EXPECT_EQ(big["error"], "payload_too_large");

  // The per-token rate limit: a burst well above 30 per second meets 429, with JSON.
  int limited = 0;
  for (int i = 0; i < 120 && limited == 0; ++i) {
    auto c = client();
    auto r = c.Get("/v1/whoami", {{"Authorization", "Bearer carol-t"}});
    ASSERT_TRUE(r);
    if (r->status == 429) {
      ++limited;
      EXPECT_EQ(json::parse(r->body)["error"], "rate_limited");
      EXPECT_FALSE(r->get_header_value("Retry-After").empty());
    }
  }
  EXPECT_EQ(limited, 1);
  // Other tokens are not affected.
  request("GET", "/v1/whoami", "alice", "", 200);

  // The OpenAPI document names every route, and the server has every route it names:
  // probing each with placeholder ids never gives "no route" or 405.
  json doc = request("GET", "/v1/openapi.json", "", "", 200);
  size_t probed = 0;
  for (const auto& [path, ops] : doc["paths"].items()) {
    const std::string concrete =
        std::regex_replace(path, std::regex("\\{sha256\\}"), std::string(64, '0'));
    const std::string p = std::regex_replace(concrete, std::regex("\\{id\\}"), "1");
    for (const auto& [method, op] : ops.items()) {
      auto c = client();
      httplib::Headers hd{{"Authorization", "Bearer root-t"}};
      httplib::Result r = method == "get"    ? c.Get(p.c_str(), hd)
                          : method == "post" ? c.Post(p.c_str(), hd, "{}", "application/json")
                                             : c.Delete(p.c_str(), hd);
      ASSERT_TRUE(r) << method << " " << p;
      EXPECT_NE(r->status, 405) << method << " " << p;
      EXPECT_EQ(r->body.find("no route"), std::string::npos) << method << " " << p;
      EXPECT_NE(r->status, 500) << method << " " << p << ": " << r->body;
      ++probed;
      // The admin's own probe must not trip the limit it is measuring around.
      std::this_thread::sleep_for(40ms);
    }
  }
  EXPECT_GE(probed, 25u);

  // Metrics: API requests by route and code, the market's and the ledger's families.
  ASSERT_NE(metrics_port_, 0);
  httplib::Client m("127.0.0.1", metrics_port_);
  auto scrape = m.Get("/metrics");
  ASSERT_TRUE(scrape);
  EXPECT_THAT(scrape->body, HasSubstr("segx_api_requests_total{route=\"/v1/lots/{id}/bids\","
                                      "method=\"POST\",code=\"201\"} 3"));
  EXPECT_THAT(scrape->body, HasSubstr("code=\"429\""));
  EXPECT_THAT(scrape->body, HasSubstr("segx_market_lots_total 1"));
  EXPECT_THAT(scrape->body, HasSubstr("segx_market_bids_total 3"));
  EXPECT_THAT(scrape->body, HasSubstr("segx_ledger_events_total"));

  // A second segx cannot take the same API port (no SO_REUSEPORT): it stops at start-up.
  std::string second = read_file(dir_ / "segx.yaml");
  second = std::regex_replace(second, std::regex("listen: 127.0.0.1:0\\n    body_limit"),
                              "listen: 127.0.0.1:" + std::to_string(port_) + "\n    body_limit");
  second = std::regex_replace(second, std::regex("file_prefix: " + prefix_),
                              "file_prefix: " + prefix_ + "-b");
  second = std::regex_replace(second, std::regex("ledger.db"), "ledger2.db");
  second = std::regex_replace(second, std::regex("out.pcap"), "out2.pcap");
  write_file(dir_ / "second.yaml", second);
  Process p2({segx_binary().string(), "--config", (dir_ / "second.yaml").string()}, dir_.path(),
             "second");
  EXPECT_EQ(p2.wait(120s), 3) << p2.out() << p2.err();
  EXPECT_THAT(p2.err(), HasSubstr("market.api.listen"));
  remove_dpdk_runtime(prefix_ + "-b");
  request("GET", "/healthz", "", "", 200);
}

TEST_F(ApiRun, SegxctlRunsAWholeMarketCycle) {
  start(write_config());
  // Unreachable segx and a refused command have their own exit codes and clear messages.
  EXPECT_EQ(ctl("unreachable", "alice", {"lots", "list"}, "http://127.0.0.1:1"), 3);
  EXPECT_THAT(ctl_err("unreachable"), HasSubstr("cannot reach segx"));
  EXPECT_EQ(ctl("usage", "alice", {"lots", "frobnicate"}), 2);

  ASSERT_EQ(ctl("create", "acme",
                {"--json", "lots", "create", "--profile", "all", "--closes-in", "8s", "--start-in",
                 "9s", "--duration", "2s", "--max-rate", "50Mbit/s"}),
            0)
      << ctl_err("create");
  const json lot = json::parse(ctl_out("create"));
  const std::string id = std::to_string(lot["id"].get<uint64_t>());
  EXPECT_EQ(ctl("refused", "acme", {"bid", id, "--price", "5", "--member", "ip:10.0.0.0/8"}), 1);
  EXPECT_THAT(ctl_err("refused"), HasSubstr("403 forbidden"));

  ASSERT_EQ(ctl("bid", "alice",
                {"bid", id, "--price", "300", "--member", "ip:10.0.0.0/8", "--payment-token",
                 "tok_visa"}),
            0)
      << ctl_err("bid");
  EXPECT_THAT(ctl_out("bid"), HasSubstr("durable in the ledger"));
  // The group: bob organises, carol and bob pledge; a device member is sponsored.
  ASSERT_EQ(ctl("group", "bob",
                {"--json", "group", "create", id, "--price", "500", "--member",
                 "bob=ip:198.51.100.0/24", "--member", "carol=ip:192.0.2.0/24"}),
            0)
      << ctl_err("group");
  const std::string group = std::to_string(json::parse(ctl_out("group"))["id"].get<uint64_t>());
  ASSERT_EQ(ctl("pledge-b", "bob",
                {"group", "pledge", group, "--amount", "250", "--payment-token", "tok_visa"}),
            0)
      << ctl_err("pledge-b");
  ASSERT_EQ(ctl("pledge-c", "carol",
                {"group", "pledge", group, "--amount", "250", "--payment-token", "tok_decline"}),
            0)
      << ctl_err("pledge-c");
  EXPECT_THAT(ctl_out("pledge-c"), HasSubstr("pledged 500"));

  ASSERT_EQ(ctl("list", "alice", {"lots", "list"}), 0);
  EXPECT_THAT(ctl_out("list"), HasSubstr("PROVIDER REPUTATION"));
  EXPECT_THAT(ctl_out("list"), HasSubstr("no ratings"));
  // Environment instead of flags.
  ASSERT_EQ(run({"/usr/bin/env", "SEGX_URL=http://127.0.0.1:" + std::to_string(port_),
                 "SEGX_TOKEN=alice-t", segxctl_binary().string(), "--json", "lots", "list"},
                dir_.path(), "env"),
            0);
  EXPECT_EQ(json::parse(read_file(dir_ / "env.out"))["lots"].size(), 1u);

  // The group (500, capped by 500 pledged) beats alice (300) and pays her price, split
  // between bob (accepted) and carol (declined); its block runs and finishes.
  json leases = wait_until("/v1/leases", "bob", [](const json& j) {
    return j["leases"].size() == 1 && j["leases"][0]["state"] == "finished";
  });
  ASSERT_EQ(leases["leases"].size(), 1u);
  const json& lease = leases["leases"][0];
  EXPECT_EQ(lease["unit_price"], 300);
  const std::string lease_id = std::to_string(lease["id"].get<uint64_t>());
  ASSERT_EQ(ctl("leases", "root", {"--json", "leases"}), 0);
  json all = json::parse(ctl_out("leases"))["leases"][0]["charges"];
  ASSERT_EQ(all.size(), 2u);
  std::set<std::string> results{all[0]["result"], all[1]["result"]};
  EXPECT_EQ(results, (std::set<std::string>{"accepted", "declined"}));
  ASSERT_EQ(ctl("leases-table", "bob", {"leases"}), 0);
  EXPECT_THAT(ctl_out("leases-table"), HasSubstr("finished"));

  // Both sides rate: bob through his device, the provider notes carol; alice (no party)
  // cannot, nor tell that the lease exists.
  ASSERT_EQ(ctl("rate-b", "bob-phone", {"rate", lease_id, "--satisfied", "--score", "5"}), 0)
      << ctl_err("rate-b");
  EXPECT_EQ(ctl("rate-a", "alice", {"rate", lease_id, "--satisfied"}), 1);
  EXPECT_THAT(ctl_err("rate-a"), HasSubstr("404 not_found: no lease " + lease_id));
  ASSERT_EQ(ctl("note", "acme", {"rate", lease_id, "--recipient", "carol", "--note", "declined"}),
            0)
      << ctl_err("note");
  ASSERT_EQ(ctl("rep", "alice", {"--json", "reputation", "acme"}), 0);
  json rep = json::parse(ctl_out("rep"));
  EXPECT_EQ(rep["as_provider"]["count"], 1);
  EXPECT_EQ(rep["as_provider"]["positive"], 1);
  ASSERT_EQ(ctl("rep-c", "alice", {"reputation", "carol"}), 0);
  EXPECT_THAT(ctl_out("rep-c"), HasSubstr("0% of 1"));
  ASSERT_EQ(ctl("list-after", "alice", {"lots", "list"}), 0);
  EXPECT_THAT(ctl_out("list-after"), HasSubstr("100% of 1"));

  ASSERT_EQ(ctl("verify", "acme", {"ledger", "verify"}), 0) << ctl_err("verify");
  EXPECT_THAT(ctl_out("verify"), HasSubstr("chain intact"));

  // An admin issues a token; it works at once and after a restart (it is in the ledger).
  ASSERT_EQ(ctl("issue", "root",
                {"--json", "token", "issue", "--principal", "dave", "--role", "recipient"}),
            0);
  const std::string token = json::parse(ctl_out("issue"))["token"];
  std::vector<std::string> whoami{segxctl_binary().string(),
                                  "--url",
                                  "http://127.0.0.1:" + std::to_string(port_),
                                  "--token",
                                  token,
                                  "whoami"};
  ASSERT_EQ(run(whoami, dir_.path(), "whoami"), 0);
  EXPECT_THAT(read_file(dir_ / "whoami.out"), HasSubstr("dave (recipient)"));
  proc_->signal(SIGTERM);
  ASSERT_EQ(proc_->wait(120s), 0) << proc_->out() << proc_->err();
  start(dir_ / "segx.yaml", "segx-again");
  whoami[2] = "http://127.0.0.1:" + std::to_string(port_);
  ASSERT_EQ(run(whoami, dir_.path(), "whoami-again"), 0) << read_file(dir_ / "whoami-again.err");
}

TEST_F(ApiRun, ServesHttpsWithAConfiguredCertificate) {
  const std::string url = start(write_config(tls_config()));
  EXPECT_THAT(url, ::testing::StartsWith("https://"));
  httplib::SSLClient tls("127.0.0.1", port_);
  tls.set_ca_cert_path((dir_ / "cert.pem").c_str());
  tls.enable_server_certificate_verification(true);
  auto r = tls.Get("/v1/whoami", {{"Authorization", "Bearer alice-t"}});
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["principal"], "alice");
  // Plain HTTP to the TLS port gets no answer.
  auto c = client();
  c.set_read_timeout(5);
  auto plain = c.Get("/healthz");
  EXPECT_TRUE(!plain || plain->status != 200);
  // segxctl verifies the certificate with --cacert, and refuses it without.
  EXPECT_EQ(ctl("ctl-tls", "alice", {"--cacert", (dir_ / "cert.pem").string(), "whoami"}, url), 0)
      << ctl_err("ctl-tls");
  EXPECT_THAT(ctl_out("ctl-tls"), HasSubstr("alice (recipient)"));
  EXPECT_EQ(ctl("ctl-untrusted", "alice", {"whoami"}, url), 3);
}

}  // namespace
}  // namespace segx::test
