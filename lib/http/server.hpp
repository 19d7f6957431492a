#pragma once
// segx's HTTP/1.1 listener (Boost.Beast over Asio, optionally TLS through OpenSSL), shared by
// the REST API (lib/api) and /metrics (lib/metrics). It holds the limits that must stand
// without a token:
//
// - a client's I/O never holds a thread: every read and write is asynchronous, and a thread
//   is busy only while the handler answers a complete request;
// - deadlines: the TLS handshake, request line and headers within `header_timeout` of their
//   first byte (of the accept for a new connection); the whole body within `body_timeout` of
//   the end of the headers; no silence longer than `read_timeout` in between; a whole response
//   within `write_timeout`; an idle kept-alive connection closes after `keep_alive_timeout`,
//   and after `keep_alive_requests` requests;
// - caps on open connections in total and per client (http/client_limits.hpp: an address,
//   an IPv6 /64): beyond either, a new connection is closed at once and counted;
// - bodies: a Content-Length above `body_limit` is refused before a byte of the body is read;
//   a chunked body is counted as it arrives and refused the moment it passes the limit; a
//   Content-Encoding other than identity is refused (415) unread: nothing is ever inflated.
//   Memory per connection is bounded by body_limit + header_limit + a 16 KiB read buffer;
// - an optional per-client rate limit for the requests a predicate selects (the API's: those
//   without a valid token): beyond it, 429 with Retry-After, the handler not called.
//
// The listener answers a refusal itself (status, a code and a detail through
// Options::error, so the API's refusals keep its JSON shape) and then closes the connection,
// reading and discarding what the client still sends for at most two seconds (and 4 MiB) so
// that it sees the answer instead of a reset.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace segx::http {

/// One complete request as a handler sees it.
struct Request {
  std::string method;  ///< as sent ("GET", "HEAD", ...)
  std::string target;  ///< as sent ("/v1/lots?state=open")
  std::string path;    ///< decoded, without the query (http/target.hpp)
  std::multimap<std::string, std::string> query;
  std::vector<std::pair<std::string, std::string>> headers;  ///< as sent, in order
  std::string body;
  std::string peer;  ///< the client's address ("127.0.0.1", "::1")
  /// The first header of that name (case-insensitive), or "".
  std::string header(std::string_view name) const;
};

struct Response;
/// A response that goes on after its head (Server-Sent Events): the listener writes the
/// status, headers and Response::body, then calls `next` on the connection's thread every
/// `interval` and writes what it returns, until it returns nullopt, the client leaves, a
/// write takes longer than write_timeout, or the listener stops. The connection then closes
/// (the body ends with the connection: no Content-Length, "Connection: close"). After
/// `heartbeat` without anything to write, a comment line (": keep-alive") keeps proxies and
/// the client from timing out. `next` must be quick: it runs on an I/O thread.
struct Stream {
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds heartbeat{15000};
  std::function<std::optional<std::string>()> next;
};
/// Hands a waiting response its answer: `make` builds it on the connection's thread. Call it
/// once, from any thread.
using Resume = std::function<void(std::function<Response()> make)>;

/// One response. Content-Length and Connection are set by the listener; for HEAD the body
/// is dropped and its length kept.
struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  /// Set when the answer waits for something (a ledger commit): the listener calls it with a
  /// Resume and lets the thread serve other connections meanwhile; the rest of this
  /// Response is ignored. The connection holds no thread while it waits.
  std::function<void(Resume)> later;
  /// Set for a response that goes on (see Stream); HEAD gets the head alone.
  std::shared_ptr<Stream> stream;
};

using Handler = std::function<Response(const Request&)>;
/// Builds the response for a refusal the listener makes itself: its status, a short code
/// ("payload_too_large") and a sentence for the client.
using ErrorBody =
    std::function<Response(int status, const std::string& code, const std::string& detail)>;

/// What a listener allows each client. Durations in milliseconds.
struct Limits {
  std::chrono::milliseconds header_timeout{5000};
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds read_timeout{5000};
  std::chrono::milliseconds write_timeout{5000};
  std::chrono::milliseconds keep_alive_timeout{5000};  ///< 0: one request per connection
  uint32_t keep_alive_requests = 100;
  uint32_t max_connections = 512;
  uint32_t max_connections_per_address = 16;
  uint64_t body_limit = 64 * 1024;    ///< bytes
  uint32_t header_limit = 16 * 1024;  ///< request line and headers, bytes; beyond: 431
};

