#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_pdump.h>

#include <cstring>

#include "config/eal_args.hpp"
#include "dataplane/dataplane.hpp"

namespace segx::dataplane {

Status init_eal(const config::Config& config, const std::string& argv0) {
  // EAL keeps pointers into argv (e.g. for --file-prefix), so the strings live as long as
  // the process.
  static std::vector<std::string> args;
  static std::vector<char*> argv;
  args = config::eal_arguments(config, argv0);
  argv.clear();
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0) {
    return Error{std::string("EAL initialisation failed: ") + rte_strerror(rte_errno) +
                 " (EAL's own messages above say more)"};
  }
  // Lets dpdk-dumpcap (a secondary process with the same file prefix) capture any port
  // while segx runs; it costs nothing until a capture starts.
  if (rte_pdump_init() != 0) {
    return Error{std::string("cannot initialise packet capture (rte_pdump): ") +
                 rte_strerror(rte_errno)};
  }
  return {};
}

void cleanup_eal() {
  rte_pdump_uninit();
  rte_eal_cleanup();
}

}  // namespace segx::dataplane
