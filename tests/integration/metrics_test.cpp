// Observability of a running segx, checked with the operators' own tools: promtool lints a
// live scrape, a real Prometheus server scrapes and stores what segx reports, and DPDK's
// dpdk-telemetry.py and dpdk-dumpcap talk to the running process.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "segx_run.hpp"
#include "support.hpp"

namespace segx::test {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int packets = 1500;

// Polls `ready` every 100 ms until it holds or the deadline passes.
bool eventually(const std::function<bool()>& ready, std::chrono::seconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (ready()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return ready();
}

std::optional<std::string> http_get(uint16_t port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  auto res = client.Get(path.c_str());
  if (!res || res->status != 200) return std::nullopt;
  return res->body;
}

// The value of an unlabelled sample line "name value" in an exposition, or -1.
double sample_value(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(name + " ")) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

class Metrics : public SegxRun {
 protected:
  // pcap in, pcap out; a profile with a service chain and a metered one with a block, so
  // that every kind of family has series.
  fs::path config(const std::string& rx_extra = "", const std::string& out_device = "") {
    const std::string out =
        out_device.empty() ? "net_pcap1,tx_pcap=" + (dir_ / "out.pcap").string() : out_device;
    std::string eal =
        eal_section({"net_pcap0,rx_pcap=" + (dir_ / "in.pcap").string() + rx_extra, out});
    eal.insert(eal.find("metrics:"), extra_eal_);
    const std::string text = eal +
                             "ports:\n  - {name: in, device: net_pcap0}\n"
                             "  - {name: out, device: " +
                             out.substr(0, out.find(',')) + ", rx_queues: 0}\n" +
                             pipeline_section("    action: forward\n    output: out\n") +
                             R"(profiles:
  - name: web
    match: {protocol: tcp}
    segment: {packets: 8}
    services: [count, pass]
    output: out
  - name: other
    metered: true
    segment: {packets: 8}
    output: out
blocks:
  - id: lot-1
    profile: other
    start: 0s
    duration: 1h
    max_rate: 1Gbit/s
    members:  # every address (the member tables take no /0)
      - {ip: 0.0.0.0/1}
      - {ip: 128.0.0.0/1}
      - {ip: "::/1"}
      - {ip: "8000::/1"}
)";
    write_file(dir_ / "segx.yaml", text);
    return dir_ / "segx.yaml";
  }

  // Starts segx and waits for the metrics address it prints; returns its port.
  uint16_t start(Process& p) {
    EXPECT_TRUE(p.wait_for_output("metrics: http://", 120s, /*stderr=*/true)) << p.out() << p.err();
    std::smatch m;
    const std::string out = p.err();
    if (!std::regex_search(out, m,
                           std::regex("metrics: http://127\\.0\\.0\\.1:([0-9]+)/metrics"))) {
      ADD_FAILURE() << "no metrics address in the log:\n" << out << p.out();
      return 0;
    }
    return static_cast<uint16_t>(std::stoi(m[1]));
  }

  // A scrape taken once segx has received every packet of the capture.
  std::string scrape_when_received(uint16_t port, double expected) {
    std::string text;
    eventually(
        [&] {
          auto body = http_get(port, "/metrics");
          if (body) text = *body;
          return body && sample_value(text, "segx_received_packets_total") == expected;
        },
        120s);
    return text;
  }

  std::string extra_eal_;
};

TEST_F(Metrics, PromtoolAcceptsALiveScrapeWithOneGroupPerFamily) {
  generate(packets, 71);
  Process p(segx(config(), {"--duration", "600"}), dir_.path(), "segx");
  const uint16_t port = start(p);
  ASSERT_NE(port, 0);
  const std::string text = scrape_when_received(port, packets);
  ASSERT_EQ(sample_value(text, "segx_received_packets_total"), packets) << text;
  write_file(dir_ / "scrape.txt", text);

  const int rc =
      run({"/bin/sh", "-c", "promtool check metrics < " + (dir_ / "scrape.txt").string()},
          dir_.path(), "promtool");
  EXPECT_EQ(rc, 0) << read_file(dir_ / "promtool.out") << read_file(dir_ / "promtool.err");

  // What promtool does not check: each family's lines are one group, no series twice, and
  // every histogram series ends with le="+Inf" and has _sum and _count.
  std::set<std::string> families_seen, series;
  std::string current;
  std::istringstream in(text);
  std::map<std::string, std::string> type;
  int histograms = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("# TYPE ")) {
      std::istringstream t(line.substr(7));
      std::string name, kind;
      t >> name >> kind;
      EXPECT_TRUE(families_seen.insert(name).second) << name << " appears in two groups";
      type[name] = kind;
      current = name;
      continue;
    }
    if (line.starts_with("#") || line.empty()) continue;
    const std::string id = line.substr(0, line.rfind(' '));
    EXPECT_TRUE(series.insert(id).second) << "duplicate series " << id;
    EXPECT_TRUE(id.starts_with(current)) << id << " outside its family " << current;
    if (type[current] == "histogram" && id.starts_with(current + "_count")) ++histograms;
  }
  EXPECT_GE(histograms, 1);
  for (const auto& [name, kind] : type) {
    if (kind != "histogram") continue;
    EXPECT_THAT(text, HasSubstr(name + "_bucket{le=\"+Inf\"}"));
    EXPECT_THAT(text, HasSubstr(name + "_sum"));
  }
  // The run's own numbers are there.
  EXPECT_THAT(text, HasSubstr("segx_port_rx_packets_total{port=\"in\",device=\"net_pcap0\"} " +
                              std::to_string(packets) + "\n"));
  EXPECT_THAT(text, HasSubstr("segx_blocks_active 1\n"));
  EXPECT_THAT(text, HasSubstr("segx_service_calls_total{profile=\"web\",service=\"count\"}"));
  EXPECT_THAT(text, HasSubstr("segx_segment_latency_seconds_count "));

  p.signal(SIGTERM);
  ASSERT_EQ(p.wait(120s), 0) << p.out() << p.err();
  // Every packet that went out was observed once in the latency histogram.
  EXPECT_EQ(sample_value(text, "segx_segment_latency_seconds_count"),
            sample_value(text, "segx_transmitted_packets_total"));
}

