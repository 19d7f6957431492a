// The segx command line without DPDK: --check-config, --help, --version, usage errors.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support.hpp"

namespace segx::test {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

const std::string valid = R"(eal:
  vdevs: [net_null0, "net_null1,no-rx=1"]
ports:
  - {name: a, device: net_null0}
  - {name: b, device: net_null1, rx_queues: 0}
pipeline:
  lcores: [{lcore: 1, roles: [rx, worker, tx]}]
  default: {action: forward, output: b}
)";

TEST(Cli, CheckConfigOnABrokenFileExitsOneAndPrintsPositions) {
  TempDir dir;
  std::string broken = valid;
  broken.replace(broken.find("rx_queues: 0"), 12, "rx_queues: x");
  broken += "profiles:\n  - name: p\n    output: c\n";
  write_file(dir / "broken.yaml", broken);
  Process p({segx_binary().string(), "--check-config", (dir / "broken.yaml").string()}, dir.path(),
            "check");
  ASSERT_EQ(p.wait(std::chrono::seconds(60)), 1);
  const std::string file = (dir / "broken.yaml").string();
  EXPECT_THAT(p.err(),
              HasSubstr(file + ":5:45: error: ports[1].rx_queues: expected an integer, got 'x'"));
  EXPECT_THAT(p.err(), HasSubstr(file + ":11:13: error: profiles[0].output: no port named 'c'"));
  EXPECT_THAT(p.err(), HasSubstr(file + ": 2 error(s)"));
}

TEST(Cli, CheckConfigOnAValidFilePrintsTheEalArguments) {
  TempDir dir;
  write_file(dir / "ok.yaml", valid);
  Process p({segx_binary().string(), "--check-config", (dir / "ok.yaml").string()}, dir.path(),
            "check");
  ASSERT_EQ(p.wait(std::chrono::seconds(60)), 0) << p.err();
  EXPECT_THAT(p.out(), HasSubstr("configuration is valid: 2 port(s), 1 data-plane lcore(s)"));
  EXPECT_THAT(p.out(), HasSubstr("--no-huge -m 1024 --file-prefix segx --no-pci --vdev net_null0"));
  // Validation starts nothing: no DPDK runtime directory appears for the prefix.
  EXPECT_FALSE(fs::exists("/var/run/dpdk/segx/config")) << "check-config must not start EAL";
}

TEST(Cli, MissingConfigFileIsAConfigurationError) {
  TempDir dir;
  Process p({segx_binary().string(), "--config", (dir / "absent.yaml").string()}, dir.path(),
            "run");
  ASSERT_EQ(p.wait(std::chrono::seconds(60)), 1);
  EXPECT_THAT(p.err(),
              HasSubstr("absent.yaml: error: cannot read the file: No such file or directory"));
}

TEST(Cli, VersionHelpAndUsageErrors) {
  TempDir dir;
  Process version({segx_binary().string(), "--version"}, dir.path(), "version");
  ASSERT_EQ(version.wait(std::chrono::seconds(60)), 0);
  EXPECT_THAT(version.out(), HasSubstr("segx 0.1.0 (DPDK 22.11"));

  Process help({segx_binary().string(), "--help"}, dir.path(), "help");
  ASSERT_EQ(help.wait(std::chrono::seconds(60)), 0);
  EXPECT_THAT(help.out(), HasSubstr("--check-config FILE"));

  for (const std::vector<std::string>& args : {std::vector<std::string>{},
                                               {"--bogus"},
                                               {"--duration", "soon", "-c", "x"},
                                               {"--max-packets", "0", "-c", "x"},
                                               {"-c", "x", "extra"}}) {
    std::vector<std::string> argv{segx_binary().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv, dir.path(), "usage");
    EXPECT_EQ(p.wait(std::chrono::seconds(60)), 2) << (args.empty() ? "" : args[0]);
  }
}

}  // namespace
}  // namespace segx::test
