#include "raw_http.hpp"

#include <utility>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace segx::test {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point until) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

std::string RawResponse::header(std::string_view name) const {
  size_t at = head.find("\r\n");
  while (at != std::string::npos && at + 2 < head.size()) {
    const size_t end = head.find("\r\n", at + 2);
    const std::string_view line = std::string_view(head).substr(
        at + 2, (end == std::string::npos ? head.size() : end) - at - 2);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos && iequals(line.substr(0, colon), name)) {
      std::string_view v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ')
        v.remove_prefix(1);
      return std::string(v);
    }
    at = end;
  }
  return {};
}

RawClient::RawClient(const std::string& host, uint16_t port, const std::string& source) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) return;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (!source.empty()) {
    inet_pton(AF_INET, source.c_str(), &a.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close();
      return;
    }
  }
  a.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close();
    return;
  }
  const int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
}

RawClient::~RawClient() {
  close();
}

void RawClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawClient::send(std::string_view data, std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  while (fd_ >= 0 && !data.empty()) {
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, remaining_ms(until)) <= 0) return false;
    if (p.revents & (POLLERR | POLLHUP)) return false;
  }
  return fd_ >= 0;
}

int RawClient::fill(Clock::time_point until) {
  if (fd_ < 0) return -1;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, remaining_ms(until)) <= 0) return 0;
  char chunk[16384];
  const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
  if (n > 0) {
    buffer_.append(chunk, static_cast<size_t>(n));
    return static_cast<int>(n);
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
  return -1;
}

std::optional<RawResponse> RawClient::response(std::chrono::milliseconds timeout, bool to_head) {
  const auto until = Clock::now() + timeout;
  size_t end = 0;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (fill(until) < 0 || Clock::now() >= until) {
      if (buffer_.find("\r\n\r\n") != std::string::npos) break;
      return std::nullopt;
    }
  }
  end = buffer_.find("\r\n\r\n");
  RawResponse r;
  r.head = buffer_.substr(0, end);
  if (r.head.size() > 12) r.status = std::atoi(r.head.c_str() + 9);
  const std::string length = r.header("Content-Length");
  const size_t n = length.empty() || to_head ? 0 : std::stoul(length);
  while (buffer_.size() < end + 4 + n) {
    if (fill(until) < 0 || Clock::now() >= until) {
      if (buffer_.size() >= end + 4 + n) break;
      return std::nullopt;
    }
  }
  r.body = buffer_.substr(end + 4, n);
  buffer_.erase(0, end + 4 + n);
  return r;
}

bool RawClient::readable() {
  if (!buffer_.empty()) return true;
  if (fd_ < 0) return false;
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

std::string RawClient::read_for(std::chrono::milliseconds timeout, bool* closed) {
  const auto until = Clock::now() + timeout;
  bool gone = false;
  while (!gone && Clock::now() < until)
    gone = fill(until) < 0;
  if (closed) *closed = gone;
  return std::exchange(buffer_, std::string());
}

bool RawClient::closed_within(std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    if (fill(until) < 0) return true;
    buffer_.clear();
  }
  return false;
}

}  // namespace segx::test