/// TLS settings: both files set means HTTPS only. TLS 1.2 and 1.3, nothing older.
struct Tls {
  std::string cert;  ///< PEM certificate chain
  std::string key;   ///< PEM private key, unencrypted
  /// TLS 1.2 suites, OpenSSL's list syntax; empty: default_tls12_ciphers. Every suite must
  /// be ECDHE with an AEAD cipher, or start() fails naming the first that is not.
  std::string ciphers;
  /// TLS 1.3 suites, OpenSSL's syntax; empty: OpenSSL's default (all three are AEAD).
  std::string ciphersuites;
  bool enabled() const { return !cert.empty() && !key.empty(); }
};

/// Forward-secret AEAD suites for TLS 1.2 (ECDHE with AES-GCM or ChaCha20-Poly1305).
inline constexpr std::string_view default_tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// A per-client request rate for the requests `applies` selects (all when it is empty).
struct RateLimit {
  uint32_t per_second = 0;  ///< 0: none
  std::function<bool(const Request&)> applies;
  std::string detail;  ///< the 429's sentence
};

/// How to listen.
struct Options {
  std::string host = "127.0.0.1";         ///< an address or a name
  uint16_t port = 0;                      ///< 0: any free port
  uint32_t threads = 2;                   ///< threads that run handlers (and all I/O between)
  std::string thread_name = "segx-http";  ///< their name in top -H and ps (15 bytes at most)
  Limits limits;
  Tls tls;
  RateLimit rate_limit;
  ErrorBody error;  ///< empty: "<code>: <detail>" as text/plain
  /// Configuration keys in messages: "market.api.listen" names the endpoint in a bind
  /// error; "market.api" prefixes limits in refusals ("... (market.api.body_limit)"), empty:
  /// limits are not named.
  std::string listen_key = "listen";
  std::string limits_key;
};

/// Why the listener refused a connection or a request (segx_http_*_refused_total's reasons).
enum class Refusal : uint8_t {
  max_connections,              ///< connection closed at accept: the total cap
  max_connections_per_address,  ///< connection closed at accept: the client's cap
  tls_handshake,                ///< handshake failed (no shared suite, not TLS, ...)
  header_timeout,               ///< 408: request line and headers too slow
  body_timeout,                 ///< 408: body too slow
  read_timeout,                 ///< 408: silent too long in the middle of a request
  write_timeout,                ///< response not taken in time: connection closed
  header_limit,                 ///< 431
  body_limit,                   ///< 413
  content_encoding,             ///< 415
  transfer_encoding,            ///< 501: a transfer coding other than chunked
  malformed,                    ///< 400
  rate_limited,                 ///< 429
};
inline constexpr size_t refusal_count = 13;
/// The reason's label: "max_connections", "header_timeout", ...
std::string_view refusal_name(Refusal r);

/// Counters of one listener, updated as things happen; read them at any time.
struct Stats {
  std::atomic<uint64_t> connections{0};      ///< accepted and admitted
  std::atomic<int64_t> open_connections{0};  ///< open now
  std::atomic<uint64_t> requests{0};         ///< complete requests handed to the handler
  std::atomic<uint64_t> refused[refusal_count] = {};
  uint64_t refusals(Refusal r) const { return refused[static_cast<size_t>(r)].load(); }
};

/// A running listener. Stops and joins its threads when destroyed.
class Server {
 public:
  /// Binds and starts serving. `handler` is called on the listener's threads, several at
  /// once, and must be thread-safe; a handler that throws gets a 500. Errors: the certificate
  /// or key cannot be loaded, a cipher list OpenSSL rejects or that names a suite without
  /// ECDHE and AEAD, the address cannot be bound (in use, not local).
  static Result<std::unique_ptr<Server>> start(Options options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The bound port (the one chosen when 0 was asked for).
  uint16_t port() const { return port_; }
  /// "https://127.0.0.1:8080" ([host] for IPv6; 127.0.0.1 for 0.0.0.0, ::1 for ::).
  std::string url() const;
  /// The counters; they outlive the server (a metrics collector may hold them).
  std::shared_ptr<const Stats> stats() const { return stats_; }
  /// Stops accepting, closes idle connections, lets requests being answered finish and
  /// their responses go out (for at most write_timeout + 2 s), joins the threads. Idempotent.
  void stop();

  struct Impl;

 private:
  Server(std::shared_ptr<Impl> impl, std::shared_ptr<const Stats> stats, std::string host,
         uint16_t port, bool tls);
  std::shared_ptr<Impl> impl_;
  std::shared_ptr<const Stats> stats_;
  std::string host_;
  uint16_t port_ = 0;
  bool tls_ = false;
};

}  // namespace segx::http
