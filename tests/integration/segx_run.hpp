#pragma once
// The fixture of tests that run segx: a private directory and DPDK file prefix (both
// removed afterwards), configuration writing, traffic generation, the oracle of
// docs/dataplane.md, and the run's report.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "support.hpp"

namespace segx::test {

namespace fs = std::filesystem;

class SegxRun : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = unique_prefix(info->name());
  }
  void TearDown() override { remove_dpdk_runtime(prefix_); }

  // The eal section, and a metrics section that keeps runs apart.
  std::string eal_section(const std::vector<std::string>& vdevs,
                          const std::string& memory = "512MiB") const {
    std::string s = "eal:\n  lcores: \"0-1\"\n  memory: " + memory + "\n  file_prefix: " + prefix_ +
                    "\n  vdevs:\n";
    for (const auto& v : vdevs)
      s += "    - " + v + "\n";
    // /metrics on a port the kernel picks, so that runs side by side never collide; segx
    // prints the address it got.
    s += "metrics:\n  listen: 127.0.0.1:0\n";
    return s;
  }

  static std::string pipeline_section(const std::string& default_block,
                                      const std::string& extra = "") {
    return "pipeline:\n  lcores:\n    - lcore: 1\n      roles: [rx, worker, tx]\n" + extra +
           "  default:\n" + default_block;
  }

  // Writes a pcap-in, pcap-out configuration.
  fs::path pcap_config(const std::string& default_block, const std::string& port_extra = "",
                       const std::string& pipeline_extra = "") {
    const std::string text = eal_section({"net_pcap0,rx_pcap=" + (dir_ / "in.pcap").string(),
                                          "net_pcap1,tx_pcap=" + (dir_ / "out.pcap").string()}) +
                             "ports:\n  - name: in\n    device: net_pcap0\n" + port_extra +
                             "  - name: out\n    device: net_pcap1\n    rx_queues: 0\n" +
                             pipeline_section(default_block, pipeline_extra);
    write_file(dir_ / "segx.yaml", text);
    return dir_ / "segx.yaml";
  }

  // Writes `out` (default in.pcap) with scripts/gen-traffic.py.
  void generate(int packets, int seed, std::vector<std::string> options = {},
                const std::string& out = "in.pcap") {
    std::vector<std::string> argv{"/usr/bin/python3",
                                  (source_root() / "scripts/gen-traffic.py").string(),
                                  "--out",
                                  (dir_ / out).string(),
                                  "--packets",
                                  std::to_string(packets),
                                  "--seed",
                                  std::to_string(seed)};
    argv.insert(argv.end(), options.begin(), options.end());
    ASSERT_EQ(run(argv, dir_.path(), "gen"), 0) << read_file(dir_ / "gen.err");
  }

  // What segx must do with `pcap` arriving on `port` under `config`, by the independent
  // oracle of docs/dataplane.md (tests/integration/segment_oracle.py).
  nlohmann::json oracle(const fs::path& config, const fs::path& pcap, const std::string& port,
                        std::vector<std::string> options = {}) {
    std::vector<std::string> argv{"/usr/bin/python3",
                                  (source_root() / "tests/integration/segment_oracle.py").string(),
                                  "--config",
                                  config.string(),
                                  "--pcap",
                                  pcap.string(),
                                  "--port",
                                  port,
                                  "--out",
                                  (dir_ / "expected.json").string()};
    argv.insert(argv.end(), options.begin(), options.end());
    EXPECT_EQ(run(argv, dir_.path(), "oracle"), 0) << read_file(dir_ / "oracle.err");
    return nlohmann::json::parse(read_file(dir_ / "expected.json"));
  }

  nlohmann::json report() const { return nlohmann::json::parse(read_file(dir_ / "report.json")); }

  // Every line of a JSON-lines file.
  static std::vector<nlohmann::json> read_jsonl(const fs::path& file) {
    std::vector<nlohmann::json> out;
    std::istringstream in(read_file(file));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    }
    return out;
  }

  std::vector<std::string> segx(const fs::path& config, std::vector<std::string> extra) const {
    std::vector<std::string> argv{segx_binary().string(), "--config", config.string(), "--report",
                                  (dir_ / "report.json").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  TempDir dir_;
  std::string prefix_;
};

}  // namespace segx::test