TEST_F(Metrics, PrometheusScrapesSegxAndStoresTheCountItReportsAtExit) {
  generate(packets, 72);
  Process p(segx(config(), {"--duration", "600"}), dir_.path(), "segx");
  const uint16_t port = start(p);
  ASSERT_NE(port, 0);

  const uint16_t prom_port = free_tcp_port();
  write_file(dir_ / "prometheus.yml",
             "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
             "scrape_configs:\n  - job_name: segx\n    static_configs:\n"
             "      - targets: ['127.0.0.1:" +
                 std::to_string(port) + "']\n");
  fs::create_directories(dir_ / "tsdb");
  Process prom({"/usr/bin/prometheus", "--config.file=" + (dir_ / "prometheus.yml").string(),
                "--storage.tsdb.path=" + (dir_ / "tsdb").string(),
                "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
               dir_.path(), "prometheus");

  // The target is up.
  nlohmann::json targets;
  const bool up = eventually(
      [&] {
        auto body = http_get(prom_port, "/api/v1/targets");
        if (!body) return false;
        targets = nlohmann::json::parse(*body, nullptr, false);
        if (targets.is_discarded()) return false;
        for (const auto& t : targets["data"]["activeTargets"]) {
          if (t["health"] == "up") return true;
        }
        return false;
      },
      180s);
  ASSERT_TRUE(up) << targets.dump() << read_file(dir_ / "prometheus.err");

  // Prometheus has stored the count of a segx that has received everything.
  const auto query = [&](const std::string& q) -> double {
    auto body =
        http_get(prom_port, "/api/v1/query?query=" + httplib::detail::encode_query_param(q));
    if (!body) return -1;
    auto j = nlohmann::json::parse(*body, nullptr, false);
    if (j.is_discarded() || j["data"]["result"].empty()) return -1;
    return std::stod(j["data"]["result"][0]["value"][1].get<std::string>());
  };
  ASSERT_TRUE(eventually([&] { return query("segx_received_packets_total") == packets; }, 180s))
      << "Prometheus holds " << query("segx_received_packets_total");

  p.signal(SIGTERM);
  ASSERT_EQ(p.wait(120s), 0) << p.out() << p.err();
  auto r = report();  // not const: a missing key must fail the test, not abort it
  const double reported = r["received"].get<double>();
  EXPECT_EQ(query("max_over_time(segx_received_packets_total[1h])"), reported);
  EXPECT_EQ(query("max_over_time(segx_port_rx_packets_total{port=\"in\"}[1h])"),
            r["ports"][0]["rx_packets"].get<double>());
  EXPECT_EQ(query("max_over_time(segx_profile_packets_total{profile=\"web\"}[1h])"),
            r["profiles"][0]["packets"].get<double>());
}

TEST_F(Metrics, DpdkTelemetryAnswersTheSegxCommands) {
  generate(packets, 73);
  Process p(segx(config(), {"--duration", "600"}), dir_.path(), "segx");
  const uint16_t port = start(p);
  ASSERT_NE(port, 0);
  scrape_when_received(port, packets);

  write_file(dir_ / "commands.txt", "/segx/stats\n/segx/profiles\n/segx/blocks\n/segx/flows\n");
  ASSERT_EQ(run({"/bin/sh", "-c",
                 "/usr/bin/python3 /usr/bin/dpdk-telemetry.py -f " + prefix_ + " < " +
                     (dir_ / "commands.txt").string()},
                dir_.path(), "telemetry"),
            0)
      << read_file(dir_ / "telemetry.err");
  std::map<std::string, nlohmann::json> replies;
  std::istringstream in(read_file(dir_ / "telemetry.out"));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.size() == 1) replies[j.begin().key()] = j.begin().value();
  }
  ASSERT_EQ(replies.size(), 4u) << read_file(dir_ / "telemetry.out");

  auto stats = replies["/segx/stats"];
  EXPECT_EQ(stats["received"], packets);
  EXPECT_EQ(stats["running"], 1);
  EXPECT_EQ(stats["port_in"]["name"], "in");
  EXPECT_EQ(stats["port_in"]["rx_packets"], packets);
  EXPECT_TRUE(stats["drops"].contains("no_profile"));

  auto profiles = replies["/segx/profiles"];
  EXPECT_EQ(profiles["web"]["services"], "count,pass");
  EXPECT_EQ(profiles["other"]["metered"], 1);
  EXPECT_EQ(
      profiles["web"]["packets"].get<uint64_t>() + profiles["other"]["packets"].get<uint64_t>(),
      stats["received"].get<uint64_t>() - stats["dropped"].get<uint64_t>() -
          stats["events"]["non_ip"].get<uint64_t>());

  auto blocks = replies["/segx/blocks"];
  EXPECT_EQ(blocks["lot_1"]["name"], "lot-1");
  EXPECT_EQ(blocks["lot_1"]["active"], 1);
  // Packets that came before the block was active went unmetered: at most all of them.
  EXPECT_LE(blocks["lot_1"]["green_packets"].get<uint64_t>() +
                blocks["lot_1"]["yellow_packets"].get<uint64_t>(),
            profiles["other"]["packets"].get<uint64_t>());

  auto flows = replies["/segx/flows"];
  EXPECT_GT(flows["active"].get<uint64_t>(), 0u);
  EXPECT_EQ(flows["lcore_1"]["created"], stats["events"]["flows_created"]);

  p.signal(SIGTERM);
  ASSERT_EQ(p.wait(120s), 0) << p.out() << p.err();
}

