#include "api/api.hpp"

#include <charconv>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include <pthread.h>

#include "api/board.hpp"
#include "api/json_io.hpp"
#include "market/rules.hpp"

namespace segx::api {

using market::Role;

struct Api::Route {
  RouteInfo info;
  // The pattern's segments between slashes: a literal, or nullopt for a {parameter}.
  std::vector<std::optional<std::string>> segments;
  std::function<Response(Context&)> handler;
  // Runs on the Api's waiting threads: the handler blocks until its change is durable.
  bool waits = false;
};

struct Api::Context {
  const Request& req;
  std::vector<std::string> params;
  Principal who;
  json body;
  market::Actor actor() const { return who.actor(); }
};

// The threads that run changes waiting for their commit, fed in arrival order. Destroyed,
// it runs what it was given and then stops: each job holds a connection's answer.
class Api::Waiters {
 public:
  explicit Waiters(uint32_t n) {
    for (uint32_t i = 0; i < std::max<uint32_t>(n, 1); ++i)
      threads_.emplace_back([this] {
        pthread_setname_np(pthread_self(), "segx-api-wait");
        run();
      });
  }
  ~Waiters() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (auto& t : threads_)
      t.join();
  }
  void post(std::function<void()> job) {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    ready_.notify_one();
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();  // never throws: a job catches what its handler throws
      job = nullptr;
      lock.lock();
    }
  }
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

namespace {

// A change handed to the waiting threads: the request it was made from and its context,
// which refers to that copy.
struct Deferred {
  Deferred(const Request& r, std::vector<std::string> params, Principal who, json body)
      : request(r), ctx{request, std::move(params), std::move(who), std::move(body)} {}
  Request request;
  Api::Context ctx;
};

std::string code_for(int status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 409:
      return "conflict";
    case 413:
      return "payload_too_large";
    case 422:
      return "invalid";
    case 429:
      return "rate_limited";
    case 503:
      return "unavailable";
    default:
      return "error";
  }
}

[[noreturn]] void refuse(int status, const std::string& detail) {
  throw Refusal{status, code_for(status), detail};
}

// A market refusal, with the status its kind stands for.
[[noreturn]] void refuse_market(const Error& e) {
  refuse(status_for(e.kind), e.message);
}

Response json_response(const json& j, int status = 200) {
  Response r;
  r.status = status;
  // Details echo what the client sent (a path, a query value), which need not be UTF-8:
  // json's default is to throw on that, from inside handle(), which must never throw.
  // Invalid bytes become U+FFFD instead.
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

// "/v1/lots/{id}/bids" -> "", "v1", "lots", {id}, "bids". Matching a path segment by segment
// costs no allocation and does not grow with the pattern, where a std::regex per route cost
// a bid more than its JSON.
std::vector<std::optional<std::string>> pattern_segments(const std::string& pattern) {
  std::vector<std::optional<std::string>> out;
  size_t at = 0;
  for (;;) {
    const size_t slash = pattern.find('/', at);
    std::string seg = pattern.substr(at, slash == std::string::npos ? slash : slash - at);
    if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}')
      out.emplace_back(std::nullopt);
    else
      out.emplace_back(std::move(seg));
    if (slash == std::string::npos) return out;
    at = slash + 1;
  }
}

// Whether `path` has the pattern's segments; a parameter takes one non-empty segment, whose
// text goes to `params`.
bool match_segments(const std::vector<std::optional<std::string>>& segments, std::string_view path,
                    std::vector<std::string>& params) {
  params.clear();
  size_t at = 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    const size_t slash = path.find('/', at);
    const bool last = i + 1 == segments.size();
    // The last segment runs to the end of the path; any other ends at a slash.
    if (last != (slash == std::string_view::npos)) return false;
    const std::string_view seg = path.substr(at, last ? std::string_view::npos : slash - at);
    if (segments[i]) {
      if (seg != *segments[i]) return false;
    } else {
      if (seg.empty()) return false;
      params.emplace_back(seg);
    }
    at = slash + 1;
  }
  return true;
}

// A lease's block, as the data plane and the series name it.
std::string block_id(uint64_t lease) {
  return "lease-" + std::to_string(lease);
}

// GET /v1/blocks/{id}/series answers at most this many points (an hour); `more` and `next`
// say where to go on.
constexpr size_t max_series_points = 3600;

// Where one event stream of a block is.
struct StreamState {
  std::string block;
  uint64_t since = 0;  // the next point to send
  bool done = false;
  std::string authorization;
};

// The events a stream has not sent yet: a "point" per new point, then "end" once the block
// has ended and every point is out; "" when nothing is new.
std::optional<std::string> next_events(const market::BlockSeries* series, StreamState& st) {
  if (st.done) return std::nullopt;
  std::optional<market::SeriesView> v;
  if (series) v = series->view(st.block, st.since, 600);
  if (!v) {
    // Forgotten (keep_ended passed): nothing more will come.
    st.done = true;
    return std::string("event: end\ndata: {}\n\n");
  }
  std::string out;
  for (const auto& p : v->points) {
    out +=
        "id: " + std::to_string(p.seq) + "\nevent: point\ndata: " + point_json(p).dump() + "\n\n";
    st.since = p.seq + 1;
  }
  st.since = std::max(st.since, v->first);
  if (!v->active && st.since >= v->next) {
    out +=
        "event: end\ndata: " + json{{"compliance", compliance_json(v->compliance)}}.dump() + "\n\n";
    st.done = true;
  }
  return out;
}

// A point's sequence number as a client writes it (decimal, nothing else), or nullopt.
std::optional<uint64_t> parse_seq(std::string_view text) {
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return n;
}

}  // namespace

