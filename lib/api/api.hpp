#pragma once
// The REST API of the market (docs/api.md): routes under /v1, bearer-token authentication,
// per-token rate limits, JSON errors, the OpenAPI document and the web board at /ui. Api
// turns one Request into one Response with no network involved, so every rule is testable
// in-process; api/server.hpp puts it on HTTP(S).
//
// Errors are {"error": code, "detail": text}: 400 malformed JSON, 401 no or unknown token,
// 403 role or ownership, 404 unknown resource or route (or one the caller may not see),
// 405 method, 409 a lot or lease in the wrong state (closed, cancelled, sealed bid already
// placed, lease not finished, already rated), 413 body too large, 422 invalid field or a
// market rule, 429 rate limit, 503 ledger unavailable. The status comes from the refusal's
// ErrorKind, never from its wording. Bad input never gets a 500.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/auth.hpp"
#include "ledger/ledger.hpp"
#include "market/market.hpp"
#include "market/series.hpp"
#include "metrics/metrics.hpp"

namespace segx::api {

/// One HTTP request as the API sees it.
struct Request {
  std::string method;  ///< GET, POST, PUT, PATCH, DELETE, OPTIONS (HEAD is served as GET)
  std::string path;    ///< without the query
  std::multimap<std::string, std::string> query;
  std::string body;
  std::string authorization;  ///< the Authorization header
  std::string last_event_id;  ///< the Last-Event-ID header (an event stream resuming)
};

/// A response that goes on after its first part (Server-Sent Events): every `interval` the
/// server calls `next` and sends what it returns ("" for nothing yet), until it returns
/// nullopt; see http::Stream.
struct Stream {
  std::chrono::milliseconds interval{1000};
  std::function<std::optional<std::string>()> next;
};

struct Response;
/// Hands a waiting response its answer: `make` builds it (on the connection's thread, for
/// the server). Called once, from any thread.
using Resume = std::function<void(std::function<Response()> make)>;

/// One HTTP response.
struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  /// Set when the answer waits for the ledger (a bid until it is durable): the caller calls
  /// it with a Resume instead of using the rest of this Response, and no thread waits.
  std::function<void(Resume)> later;
  /// Set for an event stream: `body` is its first part, then Stream::next's.
  std::shared_ptr<Stream> stream;
};

/// The answer of a Response, waiting on this thread for one that comes later (tests, tools).
Response wait(Response r);

/// A profile as the API shows it (read only).
struct ProfileInfo {
  std::string name;
  bool metered = false;  ///< metered profiles are the ones sold
  std::vector<std::string> services;
  std::string output;
};

/// What POST /v1/admin/reload answers: a status (200 applied, 422 refused, 503 no outcome
/// in time) and its JSON body.
struct AdminAnswer {
  int status = 200;
  nlohmann::json body;
};

/// What the API needs besides the market.
struct ApiOptions {
  uint64_t body_limit = 64 * 1024;  ///< bytes
  uint32_t rate_limit = 100;        ///< requests per second per token
  std::vector<ProfileInfo> profiles;
  std::string version;  ///< segx's, for /healthz
  /// A directory to serve /ui from instead of the board compiled into segx (development:
  /// edit and reload without rebuilding). Empty: the compiled-in board.
  std::string board_dir;
  /// Reloads the configuration (POST /v1/admin/reload): called on one of the threads that
  /// run changes (wait_threads), it hands the request to whoever runs reloads and waits for
  /// the outcome. Empty: the route answers 503.
  std::function<AdminAnswer()> reload;
  /// Blocks' per-second delivery series (GET /v1/blocks/{id}, .../series, .../stream). Null:
  /// no data plane, so blocks have no live figures.
  const market::BlockSeries* series = nullptr;
  /// Threads that run the changes which wait for their commit (every POST, PUT, PATCH and
  /// DELETE but a bid, which waits on no thread), so that the HTTP threads never block.
  uint32_t wait_threads = 2;
};

/// Who may call a route.
enum class Access { open, token };

/// A route of the API, as served and as documented in the OpenAPI document.
struct RouteInfo {
  std::string method;   ///< GET, POST, DELETE
  std::string pattern;  ///< "/v1/lots/{id}"
  Access access = Access::token;
  std::vector<market::Role> roles;  ///< empty: any authenticated role
  std::string summary;
  std::string tag;
  std::string request_schema;   ///< components/schemas name, or empty
  std::string response_schema;  ///< components/schemas name, or empty
  int success = 200;            ///< status of the success response
  std::vector<int> errors;      ///< error statuses the route can answer
};

/// The API over one market. Thread-safe: the HTTP server's workers call handle() at once.
class Api {
 public:
  /// `tokens`, `market`, `ledger` and `clock` must outlive the Api.
  Api(ApiOptions options, TokenStore& tokens, market::Market& market, ledger::Ledger& ledger,
      const market::Clock& clock);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  /// Answers one request. Never throws. A change that waits for its commit comes back with
  /// Response::later set: it runs on the Api's own threads (ApiOptions::wait_threads).
  Response handle(const Request& request);
  /// Every /v1 route and /healthz, in the order they are matched.
  std::vector<RouteInfo> routes() const;
  /// The OpenAPI 3.0 document of routes(), served at /v1/openapi.json.
  nlohmann::json openapi() const;
  /// The profiles /v1/profiles shows, after a reload changed them.
  void set_profiles(std::vector<ProfileInfo> profiles);
  /// Registers segx_api_requests_total{route,method,code} and
  /// segx_api_request_duration_seconds{route}; call once, before serving.
  void add_metrics(metrics::Registry& registry);

  /// An error response {"error": code, "detail": detail}.
  static Response error(int status, const std::string& code, const std::string& detail);

  struct Route;
  struct Context;
  class Waiters;

 private:
  Response dispatch(const Request& request, std::string& route_label);
  Response serve_board(const Request& request);
  void add_routes();

  ApiOptions options_;
  mutable std::mutex profiles_mutex_;  // guards options_.profiles (set_profiles)
  TokenStore& tokens_;
  market::Market& market_;
  ledger::Ledger& ledger_;
  const market::Clock& clock_;
  RateLimiter limiter_;
  std::vector<std::unique_ptr<Route>> routes_;
  metrics::Family<metrics::Counter>* requests_ = nullptr;
  metrics::Family<metrics::Histogram>* durations_ = nullptr;
  // Last: stopped (the changes it holds answered) before anything they use goes.
  std::unique_ptr<Waiters> waiters_;
};

/// The HTTP status for a refusal's kind: invalid and rule 422, conflict 409 (a lot or lease
/// in the wrong state), forbidden 403, not_found 404, unavailable 503, internal 500.
int status_for(ErrorKind kind);

/// The token of an "Authorization: Bearer <token>" header (scheme in any case), or "".
std::string_view bearer_token(std::string_view header);

/// RFC 3339 in UTC with milliseconds ("2026-11-26T12:00:00.250Z") for ns since the epoch.
std::string format_time(int64_t ns);

}  // namespace segx::api
