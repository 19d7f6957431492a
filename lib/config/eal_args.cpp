#include "config/eal_args.hpp"

namespace segx::config {

std::vector<std::string> eal_arguments(const Config& config, const std::string& argv0) {
  const EalConfig& eal = config.eal;
  std::vector<std::string> args{argv0};
  std::string lcores;
  for (unsigned id : eal.lcores) {
    lcores += (lcores.empty() ? "" : ",") + std::to_string(id);
    if (auto cpu = eal.cpus.find(id); cpu != eal.cpus.end())
      lcores += "@" + std::to_string(cpu->second);
  }
  args.insert(args.end(), {eal.cpus.empty() ? "-l" : "--lcores", lcores, "--main-lcore",
                           std::to_string(eal.main_lcore)});
  if (!eal.hugepages) args.emplace_back("--no-huge");
  args.insert(args.end(), {"-m", std::to_string(eal.memory_bytes >> 20)});
  args.insert(args.end(), {"--file-prefix", eal.file_prefix});
  if (eal.pci_allow.empty()) {
    args.emplace_back("--no-pci");
  } else {
    for (const auto& dev : eal.pci_allow)
      args.insert(args.end(), {"-a", dev});
  }
  for (const auto& vdev : eal.vdevs)
    args.insert(args.end(), {"--vdev", vdev});
  args.emplace_back("--log-level=" + eal.log_level);
  args.insert(args.end(), eal.extra_args.begin(), eal.extra_args.end());
  return args;
}

}  // namespace segx::config
