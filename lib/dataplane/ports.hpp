#pragma once
// Internal: bringing one configured port up with DPDK ethdev.

#include <rte_mempool.h>

#include <cstdint>

#include "common/result.hpp"
#include "config/config.hpp"

namespace segx::dataplane {

/// Finds the device of a configured port and configures its queues (not started).
/// Errors name the port, the device and what the device cannot do.
Result<uint16_t> configure_port(const config::PortConfig& port, rte_mempool* pool);

}  // namespace segx::dataplane
