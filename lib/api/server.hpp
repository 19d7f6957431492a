#pragma once
// The API on HTTP or HTTPS: the shared listener (http/server.hpp) with the API's limits, each
// complete request handed to Api::handle(). What the listener holds for every client, token or
// not: deadlines, connection caps per address and in total, bounded bodies, no inflation, and
// a per-address rate for requests without a valid token (docs/api.md#limits).

#include <cstdint>
#include <memory>
#include <string>

#include "api/api.hpp"
#include "api/auth.hpp"
#include "common/result.hpp"
#include "http/server.hpp"

namespace segx::api {

/// How the server listens, and what it allows each client.
struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  ///< 0: any free port
  uint32_t threads = 4;  ///< threads answering requests; a client's I/O never holds one
  /// Deadlines, keep-alive, connection caps and body_limit (bytes; a larger Content-Length
  /// gets 413 before the body is read, a chunked body 413 the moment it passes the limit).
  http::Limits limits;
  /// Requests per second per client address (IPv6: per /64) without a valid token; beyond
  /// it, 429 with Retry-After. 0: none.
  uint32_t anonymous_rate_limit = 20;
  http::Tls tls;  ///< cert and key set: HTTPS
};

/// A running API endpoint. Stops and joins its threads when destroyed.
class Server {
 public:
  /// Binds and starts serving `api`; `tokens` tells which requests carry a valid token (the
  /// others count against anonymous_rate_limit). Both must outlive the server. Errors: the
  /// certificate or key cannot be loaded, a TLS cipher list that is not ECDHE with AEAD, the
  /// address cannot be bound (in use, not local).
  static Result<std::unique_ptr<Server>> start(const ServerOptions& options, Api& api,
                                               const TokenStore& tokens);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The bound port (the one chosen when 0 was asked for).
  uint16_t port() const { return http_->port(); }
  /// "https://127.0.0.1:8080" ([host] for IPv6; 127.0.0.1 for 0.0.0.0).
  std::string url() const { return http_->url(); }
  /// The listener's counters (connections, refusals), for metrics::add_http_collector().
  std::shared_ptr<const http::Stats> stats() const { return http_->stats(); }
  /// Stops accepting, finishes requests in progress, joins the threads. Idempotent.
  void stop();

 private:
  explicit Server(std::unique_ptr<http::Server> http) : http_(std::move(http)) {}
  std::unique_ptr<http::Server> http_;
};

}  // namespace segx::api
