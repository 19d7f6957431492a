#pragma once
// The EAL command line that a configuration stands for. Kept apart from EAL itself so it
// can be printed (segx --check-config shows it) and tested without starting DPDK.

#include <string>
#include <vector>

#include "config/config.hpp"

namespace segx::config {

/// The arguments for rte_eal_init(), argv[0] first.
std::vector<std::string> eal_arguments(const Config& config, const std::string& argv0);

}  // namespace segx::config
