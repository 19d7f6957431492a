#pragma once
// Starts EAL once for a test binary: no hugepages, no PCI, two lcores, a file prefix of
// its own, runtime files removed at the end. Data-plane units that need DPDK memory
// (rte_acl, rte_lpm, mbufs, rte_reorder) test against it; a binary that needs virtual
// devices (a compressdev) adds them with extra_args() before main() runs.

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace segx::test {

class EalEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    prefix_ = "segx-ut-" + std::to_string(getpid());
    std::vector<std::string> args{
        "unit-test", "-l",       "0-1",           "--no-huge", "-m",
        "512",       "--no-pci", "--file-prefix", prefix_,     "--log-level=error"};
    args.insert(args.end(), extra_args().begin(), extra_args().end());
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    ASSERT_GE(rte_eal_init(static_cast<int>(argv.size()), argv.data()), 0) << "EAL did not start";
    pool_ = rte_pktmbuf_pool_create("ut_mbufs", 8191, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    ASSERT_NE(pool_, nullptr);
  }
  void TearDown() override {
    rte_mempool_free(pool_);
    rte_eal_cleanup();
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path("/var/run/dpdk") / prefix_, ec);
  }
  static rte_mempool* pool() { return pool_; }
  /// More EAL arguments ("--vdev=compress_zlib0"), added during static initialisation.
  static std::vector<std::string>& extra_args() {
    static std::vector<std::string> args;
    return args;
  }

 private:
  std::string prefix_;
  static inline rte_mempool* pool_ = nullptr;
};

/// Registers the environment; include this header in exactly one file per test binary.
inline ::testing::Environment* const eal_environment =
    ::testing::AddGlobalTestEnvironment(new EalEnvironment);

}  // namespace segx::test
