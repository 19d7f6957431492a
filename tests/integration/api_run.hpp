#pragma once
// The fixture of tests that drive segx's REST API: a pcap-in, pcap-out appliance selling
// profile "all" as acme, with tokens "<principal>-t" for root (admin), acme (provider), alice,
// bob, carol (recipients) and bob-phone (bob's device), its API on a port the kernel picks.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <array>
#include <chrono>
#include <csignal>
#include <functional>
#include <regex>
#include <thread>

#include "segx_run.hpp"
#include "support.hpp"

namespace segx::test {

using namespace std::chrono_literals;
using json = nlohmann::json;

inline std::string sha256_hex(const std::string& token) {
  // The test computes hashes the way an operator would: with sha256sum.
  TempDir d;
  write_file(d / "t", token);
  EXPECT_EQ(run({"/bin/sh", "-c",
                 "sha256sum '" + (d / "t").string() + "' > '" + (d / "h").string() + "'"},
                d.path(), "sha"),
            0);
  std::string h = read_file(d / "h");
  return h.substr(0, 64);
}

inline fs::path segxctl_binary() {
  const char* p = std::getenv("SEGXCTL_BIN");
  return p ? fs::path(p) : segx_binary().parent_path().parent_path() / "segxctl" / "segxctl";
}

// Who holds which addresses in these tests' configuration: a bid names only its bidder's.
inline const std::vector<std::pair<std::string, std::string>> test_grants = {
    {"alice", "10.0.0.0/8"}, {"bob", "198.51.100.0/24"}, {"carol", "192.0.2.0/24"}};

inline std::string subscribers_yaml() {
  std::string y = "subscribers:\n";
  for (const auto& [who, prefix] : test_grants)
    y += "  - {id: " + who + ", prefixes: [" + prefix + "]}\n";
  return y;
}

class ApiRun : public SegxRun {
 protected:
  // A pcap-in, pcap-out appliance selling profile "all" as acme, its API on a port the
  // kernel picks. `api_extra` goes under market.api.
  fs::path write_config(const std::string& api_extra = "") {
    generate(400, 7);
    std::string tokens;
    for (const auto& [who, role, owner] :
         std::vector<std::array<std::string, 3>>{{"root", "admin", ""},
                                                 {"acme", "provider", ""},
                                                 {"alice", "recipient", ""},
                                                 {"bob", "recipient", ""},
                                                 {"carol", "recipient", ""},
                                                 {"bob-phone", "device", "bob"}}) {
      tokens += "      - {principal: " + who + ", role: " + role +
                (owner.empty() ? "" : ", owner: " + owner) + ", sha256: " + sha256_hex(who + "-t") +
                "}\n";
    }
    const std::string text =
        eal_section({"net_pcap0,rx_pcap=" + (dir_ / "in.pcap").string() + ",infinite_rx=1",
                     "net_pcap1,tx_pcap=" + (dir_ / "out.pcap").string()}) +
        "ports:\n  - {name: in, device: net_pcap0}\n  - {name: out, device: net_pcap1, "
        "rx_queues: 0}\n" +
        pipeline_section("    action: forward\n    output: out\n") +
        "providers:\n  id: acme\nprofiles:\n  - name: all\n    metered: true\n    segment: "
        "{packets: 64}\n    output: out\n" +
        subscribers_yaml() + "market:\n  ledger: sqlite:" + (dir_ / "ledger.db").string() +
        "\n  api:\n    listen: 127.0.0.1:0\n    body_limit: 2KiB\n"
        "    rate_limit: 30\n" +
        api_extra + "    tokens:\n" + tokens;
    write_file(dir_ / "segx.yaml", text);
    return dir_ / "segx.yaml";
  }

