// The API tried as a hostile client with no token would (issue 15), over real sockets against a
// running segx: slow clients hold no worker and are closed at their deadline while /healthz
// answers; an endless chunked body and a gzip bomb are refused with segx's resident memory
// barely moving; an anonymous flood meets 429 with Retry-After; weak TLS suites fail the
// handshake. Every loop is bounded in count and time.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include "api_run.hpp"
#include "raw_http.hpp"

namespace segx::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

class ApiLimits : public ApiRun {
 protected:
  // A field of segx's /proc/<pid>/status in KiB (VmRSS: resident now; VmHWM: the peak).
  long status_kib(const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(proc_->pid()) + "/status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
    ADD_FAILURE() << "no " << field << " for segx";
    return 0;
  }
  // Makes VmHWM the current VmRSS, so that it measures the peak from now on.
  void reset_peak() {
    std::ofstream("/proc/" + std::to_string(proc_->pid()) + "/clear_refs") << "5";
  }
  std::string scrape() {
    httplib::Client m("127.0.0.1", metrics_port_);
    auto r = m.Get("/metrics");
    return r ? r->body : std::string();
  }
  // The scrape's line for `series` ("name{labels}"), or "(none)": a failure shows that line,
  // not the whole scrape.
  std::string series(const std::string& name) {
    const std::string text = scrape();
    const size_t at = text.find("\n" + name + " ");
    if (at == std::string::npos) return "(none)";
    return text.substr(at + 1, text.find('\n', at + 1) - at - 1);
  }
  std::string get(const std::string& path, const std::string& headers = "") {
    return "GET " + path + " HTTP/1.1\r\nHost: segx\r\n" + headers + "\r\n";
  }
};

// Issue 15, item 1: four sockets sending one header line every 2 s held all four workers.
TEST_F(ApiLimits, SlowClientsHoldNoWorkerAndAreClosedAtTheirDeadline) {
  start(write_config());  // 4 threads; default deadlines and caps (16 per address)
  constexpr int slow_count = 16;
  std::vector<std::unique_ptr<RawClient>> slow;
  const auto began = Clock::now();
  for (int i = 0; i < slow_count; ++i) {
    slow.push_back(std::make_unique<RawClient>("127.0.0.1", port_));
    ASSERT_TRUE(slow.back()->connected());
    ASSERT_TRUE(slow.back()->send("GET /healthz HTTP/1.1\r\n"));
  }
  // A jthread: stopped and joined however the test leaves this scope.
  std::jthread dribble([&](std::stop_token stop) {
    for (int i = 0; i < 40 && !stop.stop_requested(); ++i) {
      for (auto& c : slow)
        c->send("X-Slow-" + std::to_string(i) + ": 1\r\n", 100ms);
      std::this_thread::sleep_for(500ms);
    }
  });
  std::this_thread::sleep_for(300ms);
  // One more from the same address is past market.api.max_connections_per_address.
  RawClient extra("127.0.0.1", port_);
  EXPECT_TRUE(extra.closed_within(3s)) << "a 17th connection from one address stays open";
  // Another client is answered within a second, every time, while the slow ones hold their
  // connections.
  for (int i = 0; i < 3; ++i) {
    RawClient probe("127.0.0.1", port_, "127.0.0.2");
    const auto t0 = Clock::now();
    ASSERT_TRUE(probe.send(get("/healthz")));
    auto r = probe.response(1s);
    ASSERT_TRUE(r) << "/healthz did not answer within 1 s while " << slow_count
                   << " clients sent headers slowly (probe " << i << ")";
    EXPECT_EQ(r->status, 200);
    std::printf("/healthz answered in %.1f ms with %d slow clients connected\n",
                std::chrono::duration<double, std::milli>(Clock::now() - t0).count(), slow_count);
    std::this_thread::sleep_for(500ms);
  }
  // The slow ones: 408 at the header deadline (5 s), then closed.
  int timed_out = 0;
  for (auto& c : slow) {
    auto r = c->response(15s);
    ASSERT_TRUE(r) << "a slow client was never answered";
    EXPECT_EQ(r->status, 408);
    EXPECT_THAT(r->body, HasSubstr("market.api.header_timeout"));
    timed_out += r->status == 408;
    EXPECT_TRUE(c->closed_within(5s));
  }
  const double took = std::chrono::duration<double>(Clock::now() - began).count();
  dribble.request_stop();
  std::printf("%d slow clients got 408 and were closed after %.1f s\n", timed_out, took);
  EXPECT_GE(took, 4.5) << "closed before the 5 s deadline";
  EXPECT_EQ(series("segx_http_connections_refused_total{server=\"api\",reason=\"max_connections_"
                   "per_address\"}"),
            "segx_http_connections_refused_total{server=\"api\",reason=\"max_connections_per_"
            "address\"} 1");
  EXPECT_EQ(series("segx_http_requests_refused_total{server=\"api\",reason=\"header_timeout\"}"),
            "segx_http_requests_refused_total{server=\"api\",reason=\"header_timeout\"} " +
                std::to_string(slow_count));
}

