#include "log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace segx::app::log {
namespace {

std::atomic<int> threshold{static_cast<int>(Level::info)};

// systemd sets JOURNAL_STREAM to "<device>:<inode>" of the stream it connected stdout and
// stderr to; only when stderr is still that stream does a "<N>" prefix reach the journal
// (anywhere else it would be noise in the text).
bool stderr_is_journal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (!env) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

const bool journal = stderr_is_journal();

void write_line(Level level, std::string_view line) {
  std::string out;
  out.reserve(line.size() + 4);
  if (journal) {
    out += '<';
    out += static_cast<char>('0' + static_cast<int>(level));
    out += '>';
  }
  out += line;
  out += '\n';
  // One write per line, so lines from the control loop and the API's threads never mix.
  const char* p = out.data();
  size_t left = out.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) return;  // nowhere to report a failing stderr
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

std::optional<Level> parse_level(std::string_view name) {
  for (Level l : {Level::error, Level::warning, Level::notice, Level::info, Level::debug}) {
    if (name == level_name(l)) return l;
  }
  return std::nullopt;
}

std::string_view level_name(Level level) {
  switch (level) {
    case Level::error:
      return "error";
    case Level::warning:
      return "warning";
    case Level::notice:
      return "notice";
    case Level::info:
      return "info";
    case Level::debug:
      return "debug";
  }
  return "info";
}

void set_level(Level level) {
  threshold.store(static_cast<int>(level), std::memory_order_relaxed);
}

bool enabled(Level level) {
  return static_cast<int>(level) <= threshold.load(std::memory_order_relaxed);
}

void write(Level level, std::string_view message) {
  if (!enabled(level)) return;
  size_t start = 0;
  while (true) {
    const size_t end = message.find('\n', start);
    write_line(level, message.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos || end + 1 == message.size()) break;
    start = end + 1;
  }
}

}  // namespace segx::app::log
