#include "reload.hpp"

#include <algorithm>

#include "config/loader.hpp"
#include "config/reload_diff.hpp"
#include "dataplane/service.hpp"
#include "log.hpp"
#include "service.hpp"

namespace segx::app {

namespace {

using json = nlohmann::json;

json names(const std::vector<std::string>& v) {
  return v.empty() ? json::array() : json(v);
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v)
    s += (s.empty() ? "" : ", ") + x;
  return s;
}

json error_json(const config::Diagnostic& d) {
  json e = {{"message", config::format(d)}, {"file", d.file}};
  if (d.mark.line > 0) {
    e["line"] = d.mark.line;
    e["column"] = d.mark.column;
  }
  if (!d.path.empty()) e["key"] = d.path;
  return e;
}

}  // namespace

json ReloadOutcome::to_json() const {
  json j = {{"result", applied ? "applied" : "refused"}, {"generation", generation}};
  if (applied) {
    j["changed"] = changed;
  } else {
    j["errors"] = errors;
    j["error"] = "invalid";
    j["detail"] = "reload refused, the running configuration stays: " + reason;
  }
  return j;
}

Reloader::Reloader(std::string path, const config::Config& running, dataplane::Dataplane& dp,
                   ControlPlane* control, bool level_from_command_line, metrics::Registry& registry)
    : path_(std::move(path)),
      running_(running),
      dp_(dp),
      control_(control),
      level_from_command_line_(level_from_command_line),
      reloads_(registry.add_counter("segx_config_reloads_total",
                                    "Configuration reloads asked for (SIGHUP, segxctl reload, "
                                    "POST /v1/admin/reload), by result: applied or refused")),
      applied_(reloads_.add({{"result", "applied"}})),
      refused_(reloads_.add({{"result", "refused"}})),
      generation_(registry
                      .add_gauge("segx_config_generation",
                                 "Generation of the running configuration: 1 at start, +1 for "
                                 "each applied reload that changed what the data plane runs")
                      .add({})) {
  generation_.set(static_cast<double>(dp_.generation()));
}