  // A self-signed certificate for 127.0.0.1 (dir/cert.pem, dir/key.pem); returns the
  // market.api lines that make the API serve HTTPS with it.
  std::string tls_config() {
    EXPECT_EQ(run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                   (dir_ / "key.pem").string(), "-out", (dir_ / "cert.pem").string(), "-days", "1",
                   "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
                  dir_.path(), "openssl"),
              0)
        << read_file(dir_ / "openssl.err");
    return "    tls:\n      cert: " + (dir_ / "cert.pem").string() +
           "\n      key: " + (dir_ / "key.pem").string() + "\n";
  }

  // Starts segx and waits for its API; returns the base URL segx printed.
  std::string start(const fs::path& config, const std::string& name = "segx") {
    proc_ = std::make_unique<Process>(segx(config, {"--duration", "240"}), dir_.path(), name);
    EXPECT_TRUE(proc_->wait_for_output("  api: ", 120s, /*stderr=*/true))
        << proc_->out() << proc_->err();
    std::smatch m;
    const std::string out = proc_->err();
    EXPECT_TRUE(std::regex_search(out, m, std::regex("api: (https?://[0-9.]+:([0-9]+))/v1")))
        << out;
    port_ = std::stoi(m[2].str());
    std::smatch mm;
    if (std::regex_search(out, mm, std::regex("metrics: http://127.0.0.1:([0-9]+)/metrics")))
      metrics_port_ = std::stoi(mm[1].str());
    return m[1].str();
  }

  void TearDown() override {
    if (proc_) {
      proc_->signal(SIGTERM);
      EXPECT_EQ(proc_->wait(120s), 0) << proc_->out() << proc_->err();
    }
    SegxRun::TearDown();
  }

  httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30);
    return c;
  }
  json request(const std::string& method, const std::string& path, const std::string& who,
               const std::string& body, int expect) {
    auto c = client();
    httplib::Headers h;
    if (!who.empty()) h.emplace("Authorization", "Bearer " + who + "-t");
    httplib::Result r = method == "GET"    ? c.Get(path.c_str(), h)
                        : method == "POST" ? c.Post(path.c_str(), h, body, "application/json")
                        : method == "PUT"  ? c.Put(path.c_str(), h, body, "application/json")
                                           : c.Delete(path.c_str(), h);
    EXPECT_TRUE(r) << method << " " << path;
    if (!r) return json();
    EXPECT_EQ(r->status, expect) << method << " " << path << ": " << r->body;
    EXPECT_THAT(r->get_header_value("Content-Type"), ::testing::HasSubstr("application/json"))
        << path;
    json j = json::parse(r->body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r->body;
    if (expect >= 400) {
      EXPECT_TRUE(j.contains("error") && j.contains("detail")) << r->body;
    }
    return j;
  }

  // segxctl with the given arguments; returns its exit code, output in dir/<name>.out.
  int ctl(const std::string& name, const std::string& who, std::vector<std::string> args,
          const std::string& url = "") {
    std::vector<std::string> argv{segxctl_binary().string(), "--url",
                                  url.empty() ? "http://127.0.0.1:" + std::to_string(port_) : url};
    if (!who.empty()) {
      argv.push_back("--token");
      argv.push_back(who + "-t");
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, dir_.path(), name, 60s);
  }
  std::string ctl_out(const std::string& name) { return read_file(dir_ / (name + ".out")); }
  std::string ctl_err(const std::string& name) { return read_file(dir_ / (name + ".err")); }

  // Polls until `done` holds for the JSON at `path`; the deadline only guards a hang.
  json wait_until(const std::string& path, const std::string& who,
                  const std::function<bool(const json&)>& done) {
    for (int i = 0; i < 600; ++i) {
      json j = request("GET", path, who, "", 200);
      if (done(j)) return j;
      std::this_thread::sleep_for(200ms);
    }
    ADD_FAILURE() << "gave up waiting on " << path;
    return json();
  }

  std::unique_ptr<Process> proc_;
  int port_ = 0;
  int metrics_port_ = 0;
};

}  // namespace segx::test
