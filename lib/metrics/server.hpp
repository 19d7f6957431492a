#pragma once
// The HTTP endpoint Prometheus scrapes: GET /metrics answers with the registry's text
// exposition. It runs on threads of its own (an accept thread and a small worker pool), never
// on an lcore, and every request is bounded: small bodies, read and write timeouts, a fixed
// number of workers.

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "metrics/metrics.hpp"

namespace segx::metrics {

/// A running /metrics endpoint. Stops and joins its threads when destroyed.
class Server {
 public:
  /// Binds host:port (port 0: any free port) and starts serving `registry`, which must
  /// outlive the server. Errors: the address cannot be bound (in use, not local).
  static Result<std::unique_ptr<Server>> start(const std::string& host, uint16_t port,
                                               const Registry& registry);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The bound port (the one chosen when 0 was asked for).
  uint16_t port() const { return port_; }
  /// "http://127.0.0.1:9464/metrics" ([host] for IPv6).
  std::string url() const;
  /// Stops accepting, finishes requests in progress, joins the threads. Idempotent.
  void stop();

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl, std::string host, uint16_t port);
  std::unique_ptr<Impl> impl_;
  std::string host_;
  uint16_t port_ = 0;
};

}  // namespace segx::metrics
