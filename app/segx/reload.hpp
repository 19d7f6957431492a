#pragma once
// Reloading segx's configuration while it runs (SIGHUP, `segxctl reload`, POST
// /v1/admin/reload): the file is read again with the loader and checks of --check-config,
// compared with the running configuration (config::reload_diff), and either applied as a
// whole (data plane, market, log level) or refused as a whole with every reason, changing
// nothing. Every reload runs on the main lcore, which owns the data plane's control; other
// threads ask for one and wait for its outcome.

#include <chrono>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "control.hpp"
#include "dataplane/dataplane.hpp"
#include "metrics/metrics.hpp"

namespace segx::app {

/// What one reload did.
struct ReloadOutcome {
  bool applied = false;
  uint64_t generation = 0;  ///< the running generation after it
  /// Applied: {"profiles": {added, changed, removed}, "default_action": bool,
  /// "subscribers": bool, "blocks": {added, changed, removed}, "log_level": name or null}.
  nlohmann::json changed = nlohmann::json::object();
  /// Refused: one object per reason: "message", and "file", "line", "column", "key" where
  /// known.
  nlohmann::json errors = nlohmann::json::array();
  /// Refused: why, in one line (the log's), also the answer's "detail".
  std::string reason;
  /// The answer of POST /v1/admin/reload; a refusal also carries the API's error fields
  /// ("error": "invalid", "detail": the reason).
  nlohmann::json to_json() const;
};

/// Runs reloads on the main lcore and answers other threads' requests for one.
class Reloader {
 public:
  /// `running` is the configuration segx started with; `level_from_command_line` keeps
  /// --log-level over log.level. Registers segx_config_reloads_total{result} and
  /// segx_config_generation in `registry`. `control` may be null (market disabled).
  Reloader(std::string path, const config::Config& running, dataplane::Dataplane& dp,
           ControlPlane* control, bool level_from_command_line, metrics::Registry& registry);

  /// Main lcore: reads the file again, compares, applies or refuses; logs one line, counts
  /// it, and tells systemd RELOADING=1 then READY=1. `cause` is for the log ("SIGHUP").
  ReloadOutcome reload(const std::string& cause);
  /// Main lcore, each turn of the control loop: runs one reload for every request waiting
  /// (requests that arrived together share one).
  void serve();
  /// Any thread: asks the main lcore for a reload and waits up to `timeout` for its outcome.
  /// nullopt when none came in time (the request is withdrawn if it has not begun) or segx
  /// is stopping.
  std::optional<ReloadOutcome> ask(std::chrono::milliseconds timeout);
  /// Main lcore, at shutdown: requests still waiting get no outcome; later ones none either.
  void close();

 private:
  struct Request {
    std::promise<std::optional<ReloadOutcome>> answer;
    bool withdrawn = false;  // under mutex_
  };

  std::string path_;
  config::Config running_;
  dataplane::Dataplane& dp_;
  ControlPlane* control_;
  bool level_from_command_line_;
  metrics::Family<metrics::Counter>& reloads_;
  metrics::Counter& applied_;
  metrics::Counter& refused_;
  metrics::Gauge& generation_;
  std::mutex mutex_;
  std::deque<std::shared_ptr<Request>> requests_;
  bool closed_ = false;
};

}  // namespace segx::app