std::string_view bearer_token(std::string_view h) {
  constexpr std::string_view scheme = "bearer ";
  if (h.size() <= scheme.size() ||
      !std::equal(scheme.begin(), scheme.end(), h.begin(),
                  [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); }))
    return {};
  return h.substr(scheme.size());
}

namespace {

uint64_t id_param(const std::string& text, const std::string& what) {
  uint64_t v = 0;
  if (text.empty() || text.size() > 19 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    refuse(404, "no " + what + " '" + text + "'");
  for (char c : text)
    v = v * 10 + static_cast<uint64_t>(c - '0');
  return v;
}

std::string roles_text(const std::vector<Role>& roles) {
  std::string s;
  for (Role r : roles)
    s += (s.empty() ? "" : ", ") + std::string(market::role_name(r));
  return s;
}

bool valid_asset_name(const std::string& name) {
  return !name.empty() && name[0] != '.' && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  });
}

}  // namespace

std::string format_time(int64_t ns) {
  int64_t s = ns / 1'000'000'000, rem = ns % 1'000'000'000;
  if (rem < 0) {
    rem += 1'000'000'000;
    --s;
  }
  const std::time_t t = static_cast<std::time_t>(s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(rem / 1'000'000));
  return buf;
}

int status_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid:
    case ErrorKind::rule:
      return 422;
    case ErrorKind::conflict:
      return 409;
    case ErrorKind::forbidden:
      return 403;
    case ErrorKind::not_found:
      return 404;
    case ErrorKind::unavailable:
      return 503;
    case ErrorKind::internal:
      return 500;
  }
  return 500;
}

Response Api::error(int status, const std::string& code, const std::string& detail) {
  return json_response({{"error", code}, {"detail", detail}}, status);
}

Api::Api(ApiOptions options, TokenStore& tokens, market::Market& market, ledger::Ledger& ledger,
         const market::Clock& clock)
    : options_(std::move(options)),
      tokens_(tokens),
      market_(market),
      ledger_(ledger),
      clock_(clock),
      limiter_(options_.rate_limit) {
  add_routes();
  waiters_ = std::make_unique<Waiters>(options_.wait_threads);
}

Api::~Api() = default;

Response wait(Response r) {
  if (!r.later) return r;
  std::promise<std::function<Response()>> made;
  auto got = made.get_future();
  auto later = std::move(r.later);
  later([&made](std::function<Response()> make) { made.set_value(std::move(make)); });
  return got.get()();
}

std::vector<RouteInfo> Api::routes() const {
  std::vector<RouteInfo> out;
  for (const auto& r : routes_)
    out.push_back(r->info);
  return out;
}

void Api::set_profiles(std::vector<ProfileInfo> profiles) {
  std::lock_guard lock(profiles_mutex_);
  options_.profiles = std::move(profiles);
}

void Api::add_metrics(metrics::Registry& registry) {
  requests_ = &registry.add_counter("segx_api_requests_total",
                                    "API requests answered, by route pattern, method and status");
  durations_ = &registry.add_histogram(
      "segx_api_request_duration_seconds",
      "Time to answer an API request (a change includes its ledger commit), by route",
      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1});
}

