#pragma once
// The API on HTTP or HTTPS (cpp-httplib): its own accept thread and a fixed pool of workers,
// never an lcore. Every limit is explicit: body size, read and write timeouts, keep-alive,
// workers. Each request goes to Api::handle().

#include <cstdint>
#include <memory>
#include <string>

#include "api/api.hpp"
#include "common/result.hpp"

namespace segx::api {

/// How the server listens.
struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  ///< 0: any free port
  uint32_t threads = 4;
  uint64_t body_limit = 64 * 1024;  ///< bytes; larger bodies get 413 before they are read
  int64_t read_timeout_ms = 5000;
  int64_t write_timeout_ms = 5000;
  std::string tls_cert;  ///< PEM files; both set: HTTPS
  std::string tls_key;
};

/// A running API endpoint. Stops and joins its threads when destroyed.
class Server {
 public:
  /// Binds and starts serving `api`, which must outlive the server. Errors: the certificate
  /// or key cannot be loaded, the address cannot be bound (in use, not local).
  static Result<std::unique_ptr<Server>> start(const ServerOptions& options, Api& api);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The bound port (the one chosen when 0 was asked for).
  uint16_t port() const { return port_; }
  /// "https://127.0.0.1:8080" ([host] for IPv6; 127.0.0.1 for 0.0.0.0).
  std::string url() const;
  /// Stops accepting, finishes requests in progress, joins the threads. Idempotent.
  void stop();

  struct Impl;

 private:
  Server(std::unique_ptr<Impl> impl, std::string host, uint16_t port, bool tls);
  std::unique_ptr<Impl> impl_;
  std::string host_;
  uint16_t port_ = 0;
  bool tls_ = false;
};

}  // namespace segx::api