ReloadOutcome Reloader::reload(const std::string& cause) {
  service::reloading();
  ReloadOutcome out;
  out.generation = dp_.generation();
  const auto refuse = [&](const std::string& why) {
    out.reason = why;
    log::warning("segx: " + cause +
                 ": reload refused, the running configuration stays (generation " +
                 std::to_string(out.generation) + "): " + why);
    refused_.increment();
    service::ready("running with " + path_ + " (reload refused)");
    return out;
  };

  // 1. The file, read and checked as --check-config does.
  auto loaded = config::load_file(path_, dataplane::load_options());
  std::string first;
  for (const auto& d : loaded.diagnostics) {
    if (d.severity == config::Diagnostic::Severity::error) {
      out.errors.push_back(error_json(d));
      if (first.empty()) first = config::format(d);
    } else {
      log::warning("segx: " + cause + ": " + config::format(d));
    }
  }
  if (!loaded.ok()) {
    return refuse(std::to_string(out.errors.size()) + " error(s) in " + path_ +
                  ", first: " + first);
  }
  const config::Config& next = *loaded.config;

  // 2. What differs; anything that needs a restart refuses the whole reload.
  const config::ReloadDiff diff = config::reload_diff(running_, next);
  if (!diff.live_only()) {
    for (const auto& key : diff.restart) {
      out.errors.push_back({{"message", key + " changed: it needs a restart of segx"},
                            {"file", path_},
                            {"key", key}});
    }
    return refuse("changed keys need a restart: " + joined(diff.restart));
  }
  // 3. The market must be able to take the subscribers (no live lease's identifiers move).
  if (control_) {
    if (Status s = control_->check_reload(next); !s) {
      out.errors.push_back({{"message", s.error()}, {"file", path_}, {"key", "subscribers"}});
      return refuse(s.error());
    }
  }

  // 4. Apply: the data plane first (it can still refuse with nothing changed), then the
  // market (its check above still holds: leases are awarded only on this thread), then
  // the log level.
  const bool data_plane = std::any_of(diff.live.begin(), diff.live.end(),
                                      [](const std::string& k) { return k != "log.level"; });
  dataplane::ReloadChanges changes;
  if (data_plane) {
    auto r = dp_.reload(next);
    if (!r) {
      out.errors.push_back({{"message", r.error()}, {"file", path_}});
      return refuse(r.error());
    }
    changes = std::move(r).value();
  }
  if (control_) {
    if (Status s = control_->apply_reload(next); !s) {
      // Not reached while check_reload holds (see above); said loudly if it ever is.
      log::error("segx: " + cause + ": the market kept its subscribers: " + s.error());
    }
  }
  const bool level_changed = next.log.level != running_.log.level;
  if (level_changed && !level_from_command_line_)
    log::set_level(log::parse_level(next.log.level).value_or(log::Level::info));
  running_ = next;

  out.applied = true;
  out.generation = dp_.generation();
  generation_.set(static_cast<double>(out.generation));
  applied_.increment();
  out.changed = {{"profiles",
                  {{"added", names(changes.profiles_added)},
                   {"changed", names(changes.profiles_changed)},
                   {"removed", names(changes.profiles_removed)}}},
                 {"default_action", changes.default_action},
                 {"subscribers", changes.subscribers},
                 {"blocks",
                  {{"added", names(changes.blocks_added)},
                   {"changed", names(changes.blocks_changed)},
                   {"removed", names(changes.blocks_removed)}}},
                 {"log_level", level_changed ? json(next.log.level) : json(nullptr)}};

  std::string what;
  const auto part = [&](const std::string& label, const std::vector<std::string>& v) {
    if (!v.empty()) what += (what.empty() ? "" : "; ") + label + " " + joined(v);
  };
  part("profiles added", changes.profiles_added);
  part("profiles changed", changes.profiles_changed);
  part("profiles removed", changes.profiles_removed);
  if (changes.default_action) what += std::string(what.empty() ? "" : "; ") + "default action";
  if (changes.subscribers) what += std::string(what.empty() ? "" : "; ") + "subscribers";
  part("blocks added", changes.blocks_added);
  part("blocks changed", changes.blocks_changed);
  part("blocks removed", changes.blocks_removed);
  if (level_changed) {
    what += std::string(what.empty() ? "" : "; ") + "log.level " + next.log.level +
            (level_from_command_line_ ? " (--log-level holds)" : "");
  }
  log::notice("segx: " + cause + ": configuration reloaded (generation " +
              std::to_string(out.generation) + "): " + (what.empty() ? "nothing changed" : what));
  service::ready("running with " + path_ + " (generation " + std::to_string(out.generation) + ")");
  return out;
}

void Reloader::serve() {
  std::deque<std::shared_ptr<Request>> waiting;
  {
    std::lock_guard lock(mutex_);
    for (auto& r : requests_) {
      if (!r->withdrawn) waiting.push_back(std::move(r));
    }
    requests_.clear();
  }
  if (waiting.empty()) return;
  const ReloadOutcome outcome = reload("POST /v1/admin/reload");
  for (auto& r : waiting)
    r->answer.set_value(outcome);
}

std::optional<ReloadOutcome> Reloader::ask(std::chrono::milliseconds timeout) {
  auto r = std::make_shared<Request>();
  auto answer = r->answer.get_future();
  {
    std::lock_guard lock(mutex_);
    if (closed_) return std::nullopt;
    requests_.push_back(r);
  }
  if (answer.wait_for(timeout) == std::future_status::ready) return answer.get();
  {
    std::lock_guard lock(mutex_);
    r->withdrawn = true;
  }
  return std::nullopt;
}

void Reloader::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  for (auto& r : requests_)
    r->answer.set_value(std::nullopt);
  requests_.clear();
}

}  // namespace segx::app