Response Api::handle(const Request& request) {
  const auto started = std::chrono::steady_clock::now();
  std::string label = "unmatched";
  const auto answer = [](auto&& make) {
    try {
      return make();
    } catch (const Refusal& e) {
      return error(e.status, e.code, e.detail);
    } catch (const std::exception& e) {
      // A bug, not bad input: say so rather than hide it.
      return error(500, "internal", e.what());
    }
  };
  // A label from a fixed set: the method is the client's to choose, and every new value
  // would be a new series in /metrics.
  static constexpr std::string_view known[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  const std::string_view asked =
      request.method == "HEAD" ? std::string_view("GET") : std::string_view(request.method);
  const std::string method(
      std::find(std::begin(known), std::end(known), asked) != std::end(known) ? asked : "other");
  // Counted when answered: for a deferred answer, when its commit is durable.
  const auto record = [this, method, started](const std::string& route, const Response& r) {
    if (!requests_) return;
    requests_->add({{"route", route}, {"method", method}, {"code", std::to_string(r.status)}})
        .increment();
    durations_->add({{"route", route}})
        .observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  };
  Response r = answer([&] { return dispatch(request, label); });
  if (r.later) {
    r.later = [inner = std::move(r.later), label, answer, record](Resume resume) {
      inner([resume = std::move(resume), label, answer, record](std::function<Response()> make) {
        resume([make = std::move(make), label, answer, record] {
          Response out = answer(make);
          record(label, out);
          return out;
        });
      });
    };
    return r;
  }
  record(label, r);
  return r;
}

Response Api::dispatch(const Request& request, std::string& label) {
  const std::string method = request.method == "HEAD" ? "GET" : request.method;
  const std::string& path = request.path;
  // A valid token's requests count against its rate on every route, the open ones (the
  // board, /healthz) included: the listener's limit per address lets them through.
  const std::string_view token = bearer_token(request.authorization);
  std::optional<Principal> bearer;
  if (!token.empty()) bearer = tokens_.authenticate(token);
  // Called on every path below once the request's label (its route) is known.
  const auto over_rate = [&]() -> std::optional<Response> {
    if (!bearer) return std::nullopt;
    const uint32_t wait = limiter_.take(bearer->sha256, clock_.now_ns());
    if (!wait) return std::nullopt;
    Response r = error(429, "rate_limited",
                       "more than " + std::to_string(limiter_.rate()) +
                           " requests per second with this token (market.api.rate_limit)");
    r.headers.emplace_back("Retry-After", std::to_string(wait));
    return r;
  };
  if (path == "/" || path == "/ui") {
    Response r;
    r.status = 302;
    r.content_type = "text/plain";
    r.body = "the board is at /ui/\n";
    r.headers.emplace_back("Location", "/ui/");
    label = "/ui";
    if (auto limited = over_rate()) return std::move(*limited);
    return r;
  }
  if (path.starts_with("/ui/")) {
    label = "/ui";
    if (auto limited = over_rate()) return std::move(*limited);
    if (method != "GET") {
      Response r = error(405, "method_not_allowed", "the board is read with GET");
      r.headers.emplace_back("Allow", "GET");
      return r;
    }
    return serve_board(request);
  }
  if (request.body.size() > options_.body_limit)
    refuse(413, "the body is " + std::to_string(request.body.size()) + " bytes; the limit is " +
                    std::to_string(options_.body_limit) + " (market.api.body_limit)");

  const Route* route = nullptr;
  const Route* path_only = nullptr;  // a route of this path, for another method
  std::string allowed;
  std::vector<std::string> params;
  for (const auto& r : routes_) {
    if (!match_segments(r->segments, path, params)) continue;
    if (r->info.method == method) {
      route = r.get();
      break;
    }
    if (!path_only) path_only = r.get();
    allowed += (allowed.empty() ? "" : ", ") + r->info.method;
  }
  if (!route) {
    if (path_only) {
      // A known path: counted under its pattern (only unknown paths are "unmatched").
      label = path_only->info.pattern;
      if (auto limited = over_rate()) return std::move(*limited);
      Response r = error(405, "method_not_allowed",
                         method + " is not served on " + path + "; allowed: " + allowed);
      r.headers.emplace_back("Allow", allowed);
      return r;
    }
    if (auto limited = over_rate()) return std::move(*limited);
    refuse(404, "no route " + method + " " + path + " (the routes are in /v1/openapi.json)");
  }
  label = route->info.pattern;
  if (auto limited = over_rate()) return std::move(*limited);
  Context ctx{request, std::move(params), {}, json::object()};

  if (route->info.access == Access::token) {
    if (token.empty()) {
      Response r = error(401, "unauthorized", "send 'Authorization: Bearer <token>'");
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"segx\"");
      return r;
    }
    auto& who = bearer;  // its rate was taken above
    if (!who) {
      Response r = error(401, "unauthorized", "unknown or revoked token");
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"segx\", error=\"invalid_token\"");
      return r;
    }
    if (!route->info.roles.empty() && std::find(route->info.roles.begin(), route->info.roles.end(),
                                                who->role) == route->info.roles.end())
      refuse(403, method + " " + route->info.pattern + " is for " + roles_text(route->info.roles) +
                      "; '" + who->id + "' is a " + std::string(market::role_name(who->role)));
    ctx.who = std::move(*who);
  }
  if (method == "POST" || method == "PUT" || method == "PATCH") {
    if (!request.body.empty()) {
      // A key twice in one object is refused, not read as its last value: a proxy or a
      // client's library reading the first would see another request than segx.
      std::vector<std::set<std::string, std::less<>>> keys;
      std::string twice;
      const auto check = [&](int, json::parse_event_t event, json& parsed) {
        if (event == json::parse_event_t::object_start) {
          keys.emplace_back();
        } else if (event == json::parse_event_t::object_end) {
          keys.pop_back();
        } else if (event == json::parse_event_t::key && twice.empty() && !keys.empty() &&
                   !keys.back().insert(parsed.get<std::string>()).second) {
          twice = parsed.get<std::string>();
        }
        return true;
      };
      try {
        ctx.body = json::parse(request.body, check);
      } catch (const json::parse_error& e) {
        // Not e.what(): it quotes what was read, up to the whole body, back to the client.
        refuse(400, "the body is not valid JSON (at byte " + std::to_string(e.byte) + ")");
      } catch (const json::out_of_range&) {
        // Valid JSON with a number no field could hold (1e400): out of range, as for a field.
        throw Refusal{422, "invalid", "a number in the body is out of range"};
      } catch (const json::exception&) {
        refuse(400, "the body is not valid JSON");
      }
      if (!twice.empty()) refuse(400, "the body names '" + twice + "' twice in one object");
    }
  }
  if (!route->waits) return route->handler(ctx);
  // The caller's thread serves other connections: the change runs on a waiting thread, and
  // its outcome (or what it threw, rethrown by handle()'s wrapper) goes back through later.
  auto job = std::make_shared<Deferred>(request, std::move(ctx.params), std::move(ctx.who),
                                        std::move(ctx.body));
  Response r;
  r.later = [this, route, job](Resume resume) {
    waiters_->post([route, job, resume = std::move(resume)] {
      std::function<Response()> make;
      try {
        auto out = std::make_shared<Response>(route->handler(job->ctx));
        if (out->later) return out->later(resume);  // it waits on no thread after all
        make = [out] { return std::move(*out); };
      } catch (...) {
        make = [e = std::current_exception()]() -> Response { std::rethrow_exception(e); };
      }
      resume(std::move(make));
    });
  };
  return r;
}

Response Api::serve_board(const Request& request) {
  std::string name = request.path.substr(4);
  if (name.empty()) name = "index.html";
  if (!valid_asset_name(name)) refuse(404, "no board file '" + name + "'");
  Response r;
  if (!options_.board_dir.empty()) {
    std::ifstream in(std::filesystem::path(options_.board_dir) / name, std::ios::binary);
    if (!in) refuse(404, "no board file '" + name + "' in " + options_.board_dir);
    std::ostringstream s;
    s << in.rdbuf();
    r.body = s.str();
    auto compiled = board_asset(name);
    r.content_type = compiled ? std::string(compiled->content_type) : "application/octet-stream";
    if (name.ends_with(".html")) r.content_type = "text/html; charset=utf-8";
    if (name.ends_with(".js")) r.content_type = "text/javascript; charset=utf-8";
    if (name.ends_with(".css")) r.content_type = "text/css; charset=utf-8";
  } else {
    auto a = board_asset(name);
    if (!a) refuse(404, "no board file '" + name + "'");
    r.body = std::string(a->data);
    r.content_type = std::string(a->content_type);
  }
  // The board is small and changes with segx: always revalidate, never serve a stale script.
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; style-src 'self'; script-src 'self'; "
                         "img-src 'self' data:; frame-ancestors 'none'");
  return r;
}

