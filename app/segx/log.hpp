#pragma once
// segx's log: one line per event on stderr, filtered by level. Under systemd (stderr is the
// journal's stream, $JOURNAL_STREAM) each line starts with its syslog priority, "<5>", so
// the journal keeps the level; on a terminal or a file the line is written as it is. The
// data plane never logs per packet: its lines come from the control loop (Dataplane::poll,
// ControlPlane::tick), which this thread writes here.

#include <optional>
#include <string>
#include <string_view>

namespace segx::app::log {

/// Levels, valued as their syslog priorities (sd-daemon.h's SD_ERR ... SD_DEBUG).
enum class Level { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

/// "error", "warning", "notice", "info" or "debug"; nullopt for anything else.
std::optional<Level> parse_level(std::string_view name);
/// The name parse_level() takes for a level.
std::string_view level_name(Level level);

/// Lines less severe than `level` are not written. Default: info.
void set_level(Level level);
/// True when a line at `level` would be written.
bool enabled(Level level);

/// Writes `message` (one line; a message holding newlines is written line by line, each
/// with the priority) to stderr if `level` is enabled. Safe from any thread: each line is
/// one write(2).
void write(Level level, std::string_view message);

inline void error(std::string_view m) {
  write(Level::error, m);
}
inline void warning(std::string_view m) {
  write(Level::warning, m);
}
inline void notice(std::string_view m) {
  write(Level::notice, m);
}
inline void info(std::string_view m) {
  write(Level::info, m);
}
inline void debug(std::string_view m) {
  write(Level::debug, m);
}

}  // namespace segx::app::log
