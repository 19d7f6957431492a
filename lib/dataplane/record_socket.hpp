#pragma once
// Segment records to a Unix stream socket (results.socket): a collector listens, segx
// connects. The main lcore writes without ever blocking: lines wait in a bounded buffer
// while the collector is slow, and are dropped and counted when it is full or the collector
// is gone; segx reconnects at most once a second.

#include <cstdint>
#include <string>
#include <string_view>

namespace segx::dataplane {

/// A non-blocking line writer to a Unix stream socket. Not thread-safe: the main lcore only.
class RecordSocket {
 public:
  /// Connects now if the collector listens; otherwise at a later flush().
  explicit RecordSocket(std::string path, size_t max_pending_bytes = 4u << 20);
  ~RecordSocket();
  RecordSocket(const RecordSocket&) = delete;
  RecordSocket& operator=(const RecordSocket&) = delete;

  /// Queues one whole line (with its newline); dropped and counted if the buffer is full.
  void write(std::string_view line);
  /// Sends what the socket takes now; reconnects (at most once a second) when needed.
  void flush();
  /// Lines handed to the collector in full.
  uint64_t sent() const { return sent_; }
  /// Lines lost: buffer full, collector absent, or connection lost with them unsent.
  uint64_t dropped() const { return dropped_; }
  bool connected() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

 private:
  void connect_now();
  void disconnect();

  std::string path_;
  size_t max_pending_;
  int fd_ = -1;
  std::string pending_;
  size_t pending_lines_ = 0;
  int64_t last_attempt_ns_ = 0;
  uint64_t sent_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace segx::dataplane