void Api::add_routes() {
  const std::vector<Role> any;
  const std::vector<Role> sellers{Role::provider, Role::admin};
  const std::vector<Role> buyers{Role::recipient, Role::device};
  const std::vector<Role> admins{Role::admin};
  const auto add = [&](std::string method, std::string pattern, Access access,
                       std::vector<Role> roles, std::string tag, std::string summary,
                       std::string request_schema, std::string response_schema, int success,
                       std::vector<int> errors, std::function<Response(Context&)> handler) {
    auto r = std::make_unique<Route>();
    r->segments = pattern_segments(pattern);
    r->info = {std::move(method),         std::move(pattern),         access,
               std::move(roles),          std::move(summary),         std::move(tag),
               std::move(request_schema), std::move(response_schema), success,
               std::move(errors)};
    if (access == Access::token) {
      r->info.errors.insert(r->info.errors.begin(), {401, 429});
      if (!r->info.roles.empty()) r->info.errors.push_back(403);
    }
    std::sort(r->info.errors.begin(), r->info.errors.end());
    r->info.errors.erase(std::unique(r->info.errors.begin(), r->info.errors.end()),
                         r->info.errors.end());
    r->handler = std::move(handler);
    r->waits = r->info.method != "GET";
    routes_.push_back(std::move(r));
  };
  const std::string cur = market_.options().currency;

  // ---- service ------------------------------------------------------------------------
  add("GET", "/healthz", Access::open, {}, "service",
      "Liveness and the ledger's state: 503 while its store fails to commit", "", "Health", 200,
      {503}, [this](Context&) {
        const ledger::LedgerHealth h = ledger_.health();
        const ledger::LedgerStats st = ledger_.stats();
        json lj = {{"state", h.ok ? "ok" : "failing"},
                   {"events_written", st.events},
                   {"commit_failures", st.commit_failures}};
        if (!h.ok) {
          lj["error"] = h.error;
          lj["since"] = format_time(h.since_ns);
        }
        return json_response(
            {{"status", h.ok ? "ok" : "failing"}, {"version", options_.version}, {"ledger", lj}},
            h.ok ? 200 : 503);
      });
  add("GET", "/v1/openapi.json", Access::open, {}, "service", "This API as OpenAPI 3.0", "", "",
      200, {}, [this](Context&) { return json_response(openapi()); });
  add("GET", "/v1/whoami", Access::token, any, "service", "The caller's principal and role", "",
      "Whoami", 200, {}, [](Context& c) {
        return json_response({{"principal", c.who.id},
                              {"role", market::role_name(c.who.role)},
                              {"owner", c.who.owner},
                              {"acts_for", c.actor().principal()},
                              {"source", c.who.source}});
      });
  add("GET", "/v1/profiles", Access::token, any, "service",
      "Profiles of this appliance; metered ones are for sale", "", "ProfileList", 200, {},
      [this](Context&) {
        json a = json::array();
        std::lock_guard lock(profiles_mutex_);
        for (const auto& p : options_.profiles)
          a.push_back({{"name", p.name},
                       {"metered", p.metered},
                       {"for_sale", p.metered},
                       {"services", p.services},
                       {"output", p.output}});
        return json_response({{"profiles", a}});
      });

  // ---- lots -----------------------------------------------------------------------------
  add("GET", "/v1/lots", Access::token, any, "lots",
      "Lots, each with its provider's reputation; ?state=open|closed|cancelled, ?provider=ID", "",
      "LotList", 200, {422}, [this, cur](Context& c) {
        std::string state, provider;
        for (const auto& [k, v] : c.req.query) {
          if (k == "state") {
            if (v != "open" && v != "closed" && v != "cancelled")
              refuse(422, "state: expected open, closed or cancelled, got '" + v + "'");
            state = v;
          } else if (k == "provider") {
            provider = v;
          } else {
            refuse(422, k + ": unknown query parameter (state, provider)");
          }
        }
        json a = json::array();
        for (const auto& v : market_.lots()) {
          if (!state.empty() && market::lot_state_name(v.lot.state) != state) continue;
          if (!provider.empty() && v.lot.provider != provider) continue;
          a.push_back(lot_json(v, c.actor(), cur));
        }
        return json_response({{"now", format_time(clock_.now_ns())}, {"lots", a}});
      });
  add("POST", "/v1/lots", Access::token, sellers, "lots",
      "Put blocks of a metered profile up for sale", "LotCreate", "Lot", 201, {400, 422},
      [this, cur](Context& c) {
        Fields f(c.body);
        market::LotSpec s;
        const int64_t now = clock_.now_ns();
        s.profile = *f.string("profile", true);
        const auto at = f.time("start_at", false);
        const auto in = f.duration("start_in", false);
        if (at.has_value() == in.has_value()) invalid("start_at", "give start_at or start_in");
        // A duration from now that would pass the largest representable time is refused here,
        // before it can wrap into the past.
        const auto from_now = [now](int64_t d, const char* field) {
          const auto t = market::time_add(now, d);
          if (!t) invalid(field, "too far in the future");
          return *t;
        };
        s.start_ns = at ? *at : from_now(*in, "start_in");
        s.duration_ns = *f.duration("duration", true);
        const auto cat = f.time("closes_at", false);
        const auto cin = f.duration("closes_in", false);
        if (cat.has_value() == cin.has_value()) invalid("closes_at", "give closes_at or closes_in");
        s.closes_ns = cat ? *cat : from_now(*cin, "closes_in");
        s.min_rate = f.rate("min_rate", false).value_or(0);
        s.max_rate = f.rate("max_rate", false).value_or(0);
        s.max_members =
            static_cast<uint32_t>(f.integer("max_members", false, 1, 65535).value_or(16));
        s.quantity = static_cast<uint32_t>(f.integer("quantity", false, 1, 100000).value_or(1));
        s.reserve = f.integer("reserve", false, 0, INT64_MAX / 2).value_or(0);
        s.max_price = f.integer("max_price", false, 0, INT64_MAX / 2).value_or(0);
        if (auto fmt = f.string("format", false)) {
          auto p = market::parse_format(*fmt);
          if (!p) invalid("format", "expected second_price, uniform or ascending");
          s.format = *p;
        }
        s.soft_close_ns = f.duration("soft_close", false).value_or(0);
        s.max_extension_ns = f.duration("max_extension", false).value_or(0);
        s.increment = f.integer("increment", false, 1, INT64_MAX / 2).value_or(1);
        s.min_recipient_wilson = f.number("min_recipient_wilson", false, 0, 1).value_or(0);
        s.min_recipient_ratings = static_cast<uint64_t>(
            f.integer("min_recipient_ratings", false, 0, 1'000'000'000).value_or(0));
        f.done();
        const market::Actor a = c.actor();
        // This appliance sells its own service only: a provider token of another principal
        // would put up lots that this data plane then meters as if they were its own.
        if (a.role == Role::provider && a.id != market_.options().provider_id)
          refuse(403, "this appliance sells as '" + market_.options().provider_id + "', not '" +
                          a.id + "'");
        auto id = market_.create_lot(a, s);
        if (!id) refuse_market(id.failure());
        auto v = market_.lot(id.value());
        if (!v) refuse_market(v.failure());
        Response r = json_response(lot_json(v.value(), a, cur), 201);
        r.headers.emplace_back("Location", "/v1/lots/" + std::to_string(id.value()));
        return r;
      });
  add("GET", "/v1/lots/{id}", Access::token, any, "lots", "One lot with its provider's reputation",
      "", "Lot", 200, {404}, [this, cur](Context& c) {
        auto v = market_.lot(id_param(c.params[0], "lot"));
        if (!v) refuse_market(v.failure());
        return json_response(lot_json(v.value(), c.actor(), cur));
      });
  add("DELETE", "/v1/lots/{id}", Access::token, sellers, "lots",
      "Cancel an open lot; its bids are void", "", "Lot", 200, {404, 409}, [this, cur](Context& c) {
        const uint64_t id = id_param(c.params[0], "lot");
        if (Status s = market_.cancel_lot(c.actor(), id); !s) refuse_market(s.failure());
        return json_response(lot_json(market_.lot(id).value(), c.actor(), cur));
      });

  // ---- bids -----------------------------------------------------------------------------
  add("GET", "/v1/lots/{id}/bids", Access::token, any, "bids",
      "Bids on a lot as the caller may see them: sealed bids only to their bidder, the lot's "
      "provider and admins; each with the bidder's recipient reputation",
      "", "BidList", 200, {404}, [this](Context& c) {
        const uint64_t id = id_param(c.params[0], "lot");
        auto bids = market_.bids(c.actor(), id);
        if (!bids) refuse_market(bids.failure());
        json a = json::array();
        for (const auto& b : bids.value())
          a.push_back(bid_json(b));
        return json_response({{"bids", a}});
      });
  add("POST", "/v1/lots/{id}/bids", Access::token, buyers, "bids",
      "Bid on a lot; answered once the bid is durable in the ledger", "BidCreate", "Bid", 201,
      {400, 404, 409, 422}, [this](Context& c) {
        const uint64_t lot = id_param(c.params[0], "lot");
        Fields f(c.body);
        market::BidSpec s;
        s.lot = lot;
        s.price = *f.integer("price", true, 0, market::max_money);
        s.quantity = static_cast<uint32_t>(f.integer("quantity", false, 1, 100000).value_or(1));
        s.members = *f.members("members", true);
        s.payment_token = f.string("payment_token", false, 512).value_or("");
        f.done();
        auto p = market_.submit_bid(c.actor(), s);
        if (!p) refuse_market(p.failure());
        // No thread waits for the commit: the answer is written once the ledger says the
        // bid is durable, so bids from many connections share one commit.
        market::PendingBid pending = std::move(p).value();
        Response r;
        r.later = [this, bid = std::move(pending.bid), ticket = pending.ticket,
                   lot](Resume resume) {
          market_.when_durable(ticket, [this, bid, lot, resume = std::move(resume)](Status d) {
            resume([this, bid, lot, d] {
              if (Status done = market_.complete(d); !done) refuse_market(done.failure());
              market::BidView v;
              v.bid = bid;
              v.bid.token_fp.clear();
              v.bidder_reputation = market_.reputation(v.bid.bidder).as_recipient;
              v.effective_price = v.bid.price;
              v.status = "pending";
              Response out = json_response(bid_json(v), 201);
              out.headers.emplace_back("Location", "/v1/lots/" + std::to_string(lot) + "/bids");
              return out;
            });
          });
        };
        return r;
      });
  routes_.back()->waits = false;  // answered through later: it holds no thread meanwhile
  add("GET", "/v1/bids", Access::token, any, "bids",
      "The caller's own bids on every lot with their results (providers: bids on their lots)", "",
      "BidList", 200, {}, [this](Context& c) {
        json out = json::array();
        for (const auto& b : market_.bids_of(c.actor()))
          out.push_back(bid_json(b));
        return json_response({{"bids", out}});
      });

  // ---- groups ---------------------------------------------------------------------------
  add("POST", "/v1/groups", Access::token, buyers, "groups",
      "Organise a group bid on a lot; members pledge afterwards and sponsor those who do not",
      "GroupCreate", "Group", 201, {400, 404, 409, 422}, [this](Context& c) {
        Fields f(c.body);
        market::GroupSpec s;
        s.lot = static_cast<uint64_t>(*f.integer("lot", true, 1, INT64_MAX));
        s.price = *f.integer("price", true, 0, market::max_money);
        s.quantity = static_cast<uint32_t>(f.integer("quantity", false, 1, 100000).value_or(1));
        const json members = *f.array("members", true);
        if (members.empty()) invalid("members", "a group has at least one member");
        if (members.size() > 1000) invalid("members", "more than 1000 members");
        for (size_t i = 0; i < members.size(); ++i) {
          const std::string where = "members[" + std::to_string(i) + "]";
          if (!members[i].is_object()) invalid(where, "expected {principal, members}");
          Fields m(members[i]);
          market::GroupMember gm;
          try {
            gm.principal = *m.string("principal", true);
            gm.members = *m.members("members", true);
            m.done();
          } catch (const Refusal& r) {
            throw Refusal{r.status, r.code, where + "." + r.detail};
          }
          s.members.push_back(std::move(gm));
        }
        f.done();
        auto g = market_.create_group(c.actor(), s);
        if (!g) refuse_market(g.failure());
        json j = group_json(g.value());
        j["price"] = s.price;
        j["quantity"] = s.quantity;
        Response r = json_response(j, 201);
        r.headers.emplace_back("Location", "/v1/groups/" + std::to_string(g.value().id));
        return r;
      });
  add("GET", "/v1/groups/{id}", Access::token, any, "groups",
      "A group: members, pledges; visible to its members, the lot's provider and admins (404 "
      "for anyone else)",
      "", "Group", 200, {404}, [this](Context& c) {
        auto g = market_.group(c.actor(), id_param(c.params[0], "group"));
        if (!g) refuse_market(g.failure());
        return json_response(group_json(g.value()));
      });
  add("POST", "/v1/groups/{id}/pledges", Access::token, buyers, "groups",
      "Join the group: pledge to pay up to an amount of its price (replaces an earlier "
      "pledge), or 0 to be sponsored; a member takes part only once it has joined",
      "PledgeCreate", "Group", 201, {400, 403, 404, 409, 422}, [this](Context& c) {
        const uint64_t id = id_param(c.params[0], "group");
        Fields f(c.body);
        const int64_t amount = *f.integer("amount", true, 0, market::max_money);
        const std::string token = f.string("payment_token", amount > 0, 512).value_or("");
        f.done();
        if (Status s = market_.pledge(c.actor(), id, amount, token); !s) refuse_market(s.failure());
        return json_response(group_json(market_.group(c.actor(), id).value()), 201);
      });
  add("DELETE", "/v1/groups/{id}/pledges", Access::token, buyers, "groups",
      "Withdraw the caller's pledge before the lot closes", "", "Group", 200, {404, 409},
      [this](Context& c) {
        const uint64_t id = id_param(c.params[0], "group");
        if (Status s = market_.withdraw_pledge(c.actor(), id); !s) refuse_market(s.failure());
        return json_response(group_json(market_.group(c.actor(), id).value()));
      });

  // ---- leases, blocks, charges, ratings -------------------------------------------------
  const auto lease_detail = [this](const market::Actor& a, const market::Lease& l) {
    json j = lease_json(l);
    json charges = json::array();
    for (const auto& ch : market_.charges(a, l.id))
      charges.push_back(charge_json(ch));
    j["charges"] = charges;
    json ratings = json::array();
    for (const auto& r : market_.ratings_for_lease(a, l.id))
      ratings.push_back(rating_json(r));
    j["ratings"] = ratings;
    return j;
  };
  add("GET", "/v1/leases", Access::token, any, "leases",
      "Leases the caller is a party to (all for admins), with charges and ratings", "", "LeaseList",
      200, {}, [this, lease_detail](Context& c) {
        json a = json::array();
        for (const auto& l : market_.leases(c.actor()))
          a.push_back(lease_detail(c.actor(), l));
        return json_response({{"leases", a}});
      });
  add("GET", "/v1/leases/{id}", Access::token, any, "leases",
      "One lease with its usage, charges and ratings", "", "Lease", 200, {404},
      [this, lease_detail](Context& c) {
        auto l = market_.lease(c.actor(), id_param(c.params[0], "lease"));
        if (!l) refuse_market(l.failure());
        return json_response(lease_detail(c.actor(), l.value()));
      });
  add("GET", "/v1/leases/{id}/ratings", Access::token, any, "ratings",
      "Ratings given on a lease (to its parties)", "", "RatingList", 200, {404},
      [this](Context& c) {
        const uint64_t id = id_param(c.params[0], "lease");
        if (auto l = market_.lease(c.actor(), id); !l) refuse_market(l.failure());
        json a = json::array();
        for (const auto& r : market_.ratings_for_lease(c.actor(), id))
          a.push_back(rating_json(r));
        return json_response({{"ratings", a}});
      });
  add("POST", "/v1/leases/{id}/ratings", Access::token,
      {Role::recipient, Role::device, Role::provider}, "ratings",
      "A recipient (or its device) rates the provider of a finished lease: {satisfied, score, "
      "comment}; the provider adds its note to a recipient's rating: {recipient, note}",
      "RatingCreate", "Rating", 201, {400, 404, 409, 422}, [this](Context& c) {
        const uint64_t id = id_param(c.params[0], "lease");
        Fields f(c.body);
        const market::Actor a = c.actor();
        Result<market::Rating> r = Error{""};
        if (a.role == Role::provider) {
          const std::string recipient = *f.string("recipient", true);
          const std::string note = *f.string("note", true, 2000);
          f.done();
          r = market_.note_recipient(a, id, recipient, note);
        } else {
          const bool satisfied = *f.boolean("satisfied", true);
          const auto score = f.integer("score", false, 1, 5).value_or(0);
          const std::string comment = f.string("comment", false, 2000).value_or("");
          f.done();
          r = market_.rate_provider(a, id, satisfied, static_cast<uint8_t>(score), comment);
        }
        if (!r) refuse_market(r.failure());
        return json_response(rating_json(market::RatingView{r.value(), true}), 201);
      });
  // The ledger's compliance (earlier activations, or all of it once the block ended) plus
  // what the series of the running activation has counted so far.
  const auto compliance_of = [](const market::Lease& l,
                                const std::optional<market::SeriesView>& v) {
    market::Compliance c = l.usage.compliance;
    if (v && v->active) c.add(v->compliance);
    return c;
  };
  const auto block_json = [this, compliance_of](const market::Lease& l) {
    std::optional<market::SeriesView> v;
    if (options_.series) v = options_.series->view(block_id(l.id), UINT64_MAX, 0);
    return json{{"id", block_id(l.id)},
                {"lease", l.id},
                {"profile", l.profile},
                {"state", market::lease_state_name(l.state)},
                {"start_at", format_time(l.start_ns)},
                {"end_at", format_time(l.end_ns)},
                {"min_rate", l.min_rate},
                {"max_rate", l.max_rate},
                {"members", members_json(l.members)},
                {"usage", usage_json(l.usage)},
                {"live", v ? live_json(*v) : json(nullptr)},
                {"compliance", compliance_json(compliance_of(l, v))}};
  };
  // The lease behind "lease-<id>", when the caller is a party to it (404 for anyone else,
  // as for leases).
  const auto block_lease = [this](Context& c) {
    const std::string& p = c.params[0];
    if (!p.starts_with("lease-")) refuse(404, "no block '" + p + "' (blocks are lease-<id>)");
    auto l = market_.lease(c.actor(), id_param(p.substr(6), "block"));
    if (!l) refuse(404, "no block '" + p + "'");
    return l.value();
  };
  // ?since=N: a point's sequence number.
  const auto since_param = [](Context& c, std::optional<uint64_t> fallback) {
    std::optional<uint64_t> since = fallback;
    for (const auto& [k, v] : c.req.query) {
      if (k != "since") refuse(400, k + ": unknown query parameter (since)");
      since = parse_seq(v);
      if (!since)
        refuse(400, "since: expected a point's sequence number (0 or more), got '" + v + "'");
    }
    return since;
  };
  const auto series_of = [this](const std::string& id, uint64_t since, size_t max_points) {
    std::optional<market::SeriesView> v;
    if (options_.series) v = options_.series->view(id, since, max_points);
    if (!v)
      refuse(404, "no series for block '" + id +
                      "': it never ran on this appliance, or it ended longer ago than "
                      "pipeline.metering.keep_ended");
    return std::move(*v);
  };
  add("GET", "/v1/blocks", Access::token, any, "blocks",
      "Blocks of leases the caller is a party to, with usage recorded so far", "", "BlockList", 200,
      {}, [this, block_json](Context& c) {
        json a = json::array();
        for (const auto& l : market_.leases(c.actor()))
          a.push_back(block_json(l));
        return json_response({{"blocks", a}});
      });
  add("GET", "/v1/blocks/{id}", Access::token, any, "blocks",
      "One block (\"lease-<id>\"): its usage, live totals and rates, and compliance summary", "",
      "Block", 200, {404},
      [block_json, block_lease](Context& c) { return json_response(block_json(block_lease(c))); });
  add("GET", "/v1/blocks/{id}/series", Access::token, any, "blocks",
      "A block's per-second delivery series from ?since= (a point's sequence number), at most "
      "3600 points per answer",
      "", "BlockSeries", 200, {400, 404},
      [block_lease, since_param, series_of, compliance_of](Context& c) {
        const market::Lease l = block_lease(c);
        const uint64_t since = *since_param(c, 0);
        const std::optional<market::SeriesView> v =
            series_of(block_id(l.id), since, max_series_points);
        json points = json::array();
        for (const auto& p : v->points)
          points.push_back(point_json(p));
        const uint64_t next =
            v->points.empty() ? std::max(since, v->first) : v->points.back().seq + 1;
        return json_response({{"block", block_id(l.id)},
                              {"interval_s", 1},
                              {"min_rate", l.min_rate},
                              {"max_rate", l.max_rate},
                              {"active", v->active},
                              {"first", v->first},
                              {"next", next},
                              {"more", next < v->next},
                              {"points", points},
                              {"compliance", compliance_json(compliance_of(l, v))}});
      });
  add("GET", "/v1/blocks/{id}/stream", Access::token, any, "blocks",
      "A block's series as Server-Sent Events: a \"point\" event a second, \"end\" when the "
      "block ends; from ?since=, Last-Event-ID + 1, or the last 60 points",
      "", "", 200, {400, 404}, [this, block_lease, since_param, series_of](Context& c) {
        const market::Lease l = block_lease(c);
        std::optional<uint64_t> since = since_param(c, std::nullopt);
        if (!since && !c.req.last_event_id.empty()) {
          const std::string& h = c.req.last_event_id;
          const auto last = parse_seq(h);
          if (!last || *last == UINT64_MAX)
            refuse(400, "Last-Event-ID: expected a point's sequence number, got '" + h + "'");
          since = *last + 1;
        }
        const std::string id = block_id(l.id);
        const market::SeriesView head = series_of(id, UINT64_MAX, 0);
        if (!since) since = head.next > 60 ? head.next - 60 : 0;
        // The stream stays with the token that opened it: revoked, the stream ends.
        auto state =
            std::make_shared<StreamState>(StreamState{id, *since, false, c.req.authorization});
        Response r;
        r.content_type = "text/event-stream";
        r.headers.emplace_back("X-Accel-Buffering", "no");
        r.body = "retry: 2000\n\n" + next_events(options_.series, *state).value_or("");
        r.stream = std::make_shared<Stream>();
        r.stream->next = [this, state]() -> std::optional<std::string> {
          if (state->done) return std::nullopt;
          if (!tokens_.authenticate(bearer_token(state->authorization))) return std::nullopt;
          return next_events(options_.series, *state);
        };
        return r;
      });
  add("GET", "/v1/principals/{id}/reputation", Access::token, any, "ratings",
      "A principal's reputation as provider and as recipient: count, percent positive, Wilson "
      "lower bound",
      "", "PrincipalReputation", 200, {}, [this](Context& c) {
        return json_response(principal_reputation_json(market_.reputation(c.params[0])));
      });
  add("GET", "/v1/principals/{id}/ratings", Access::token, any, "ratings",
      "Ratings a principal received; the lease, device and a recipient rating's comment only "
      "to the two parties and admins",
      "", "RatingList", 200, {}, [this](Context& c) {
        json a = json::array();
        for (const auto& r : market_.ratings_of(c.actor(), c.params[0]))
          a.push_back(rating_json(r));
        return json_response({{"ratings", a}});
      });

  // ---- ledger and tokens ----------------------------------------------------------------
  add("GET", "/v1/ledger/verify", Access::token, sellers, "ledger",
      "Check the ledger's whole hash chain", "", "VerifyReport", 200, {}, [this](Context&) {
        const ledger::VerifyReport v = ledger_.verify();
        return json_response({{"ok", v.ok},
                              {"events", v.events},
                              {"head", ledger::to_hex(v.head)},
                              {"bad_seq", v.bad_seq},
                              {"reason", v.reason}});
      });
  const auto token_json = [](const Principal& p) {
    return json{{"principal", p.id},
                {"role", market::role_name(p.role)},
                {"owner", p.owner},
                {"sha256", p.sha256},
                {"source", p.source},
                {"issued_at", p.issued_ns ? json(format_time(p.issued_ns)) : json(nullptr)},
                {"issued_by", p.issued_by}};
  };
  add("GET", "/v1/tokens", Access::token, admins, "tokens",
      "Every token's principal, role, hash and origin (never a token)", "", "TokenList", 200, {},
      [this, token_json](Context&) {
        json a = json::array();
        for (const auto& p : tokens_.list())
          a.push_back(token_json(p));
        return json_response({{"tokens", a}});
      });
  add("POST", "/v1/tokens", Access::token, admins, "tokens",
      "Issue a token; the response is the only place it appears (segx keeps its SHA-256)",
      "TokenCreate", "IssuedToken", 201, {400, 409, 422}, [this, token_json](Context& c) {
        Fields f(c.body);
        const std::string principal = *f.string("principal", true, 63);
        const std::string role_text = *f.string("role", true);
        const std::string owner = f.string("owner", false, 128).value_or("");
        f.done();
        // The names the configuration accepts, so an issued principal could be written in
        // YAML too, and appears in paths and member ids (user:ID) without quoting.
        if (principal.empty() || principal.size() > 63 ||
            !std::isalnum(static_cast<unsigned char>(principal[0])) ||
            !std::all_of(principal.begin(), principal.end(), [](char ch) {
              return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' ||
                     ch == '.';
            }))
          invalid("principal",
                  "1-63 letters, digits, '_', '-' or '.', starting with a letter or digit");
        auto role = market::parse_role(role_text);
        if (!role) invalid("role", "expected admin, provider, recipient or device");
        // The configuration's rule: a device acts for a recipient, so its owner is a
        // recipient token's principal or a subscriber, never a provider, admin or device.
        if (*role == market::Role::device && !owner.empty() && !market_.is_subscriber(owner)) {
          const auto list = tokens_.list();
          if (std::none_of(list.begin(), list.end(), [&](const Principal& p) {
                return p.id == owner && p.role == market::Role::recipient;
              }))
            invalid("owner", "'" + owner + "' is neither a recipient token's principal nor a " +
                                 "subscriber");
        }
        auto t = tokens_.issue(c.who, principal, *role, owner, clock_.now_ns());
        if (!t) refuse_market(t.failure());
        json j = token_json(t.value().principal);
        j["token"] = t.value().token;
        return json_response(j, 201);
      });
  add("DELETE", "/v1/tokens/{sha256}", Access::token, admins, "tokens",
      "Revoke a token issued through the API", "", "", 200, {403, 404}, [this](Context& c) {
        if (Status s = tokens_.revoke(c.who, c.params[0], clock_.now_ns()); !s)
          refuse_market(s.failure());
        return json_response({{"revoked", c.params[0]}});
      });
  // ---- administration ----------------------------------------------------------------------
  add("POST", "/v1/admin/reload", Access::token, admins, "admin",
      "Read the configuration file again and apply what may change live (as SIGHUP does); "
      "refused as a whole, with every error, when it does not load or a key needs a restart",
      "", "ReloadOutcome", 200, {422, 503}, [this](Context&) {
        if (!options_.reload) refuse(503, "this segx does not take reloads through the API");
        AdminAnswer a = options_.reload();
        return json_response(a.body, a.status);
      });
}

}  // namespace segx::api