// Hugepages for a test: dpdk-dumpcap is a secondary process, and a secondary cannot attach
// to a primary without them. Adds pages to the kernel's pool and mounts a private hugetlbfs;
// gives both back when it goes, whatever happened in between.
class Hugepages {
 public:
  Hugepages(const fs::path& mount_point, long pages) : mount_(mount_point) {
    before_ = read_pages();
    write_pages(before_ + pages);
    added_ = read_pages() - before_;
    fs::create_directories(mount_);
    mounted_ = ::mount("nodev", mount_.c_str(), "hugetlbfs", 0, nullptr) == 0;
  }
  ~Hugepages() {
    if (mounted_) ::umount2(mount_.c_str(), MNT_DETACH);
    // Give back what was added, even if someone else changed the pool meanwhile.
    if (added_ > 0) write_pages(std::max(0L, read_pages() - added_));
  }
  bool ok(long pages) const { return mounted_ && added_ >= pages; }

 private:
  static long read_pages() {
    std::ifstream in("/proc/sys/vm/nr_hugepages");
    long n = 0;
    in >> n;
    return n;
  }
  static void write_pages(long n) {
    std::ofstream out("/proc/sys/vm/nr_hugepages");
    out << n << "\n";
  }
  fs::path mount_;
  long before_ = 0, added_ = 0;
  bool mounted_ = false;
};

TEST_F(Metrics, DpdkDumpcapCapturesARunningSegxPort) {
  if (geteuid() != 0) GTEST_SKIP() << "hugepages and mounts need root";
  constexpr long pages = 256;  // 2 MiB each: segx's 256 MiB and dumpcap's pool
  Hugepages huge(dir_ / "huge", pages);
  ASSERT_TRUE(huge.ok(pages)) << "could not reserve " << pages << " hugepages or mount hugetlbfs";

  generate(200, 74);
  extra_eal_ = "  hugepages: true\n  extra_args: [--huge-dir, " + (dir_ / "huge").string() + "]\n";
  // The capture replays forever, so there is traffic whenever dumpcap attaches; the output
  // is a sink.
  const auto cfg = config(",infinite_rx=1", "net_null1,no-rx=1");
  std::string text = read_file(cfg);
  text.replace(text.find("  memory: 512MiB"), 16, "  memory: 256MiB");
  write_file(cfg, text);
  Process p(segx(cfg, {"--duration", "600"}), dir_.path(), "segx");
  ASSERT_NE(start(p), 0);

  constexpr int captured = 50;
  const int rc = run({"/usr/bin/dpdk-dumpcap", "--file-prefix=" + prefix_, "-i", "net_pcap0", "-c",
                      std::to_string(captured), "-P", "-q", "-w", (dir_ / "capture.pcap").string()},
                     dir_.path(), "dumpcap", 120s);
  EXPECT_EQ(rc, 0) << read_file(dir_ / "dumpcap.out") << read_file(dir_ / "dumpcap.err");

  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(120s), 0) << p.out() << p.err();

  // dumpcap stops after the burst that reaches the count.
  const auto got = read_pcap(dir_ / "capture.pcap");
  ASSERT_GE(got.size(), static_cast<size_t>(captured));
  const auto sent = read_pcap(dir_ / "in.pcap");
  const std::set<std::vector<uint8_t>> known(sent.begin(), sent.end());
  for (const auto& pkt : got)
    EXPECT_TRUE(known.count(pkt)) << "captured a packet that is not in the input";
}

}  // namespace
}  // namespace segx::test
