#include "config/eal_args.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.hpp"

namespace segx::config {
namespace {

TEST(EalArgs, VirtualDevicesWithoutHugepages) {
  Config c;
  c.eal.lcores = {0, 1};
  c.eal.file_prefix = "t1";
  c.eal.vdevs = {"net_null0", "net_pcap0,rx_pcap=a.pcap"};
  const std::vector<std::string> expected{"segx",
                                          "-l",
                                          "0,1",
                                          "--main-lcore",
                                          "0",
                                          "--no-huge",
                                          "-m",
                                          "1024",
                                          "--file-prefix",
                                          "t1",
                                          "--no-pci",
                                          "--vdev",
                                          "net_null0",
                                          "--vdev",
                                          "net_pcap0,rx_pcap=a.pcap",
                                          "--log-level=notice"};
  EXPECT_EQ(eal_arguments(c, "segx"), expected);
}

TEST(EalArgs, LcoresOnOtherCpusUseTheLcoresOption) {
  auto r = load_string(
      "eal:\n  lcores: [0, 1, \"2@1\"]\n  vdevs: [net_null0, net_null1]\n"
      "ports:\n  - {name: a, device: net_null0, tx_queues: 2}\n  - {name: b, device: net_null1, "
      "rx_queues: 0, tx_queues: 2}\npipeline:\n  lcores: [{lcore: 1, roles: [rx, "
      "worker, tx]}, {lcore: 2, roles: [worker, tx]}]\n  default: {action: "
      "forward, output: b}\n",
      "t.yaml");
  ASSERT_TRUE(r.ok()) << (r.diagnostics.empty() ? "" : format(r.diagnostics[0]));
  const auto args = eal_arguments(*r.config, "segx");
  EXPECT_EQ(args[1], "--lcores");
  EXPECT_EQ(args[2], "0,1,2@1");
  auto bad = load_string("eal:\n  lcores: [0, \"1@x\"]\n", "t.yaml");
  std::string all;
  for (const auto& d : bad.diagnostics)
    all += format(d) + "\n";
  EXPECT_THAT(all,
              ::testing::HasSubstr("t.yaml:2:15: error: eal.lcores[1]: expected an lcore id or "
                                   "lcore@cpu such as 2@1, got '1@x'"));
}

TEST(EalArgs, PciDevicesHugepagesAndExtraArgs) {
  Config c;
  c.eal.lcores = {2, 4, 6};
  c.eal.main_lcore = 2;
  c.eal.hugepages = true;
  c.eal.memory_bytes = 4096ull << 20;
  c.eal.pci_allow = {"0000:3b:00.0", "0000:3b:00.1,rxq_cqe_comp_en=0"};
  c.eal.log_level = "info";
  c.eal.extra_args = {"--iova-mode=va"};
  const std::vector<std::string> expected{"/usr/bin/segx",
                                          "-l",
                                          "2,4,6",
                                          "--main-lcore",
                                          "2",
                                          "-m",
                                          "4096",
                                          "--file-prefix",
                                          "segx",
                                          "-a",
                                          "0000:3b:00.0",
                                          "-a",
                                          "0000:3b:00.1,rxq_cqe_comp_en=0",
                                          "--log-level=info",
                                          "--iova-mode=va"};
  EXPECT_EQ(eal_arguments(c, "/usr/bin/segx"), expected);
}

}  // namespace
}  // namespace segx::config
