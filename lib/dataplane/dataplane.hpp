#pragma once
// The data plane seen from the rest of segx: start EAL from a configuration, bring up
// ports, rings and lcores, stop and drain them, and report what happened. No DPDK type
// appears here, so the control plane and the app build against a small interface.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "config/config.hpp"

namespace segx::dataplane {

/// Counters of one port at the end of a run.
struct PortReport {
  std::string name;    ///< the configured port name
  std::string device;  ///< the DPDK device name
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t rx_missed = 0;  ///< dropped by the device: no free descriptor
  uint64_t rx_errors = 0;
  uint64_t rx_nombuf = 0;  ///< receive failed for want of an mbuf
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_errors = 0;
  uint64_t tx_dropped = 0;  ///< handed to the device, not taken, freed by segx
};

/// Counters of one ring at the end of a run.
struct RingReport {
  std::string name;       ///< "worker<lcore>" (rx → worker) or "tx<lcore>" (worker → tx)
  uint32_t capacity = 0;  ///< entries
  uint64_t enqueued = 0;
  uint64_t dropped_full = 0;  ///< packets freed because the ring was full
};

/// Everything a run produced, gathered after the lcores stopped and the ports closed.
struct Report {
  std::vector<PortReport> ports;
  std::vector<RingReport> rings;
  uint64_t received = 0;       ///< packets taken from rx queues by segx
  uint64_t transmitted = 0;    ///< packets the devices accepted for transmission
  uint64_t default_drops = 0;  ///< dropped by pipeline.default.action: drop
  uint32_t mempool_size = 0;
  uint32_t mempool_in_use =
      0;  ///< mbufs not back in the pool after the ports closed; 0 if none leaked
};

/// Starts DPDK's EAL with the arguments the configuration stands for. Once per process.
Status init_eal(const config::Config& config, const std::string& argv0);
/// Releases EAL resources (memory, runtime files' locks) at exit.
void cleanup_eal();

/// The running pipeline. Create after init_eal(); destroy before cleanup_eal().
class Dataplane {
 public:
  /// Creates the mbuf pool, rings and lcore plans, and configures every port (not yet
  /// started). The error names the port or resource that failed and why.
  static Result<std::unique_ptr<Dataplane>> create(const config::Config& config);
  ~Dataplane();
  Dataplane(const Dataplane&) = delete;
  Dataplane& operator=(const Dataplane&) = delete;

  /// Starts the ports, waits up to each port's link_wait for its link to come up, and
  /// launches every data-plane lcore. A link still down is not an error: packets sent to
  /// it are dropped and counted until it comes up. `link_status` gets one line per port.
  Status start(std::vector<std::string>& link_status);
  /// Packets received so far, summed over rx lcores; safe to call while running.
  uint64_t received() const;
  /// Stops receiving, lets workers and tx lcores drain the rings, waits for every lcore,
  /// stops and closes the ports, and reports. Idempotent; the second call returns the
  /// same report.
  Report stop();
  /// One line per lcore: its id and roles, for the start-up banner.
  std::vector<std::string> describe_lcores() const;

  struct Impl;

 private:
  explicit Dataplane(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace segx::dataplane
