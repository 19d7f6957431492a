#pragma once
// Internal: how counters reach threads other than the main lcore. A reader (the metrics
// endpoint, a telemetry command) asks; the main lcore gathers a Stats at its next poll and
// publishes it; the reader gets that, or after a deadline the latest one. Only the main
// lcore touches ports and pools, and no lcore ever waits for a reader.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "dataplane/dataplane.hpp"

namespace segx::dataplane {

/// The meeting point of readers and the main lcore. Shared (by shared_ptr) with the
/// telemetry callbacks, which may outlive the data plane.
class StatsExchange {
 public:
  /// Asks for fresh counters and waits up to `wait`; then returns the latest published.
  std::shared_ptr<const Stats> get(std::chrono::milliseconds wait) {
    std::unique_lock lock(mutex_);
    if (final_) return latest_;
    const uint64_t ticket = ++requested_;
    cv_.wait_for(lock, wait, [&] { return served_ >= ticket || final_; });
    return latest_;
  }
  /// For the main lcore: true when a reader waits; `upto` is the last request to serve.
  bool pending(uint64_t& upto) {
    std::lock_guard lock(mutex_);
    upto = requested_;
    return !final_ && requested_ > served_;
  }
  /// For the main lcore: publishes counters gathered after request `upto` arrived. Final
  /// counters (after stop) answer every later request at once.
  void publish(std::shared_ptr<const Stats> stats, uint64_t upto, bool final) {
    {
      std::lock_guard lock(mutex_);
      latest_ = std::move(stats);
      if (upto > served_) served_ = upto;
      final_ = final_ || final;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::shared_ptr<const Stats> latest_ = std::make_shared<Stats>();
  uint64_t requested_ = 0;
  uint64_t served_ = 0;
  bool final_ = false;
};

/// What /segx/profiles says about a profile besides its counters.
struct ProfileInfo {
  std::string name;
  std::string output;
  std::string services;  ///< the chain, "count,pass"
  bool metered = false;
};

/// Registers the /segx/... telemetry commands (once per process) and points them at this
/// data plane's counters.
void telemetry_attach(std::shared_ptr<StatsExchange> exchange, std::vector<ProfileInfo> profiles);
/// The profiles telemetry describes, after a reload.
void telemetry_profiles(std::vector<ProfileInfo> profiles);
/// The commands answer "no data plane" from now on.
void telemetry_detach();

}  // namespace segx::dataplane
