#pragma once
// A raw TCP client for tests that misbehave on purpose: requests sent a byte at a time, bodies
// that never end, connections held open, from a chosen loopback address. Plain HTTP only; it
// reads responses just well enough to check status, headers and a Content-Length body.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace segx::test {

/// One HTTP response as read off the wire.
struct RawResponse {
  int status = 0;
  std::string head;  ///< status line and headers
  std::string body;
  /// The first header of that name (case-insensitive), or "".
  std::string header(std::string_view name) const;
};

/// One TCP connection to an IPv4 address. Non-blocking underneath: every call has a deadline.
class RawClient {
 public:
  /// Connects to host:port, from `source` (another loopback address such as 127.0.0.2) when
  /// it is not empty. Check connected().
  RawClient(const std::string& host, uint16_t port, const std::string& source = "");
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  /// Sends all of `data`; false when the peer closed or reset the connection, or when the data
  /// did not fit in `timeout`.
  bool send(std::string_view data, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// Reads one response (Content-Length bodies only; none at all with `to_head`, the answer to
  /// a HEAD); nullopt when the connection closed or the time ran out first.
  std::optional<RawResponse> response(std::chrono::milliseconds timeout, bool to_head = false);
  /// True when a response has started to arrive (bytes are waiting), without reading it.
  bool readable();
  /// True when the peer closes or resets the connection within `timeout`; bytes it sends
  /// before that are read and dropped.
  bool closed_within(std::chrono::milliseconds timeout);
  /// Everything that arrives within `timeout` or until the peer closes (then `closed`).
  std::string read_for(std::chrono::milliseconds timeout, bool* closed = nullptr);
  void close();

 private:
  // Reads what is there into buffer_, waiting at most until `until`. -1: closed or reset.
  int fill(std::chrono::steady_clock::time_point until);
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace segx::test
