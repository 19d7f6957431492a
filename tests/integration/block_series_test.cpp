// Watching a block deliver (issue 18): a lease won through the API meters one flow sent from a
// network namespace at a known rate in three phases (below the block's minimum, between its
// minimum and maximum, above its maximum). The block's per-second series must match what came
// out of the output port second by second, its compliance the phases, its event stream the
// series; strangers get 404, the winner's device reads it; the usage and the rating carry the
// compliance summary.

#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

#include "api_run.hpp"

namespace segx::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int frame = 1000;             // bytes per frame
constexpr uint64_t min_rate = 400'000;  // bits/s: 50 frames a second
constexpr uint64_t max_rate = 1'200'000;

class BlockSeriesRun : public ApiRun {
 protected:
  void SetUp() override {
    ApiRun::SetUp();
    if (geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces";
    const std::string id = std::to_string(getpid() % 100000);
    ns_ = "segx-t-" + id + "-s";
    ns_out_ = "segx-t-" + id + "-r";
    in_ = "sx" + id + "s";
    out_ = "sx" + id + "r";
    veth_ = std::make_unique<VethNamespace>(ns_, in_, "peer-s", dir_.path());
    ASSERT_EQ(veth_->error(), "");
    veth_out_ = std::make_unique<VethNamespace>(ns_out_, out_, "peer-r", dir_.path());
    ASSERT_EQ(veth_out_->error(), "");
  }
  void TearDown() override {
    ApiRun::TearDown();
    veth_out_.reset();
    veth_.reset();
  }

  fs::path config() {
    std::string tokens;
    for (const auto& [who, role, owner] :
         std::vector<std::array<std::string, 3>>{{"acme", "provider", ""},
                                                 {"bob", "recipient", ""},
                                                 {"carol", "recipient", ""},
                                                 {"bob-phone", "device", "bob"}})
      tokens += "      - {principal: " + who + ", role: " + role +
                (owner.empty() ? "" : ", owner: " + owner) + ", sha256: " + sha256_hex(who + "-t") +
                "}\n";
    const std::string text =
        eal_section({"net_af_packet0,iface=" + in_, "net_af_packet1,iface=" + out_}) +
        "ports:\n  - {name: in, device: net_af_packet0}\n  - {name: out, device: net_af_packet1, "
        "rx_queues: 0}\n" +
        // Buckets of 50 ms at the block's rates: a few frames the sender's scheduling bunches
        // together are not red; a second above the maximum still is.
        pipeline_section("    action: drop\n", "  metering: {burst: 50ms}\n") +
        "providers:\n  id: acme\nprofiles:\n  - name: all\n    metered: true\n"
        "    unmetered: drop\n    segment: {packets: 64}\n    output: out\n" +
        subscribers_yaml() + "market:\n  ledger: sqlite:" + (dir_ / "ledger.db").string() +
        "\n  api:\n    listen: 127.0.0.1:0\n    threads: 4\n    tokens:\n" + tokens;
    write_file(dir_ / "segx.yaml", text);
    return dir_ / "segx.yaml";
  }

  json get(const std::string& path, const std::string& who, int expect = 200) {
    return request("GET", path, who, "", expect);
  }

  std::string ns_, ns_out_, in_, out_;
  std::unique_ptr<VethNamespace> veth_, veth_out_;
};

TEST_F(BlockSeriesRun, TheSeriesMatchesTheOutputSecondBySecondAndTheComplianceThePhases) {
  start(config());
  // What leaves the output port, with the kernel's timestamps (the wall clock segx's series
  // uses); -U writes each frame as it comes.
  Process sniff({"/usr/sbin/ip", "netns", "exec", ns_out_, "/usr/bin/tcpdump", "-i", "peer-r", "-n",
                 "-U", "-B", "8192", "-w", (dir_ / "out.pcap").string(), "udp"},
                dir_.path(), "sniff");
  ASSERT_TRUE(sniff.wait_for_output("listening on", 120s, /*stderr=*/true)) << sniff.err();
  json lot = request("POST", "/v1/lots", "acme",
                     R"({"profile": "all", "closes_in": "2s", "start_in": "4s", "duration": "18s",
                         "min_rate": 400000, "max_rate": 1200000})",
                     201);
  const std::string lot_id = std::to_string(lot["id"].get<uint64_t>());
  request("POST", "/v1/lots/" + lot_id + "/bids", "bob",
          R"({"price": 10, "members": ["ip:198.51.100.0/24"], "payment_token": "tok_visa"})", 201);

  // The lease's block becomes active: the test starts sending then.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  json block;
  while (std::chrono::steady_clock::now() < deadline) {
    json leases = get("/v1/leases", "bob");
    if (!leases["leases"].empty() && leases["leases"][0]["state"] == "active") {
      block = get("/v1/blocks/" + leases["leases"][0]["block"].get<std::string>(), "bob");
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(block.is_object()) << "the lease never became active";
  const std::string id = block["id"];
  EXPECT_EQ(block["min_rate"], min_rate);
  EXPECT_EQ(block["max_rate"], max_rate);

  // Who may read it: the recipient's device yes, a stranger never (404, as for leases).
  for (const std::string route : {"", "/series", "/stream"}) {
    get("/v1/blocks/" + id + route, "carol", 404);
    request("GET", "/v1/blocks/" + id + route, "", "", 401);
  }
  get("/v1/blocks/" + id, "bob-phone");
  get("/v1/blocks/" + id + "/series", "bob-phone");
  get("/v1/blocks/" + id + "/series?since=x", "bob", 400);
  // Huge numbers: the largest sequence number is simply past the end, one more is refused.
  EXPECT_TRUE(
      get("/v1/blocks/" + id + "/series?since=18446744073709551615", "bob")["points"].empty());
  get("/v1/blocks/" + id + "/series?since=18446744073709551616", "bob", 400);
  get("/v1/blocks/" + id + "/series?since=-1", "bob", 400);
  get("/v1/blocks/lease-99999999999999999999", "bob", 404);

  // The stream, from its first point, read until segx closes it at the block's end.
  std::string events;
  int stream_status = 0;
  std::thread reader([&] {
    auto c = client();
    auto r =
        c.Get(("/v1/blocks/" + id + "/stream?since=0").c_str(),
              httplib::Headers{{"Authorization", "Bearer bob-t"}}, [&](const char* data, size_t n) {
                events.append(data, n);
                return true;
              });
    if (r) stream_status = r->status;
  });

  // Below the minimum, between the two, above the maximum.
  Process send({"/usr/sbin/ip", "netns", "exec", ns_, "/usr/bin/python3",
                (source_root() / "tests/integration/paced_traffic.py").string(), "peer-s", "--src",
                "198.51.100.7", "--size", std::to_string(frame), "--phase", "5:30", "--phase",
                "5:100", "--phase", "5:250"},
               dir_.path(), "send");
  ASSERT_EQ(send.wait(120s), 0) << send.err();
  std::printf("%s", send.out().c_str());

  // While it runs, /metrics has its rates (active blocks only: gone once it ends).
  const auto scrape = [&] {
    httplib::Client m("127.0.0.1", metrics_port_);
    auto r = m.Get("/metrics");
    return r ? r->body : std::string();
  };
  const std::string during = scrape();
  const bool still_active = get("/v1/blocks/" + id, "bob")["state"] == "active";
  if (still_active) {
    EXPECT_THAT(during, HasSubstr("segx_block_rate_bytes_per_second{block=\"" + id +
                                  "\",kind=\"delivered\",window=\"10s\"}"));
    EXPECT_THAT(during, HasSubstr("segx_block_promised_rate_bytes_per_second{block=\"" + id +
                                  "\",bound=\"max\"} 150000"));
  }

  // The block ends with its lease; the stream ends with it.
  json lease;
  for (auto until = std::chrono::steady_clock::now() + 60s;
       std::chrono::steady_clock::now() < until;) {
    lease = get("/v1/leases/1", "bob");
    if (lease["state"] == "finished") break;
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_EQ(lease["state"], "finished") << lease.dump();
  reader.join();
  EXPECT_THAT(scrape(), Not(HasSubstr("segx_block_rate_bytes_per_second{block=\"" + id)));
  sniff.signal(SIGINT);
  ASSERT_EQ(sniff.wait(60s), 0) << sniff.err();
  EXPECT_EQ(stream_status, 200);
  EXPECT_THAT(events, HasSubstr("event: end"));

  json series = get("/v1/blocks/" + id + "/series", "bob");
  EXPECT_EQ(series["active"], false);
  const json& points = series["points"];
  ASSERT_GE(points.size(), 15u) << series.dump();

  // 1. Second by second, the series says what the output port sent. The data plane's
  // counters are read a little apart from the frames' capture times (the frame's way through
  // segx and the kernel, the sample's through the control loop), so a frame or two at each
  // edge of a second may land in the neighbouring point: 2 frames of tolerance per point.
  const auto out = read_pcap_records(dir_ / "out.pcap");
  uint64_t out_bytes = 0;
  for (const auto& r : out)
    out_bytes += r.length;
  uint64_t series_bytes = 0;
  size_t checked = 0;
  for (const auto& p : points) {
    const uint64_t delivered = p["bytes"]["green"].get<uint64_t>() +
                               p["bytes"]["yellow"].get<uint64_t>() -
                               p["bytes"]["dropped"].get<uint64_t>();
    series_bytes += delivered;
    const double t = p["t"], dt = p["dt"];
    uint64_t captured = 0;
    for (const auto& r : out)
      if (r.time > t - dt && r.time <= t) captured += r.length;
    EXPECT_NEAR(static_cast<double>(captured), static_cast<double>(delivered), 2.0 * frame)
        << "point " << p["seq"] << " at " << t;
    // The rate is the bytes over the interval.
    EXPECT_NEAR(p["delivered_bps"].get<double>(), static_cast<double>(delivered) * 8 / dt, 1.0);
    ++checked;
  }
  EXPECT_EQ(checked, points.size());
  // In total, exactly: every frame out is one the block delivered.
  EXPECT_EQ(series_bytes, out_bytes);
  EXPECT_EQ(out_bytes, lease["usage"]["bytes"]["green"].get<uint64_t>() +
                           lease["usage"]["bytes"]["yellow"].get<uint64_t>());

  // 2. Compliance follows the phases: 5 s below the minimum (not owed), 5 s between (owed,
  // kept), 5 s above the maximum (owed, kept, red): a second either side for the edges.
  const json c = series["compliance"];
  std::printf("compliance %s\n", c.dump().c_str());
  // A phase of 5 s overlaps at most 6 sampling intervals, and fewer when a busy machine
  // stretches them; the 10 s owed overlap at most 11.
  EXPECT_GE(c["seconds"].get<int>(), 13);
  EXPECT_GE(c["owed_seconds"].get<int>(), 8);
  EXPECT_LE(c["owed_seconds"].get<int>(), 11);
  EXPECT_EQ(c["shortfall_seconds"], 0);
  EXPECT_GE(c["at_max_seconds"].get<int>(), 3);
  EXPECT_LE(c["at_max_seconds"].get<int>(), 6);
  EXPECT_EQ(c["compliant_ratio"], 1.0);
  // Above the maximum the delivered rate is held near it; between, near what was offered.
  double top = 0;
  for (const auto& p : points)
    if (p["bytes"]["red"].get<uint64_t>() > 0)
      top = std::max(top, p["delivered_bps"].get<double>());
  EXPECT_GT(top, 0.8 * max_rate);
  EXPECT_LT(top, 1.25 * max_rate);

  // 3. The stream sent the same points, in order, then "end" with the same compliance.
  // An event stream's text -> its points' data and its end's data.
  const auto parse_events = [](std::string text) {
    std::pair<std::vector<json>, json> out;
    size_t at = 0;
    while ((at = text.find("\n\n")) != std::string::npos) {
      const std::string ev = text.substr(0, at);
      text.erase(0, at + 2);
      const size_t d = ev.find("data: ");
      if (d == std::string::npos) continue;
      json data = json::parse(ev.substr(d + 6, ev.find('\n', d) - d - 6));
      if (ev.find("event: point") != std::string::npos) out.first.push_back(data);
      if (ev.find("event: end") != std::string::npos) out.second = data;
    }
    return out;
  };
  const auto [streamed, end] = parse_events(events);
  ASSERT_EQ(streamed.size(), points.size());
  for (size_t i = 0; i < points.size(); ++i)
    EXPECT_EQ(streamed[i], points[i]) << i;
  EXPECT_EQ(end["compliance"], c);

  // A client that reconnects names the last event it saw (Last-Event-ID, as EventSource
  // does) and gets the points after it, then the end; ?since= is explicit and wins over it.
  // The block has ended, so each stream closes once its points and end are out.
  const auto stream_from = [&](const std::string& last_event_id, const std::string& query) {
    auto r = client().Get(
        ("/v1/blocks/" + id + "/stream" + query).c_str(),
        httplib::Headers{{"Authorization", "Bearer bob-t"}, {"Last-Event-ID", last_event_id}});
    return r ? std::make_pair(r->status, r->body) : std::make_pair(0, std::string());
  };
  const size_t k = points.size() / 2;
  const auto [resumed_status, resumed_text] = stream_from(points[k]["seq"].dump(), "");
  EXPECT_EQ(resumed_status, 200);
  const auto [resumed, resumed_end] = parse_events(resumed_text);
  ASSERT_EQ(resumed.size(), points.size() - k - 1) << resumed_text;
  for (size_t i = 0; i < resumed.size(); ++i)
    EXPECT_EQ(resumed[i], points[k + 1 + i]) << i;
  EXPECT_EQ(resumed_end["compliance"], c);
  EXPECT_EQ(parse_events(stream_from(points[k]["seq"].dump(), "?since=0").second).first.size(),
            points.size());
  // Not a point's number: 400 with the reason; the largest number has no point after it.
  for (const std::string bad : {"x", "-1", "1.5", "18446744073709551615", "18446744073709551616"}) {
    const auto [status, body] = stream_from(bad, "");
    EXPECT_EQ(status, 400) << bad << ": " << body;
    const json reason = json::parse(body, nullptr, false);
    ASSERT_TRUE(reason.is_object()) << bad << ": " << body;
    EXPECT_THAT(reason.value("detail", ""), HasSubstr("Last-Event-ID")) << bad;
  }

  // 4. The ledger keeps the summary with the usage, and the rating shows it.
  EXPECT_EQ(lease["usage"]["compliance"], c);
  EXPECT_EQ(get("/v1/blocks/" + id, "bob")["compliance"], c);
  json rating = request("POST", "/v1/leases/1/ratings", "bob-phone",
                        R"({"satisfied": true, "score": 5, "comment": "as promised"})", 201);
  EXPECT_EQ(rating["delivery"]["compliant_ratio"], 1.0);
  EXPECT_EQ(rating["delivery"]["seconds"], c["seconds"]);
  json theirs = get("/v1/principals/acme/ratings", "carol");
  ASSERT_EQ(theirs["ratings"].size(), 1u);
  EXPECT_EQ(theirs["ratings"][0]["delivery"]["compliant_ratio"], 1.0);
}

}  // namespace
}  // namespace segx::test
