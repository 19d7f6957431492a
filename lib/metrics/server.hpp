#pragma once
// The HTTP endpoint Prometheus scrapes: GET /metrics answers with the registry's text
// exposition. It runs on the shared listener (http/server.hpp) with threads of its own, never
// on an lcore, and holds the same limits as the API: deadlines, small bodies, caps on
// connections in total and per client address.

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "http/server.hpp"
#include "metrics/metrics.hpp"

namespace segx::metrics {

/// Connection caps of the endpoint (metrics.max_connections, metrics.max_connections_per_address).
struct ServerLimits {
  uint32_t max_connections = 32;
  uint32_t max_connections_per_address = 8;
};

/// A running /metrics endpoint. Stops and joins its threads when destroyed.
class Server {
 public:
  /// Binds host:port (port 0: any free port) and starts serving `registry`, which must
  /// outlive the server. Errors: the address cannot be bound (in use, not local).
  static Result<std::unique_ptr<Server>> start(const std::string& host, uint16_t port,
                                               const Registry& registry, ServerLimits limits = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The bound port (the one chosen when 0 was asked for).
  uint16_t port() const { return port_; }
  /// "http://127.0.0.1:9464/metrics" ([host] for IPv6).
  std::string url() const;
  /// The listener's counters (connections, refusals), for add_http_collector().
  std::shared_ptr<const http::Stats> stats() const { return http_->stats(); }
  /// Stops accepting, finishes requests in progress, joins the threads. Idempotent.
  void stop();

 private:
  explicit Server(std::unique_ptr<http::Server> http);
  std::unique_ptr<http::Server> http_;
  uint16_t port_ = 0;
};

/// Families of an HTTP listener's counters, read at scrape time, labelled server="<server>":
/// segx_http_connections_total, segx_http_connections_open,
/// segx_http_connections_refused_total{reason} (closed at accept: a cap) and
/// segx_http_requests_refused_total{reason} (answered by the listener itself: a deadline, a
/// limit, a malformed request, the per-address rate). Several listeners' collectors merge into
/// one group per family.
void add_http_collector(Registry& registry, const std::string& server,
                        std::shared_ptr<const http::Stats> stats);

}  // namespace segx::metrics
