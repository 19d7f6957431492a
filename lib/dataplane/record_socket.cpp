#include "dataplane/record_socket.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace segx::dataplane {

namespace {
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

RecordSocket::RecordSocket(std::string path, size_t max_pending_bytes)
    : path_(std::move(path)), max_pending_(max_pending_bytes) {
  connect_now();
}

RecordSocket::~RecordSocket() {
  flush();
  dropped_ += pending_lines_;
  disconnect();
}

void RecordSocket::connect_now() {
  last_attempt_ns_ = now_ns();
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(addr.sun_path)) {
    close(fd);
    return;
  }
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return;
  }
  fd_ = fd;
}

void RecordSocket::disconnect() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void RecordSocket::write(std::string_view line) {
  // Without a collector nothing is kept: a record is worth sending only while fresh.
  if (fd_ < 0 || pending_.size() + line.size() > max_pending_) {
    ++dropped_;
    return;
  }
  pending_.append(line);
  ++pending_lines_;
}

void RecordSocket::flush() {
  if (fd_ < 0) {
    if (now_ns() - last_attempt_ns_ >= 1'000'000'000) connect_now();
    return;
  }
  size_t done = 0;
  while (done < pending_.size()) {
    const ssize_t n =
        send(fd_, pending_.data() + done, pending_.size() - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    // The collector went away: what it did not get is lost, counted; reconnect later.
    const size_t whole = static_cast<size_t>(
        std::count(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(done), '\n'));
    sent_ += whole;
    dropped_ += pending_lines_ - whole;
    pending_.clear();
    pending_lines_ = 0;
    disconnect();
    return;
  }
  const size_t whole = static_cast<size_t>(
      std::count(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(done), '\n'));
  sent_ += whole;
  pending_lines_ -= whole;
  pending_.erase(0, done);
}

}  // namespace segx::dataplane