// Issue 15, item 2: a chunked body was read whole before the 413, and a gzip body inflated
// before it was refused.
TEST_F(ApiLimits, EndlessAndInflatingBodiesLeaveMemoryFlat) {
  fs::path config = write_config();
  std::string text = read_file(config);
  text = std::regex_replace(text, std::regex("body_limit: 2KiB"), "body_limit: 64KiB");
  write_file(config, text);
  start(config);
  // A gzip bomb: 56 MiB of zeros in about 57 KB, under the 64 KiB body limit.
  ASSERT_EQ(run({"/bin/sh", "-c",
                 "head -c 58720256 /dev/zero | gzip -9 > '" + (dir_ / "bomb.gz").string() + "'"},
                dir_.path(), "gzip"),
            0);
  const std::string bomb = read_file(dir_ / "bomb.gz");
  ASSERT_LT(bomb.size(), 64u * 1024);
  {
    RawClient warm("127.0.0.1", port_);
    ASSERT_TRUE(warm.send(get("/healthz")));
    ASSERT_TRUE(warm.response(5s));
  }
  reset_peak();
  const long before = status_kib("VmRSS");

  // 64 MiB announced in chunks of 64 KiB, sent as fast as segx takes them.
  RawClient chunked("127.0.0.1", port_);
  ASSERT_TRUE(
      chunked.send("POST /v1/lots/1/bids HTTP/1.1\r\nHost: segx\r\nContent-Type: "
                   "application/json\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const std::string chunk = "10000\r\n" + std::string(65536, ' ') + "\r\n";
  size_t sent = 0;
  while (sent < (64u << 20) && !chunked.readable()) {
    if (!chunked.send(chunk, 5s)) break;
    sent += 65536;
  }
  // Every step goes on when one fails, so that the memory is measured whatever happened.
  auto r1 = chunked.response(5s);
  EXPECT_TRUE(r1) << "no answer to a 64 MiB chunked body (" << sent << " bytes sent)";
  if (r1) {
    EXPECT_EQ(r1->status, 413);
    EXPECT_EQ(json::parse(r1->body, nullptr, false)["error"], "payload_too_large");
  }
  std::printf("chunked body: %d after %zu bytes sent (socket buffers included)\n",
              r1 ? r1->status : 0, sent);

  // The bomb: refused unread (415), never inflated.
  RawClient gz("127.0.0.1", port_);
  EXPECT_TRUE(
      gz.send("POST /v1/lots/1/bids HTTP/1.1\r\nHost: segx\r\nContent-Type: "
              "application/json\r\nContent-Encoding: gzip\r\nContent-Length: " +
              std::to_string(bomb.size()) + "\r\n\r\n" + bomb));
  auto r2 = gz.response(5s);
  EXPECT_TRUE(r2) << "no answer to a gzip bomb";
  if (r2) {
    EXPECT_EQ(r2->status, 415);
    EXPECT_EQ(json::parse(r2->body, nullptr, false)["error"], "unsupported_media_type");
  }
  std::printf("gzip bomb: %d\n", r2 ? r2->status : 0);

  // A Content-Length far over the limit: 413 before a byte of the body.
  RawClient huge("127.0.0.1", port_);
  EXPECT_TRUE(
      huge.send("POST /v1/lots/1/bids HTTP/1.1\r\nHost: segx\r\nContent-Length: "
                "536870912\r\n\r\n"));
  auto r3 = huge.response(5s);
  EXPECT_TRUE(r3 && r3->status == 413) << "no 413 before the body";

  const long peak = status_kib("VmHWM");
  std::printf("segx resident: %ld KiB before, peak %ld KiB (+%ld KiB), %ld KiB after\n", before,
              peak, peak - before, status_kib("VmRSS"));
  EXPECT_LT(peak - before, 32 * 1024) << "resident memory grew by more than 32 MiB";
  const std::string body_limit =
      "segx_http_requests_refused_total{server=\"api\",reason=\"body_limit\"}";
  EXPECT_EQ(series(body_limit), body_limit + " 2");
}

// Issue 15, item 3: 300 bad-token requests in 0.03 s, all 401, none 429.
TEST_F(ApiLimits, AnAnonymousFloodMeets429WithRetryAfter) {
  start(write_config());
  // Kept-alive connections, a new one when segx ends one (market.api.keep_alive_requests).
  auto flood = std::make_unique<RawClient>("127.0.0.1", port_);
  int unauthorized = 0, limited = 0, other = 0;
  const auto t0 = Clock::now();
  for (int i = 0; i < 300 && Clock::now() - t0 < 20s; ++i) {
    if (!flood->send(get("/v1/lots", "Authorization: Bearer mallory-t\r\n"))) break;
    auto r = flood->response(5s);
    if (!r) break;
    if (r->header("Connection") == "close") flood = std::make_unique<RawClient>("127.0.0.1", port_);
    if (r->status == 401) {
      ++unauthorized;
    } else if (r->status == 429) {
      if (limited++ == 0) {
        EXPECT_GE(std::stoi(r->header("Retry-After")), 1);
        EXPECT_EQ(json::parse(r->body)["error"], "rate_limited");
        EXPECT_THAT(json::parse(r->body)["detail"].get<std::string>(),
                    HasSubstr("market.api.anonymous_rate_limit"));
      }
    } else {
      ++other;
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("300 bad-token requests in %.2f s: %d got 401, %d got 429\n", seconds, unauthorized,
              limited);
  EXPECT_EQ(unauthorized + limited, 300);
  EXPECT_EQ(other, 0);
  // A burst of 20 (the default rate), and 20 more per second the flood lasted.
  EXPECT_LE(unauthorized, 20 + static_cast<int>(20 * seconds) + 1);
  EXPECT_GE(limited, 1);
  // A valid token from the same address is not held back; an anonymous /healthz is.
  request("GET", "/v1/whoami", "alice", "", 200);
  RawClient anon("127.0.0.1", port_);
  ASSERT_TRUE(anon.send(get("/healthz")));
  auto h = anon.response(5s);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 429);
  const std::string rate_limited =
      "segx_http_requests_refused_total{server=\"api\",reason=\"rate_limited\"}";
  EXPECT_EQ(series(rate_limited), rate_limited + " " + std::to_string(limited + 1));
}

// Issue 15, item 7: non-forward-secret and CBC-SHA1 suites were accepted.
TEST_F(ApiLimits, WeakTlsSuitesFailTheHandshake) {
  start(write_config(tls_config()));
  // s_client as a client that offers only the suite named (SECLEVEL=0: it would offer
  // anything); its exit code says whether the handshake completed.
  const auto handshake = [&](const std::string& name, const std::string& version,
                             const std::string& cipher) {
    // OPENSSL_CONF=/dev/null: the system's minimum protocol and security level do not apply.
    const std::string cmd = "OPENSSL_CONF=/dev/null /usr/bin/openssl s_client -connect 127.0.0.1:" +
                            std::to_string(port_) + " " + version + " -cipher '" +
                            (cipher.empty() ? "DEFAULT" : cipher) + ":@SECLEVEL=0'" +
                            " < /dev/null";
    const int rc = run({"/bin/sh", "-c", cmd}, dir_.path(), name, 30s);
    const std::string out = read_file(dir_ / (name + ".out"));
    std::smatch m;
    const std::string got = std::regex_search(out, m, std::regex("Cipher is ([A-Za-z0-9_-]+)"))
                                ? m[1].str()
                                : std::string("(none)");
    std::printf("%-22s %-8s -> exit %d, cipher %s\n", cipher.empty() ? "default" : cipher.c_str(),
                version.c_str(), rc, got.c_str());
    return rc == 0 && got != "(NONE)" && got != "(none)";
  };
  EXPECT_FALSE(handshake("aes128-sha", "-tls1_2", "AES128-SHA"));
  EXPECT_FALSE(handshake("ecdhe-cbc", "-tls1_2", "ECDHE-RSA-AES128-SHA"));
  EXPECT_FALSE(handshake("ecdhe-cbc256", "-tls1_2", "ECDHE-RSA-AES256-SHA384"));
  EXPECT_FALSE(handshake("rsa-gcm", "-tls1_2", "AES128-GCM-SHA256"));
  EXPECT_FALSE(handshake("tls11", "-tls1_1", ""));
  // What is allowed still works: ECDHE with AEAD on TLS 1.2, and TLS 1.3.
  EXPECT_TRUE(handshake("ecdhe-gcm", "-tls1_2", "ECDHE-RSA-AES128-GCM-SHA256"));
  EXPECT_TRUE(handshake("ecdhe-chacha", "-tls1_2", "ECDHE-RSA-CHACHA20-POLY1305"));
  EXPECT_TRUE(handshake("tls13", "-tls1_3", ""));
  const std::string tls_refused =
      series("segx_http_requests_refused_total{server=\"api\",reason=\"tls_handshake\"}");
  EXPECT_THAT(tls_refused, ::testing::MatchesRegex(".* [1-9][0-9]*")) << tls_refused;
}

}  // namespace
}  // namespace segx::test
