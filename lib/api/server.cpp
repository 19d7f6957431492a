#include "api/server.hpp"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace segx::api {

namespace {

// A browser keeps idle connections open, and with httplib each one holds a worker for as
// long as it stays open: a short keep-alive returns workers to the pool soon.
constexpr time_t keep_alive_seconds = 2;

Request to_request(const httplib::Request& req) {
  Request r;
  r.method = req.method;
  r.path = req.path;
  for (const auto& [k, v] : req.params)
    r.query.emplace(k, v);
  r.body = req.body;
  r.authorization = req.get_header_value("Authorization");
  return r;
}

void from_response(const Response& in, httplib::Response& out) {
  out.status = in.status;
  for (const auto& [k, v] : in.headers)
    out.set_header(k, v);
  out.set_content(in.body, in.content_type.c_str());
}

}  // namespace

struct Server::Impl {
  std::unique_ptr<httplib::Server> http;
  std::thread thread;
  std::atomic<bool> ended{false};
  bool stopped = false;
};

Result<std::unique_ptr<Server>> Server::start(const ServerOptions& o, Api& api) {
  auto impl = std::make_unique<Impl>();
  const bool tls = !o.tls_cert.empty() && !o.tls_key.empty();
  if (tls) {
    auto ssl = std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
    if (!ssl->is_valid())
      return Error{"market.api.tls: cannot load certificate " + o.tls_cert + " and key " +
                   o.tls_key + " (PEM files, the key unencrypted, the pair matching)"};
    impl->http = std::move(ssl);
  } else {
    impl->http = std::make_unique<httplib::Server>();
  }
  httplib::Server& http = *impl->http;
  const uint32_t threads = o.threads;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(o.body_limit);
  http.set_read_timeout(std::chrono::milliseconds(o.read_timeout_ms));
  http.set_write_timeout(std::chrono::milliseconds(o.write_timeout_ms));
  http.set_keep_alive_timeout(keep_alive_seconds);
  // Without it, delayed ACKs stall small responses on a kept-alive connection (a POST
  // handler measured about 290 requests/s without, 50,000/s with).
  http.set_tcp_nodelay(true);
  // httplib's default adds SO_REUSEPORT, with which a second segx on the same port would
  // bind too and take half the requests. SO_REUSEADDR alone still lets a restarted segx bind
  // while old connections linger in TIME_WAIT.
  http.set_socket_options([](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  const auto handler = [&api](const httplib::Request& req, httplib::Response& res) {
    from_response(api.handle(to_request(req)), res);
  };
  // Every method and path goes to Api, which knows the routes, answers 404 and 405 itself,
  // and documents exactly what it serves.
  http.Get(".*", handler);
  http.Post(".*", handler);
  http.Put(".*", handler);
  http.Patch(".*", handler);
  http.Delete(".*", handler);
  http.Options(".*", handler);
  // What httplib answers by itself (413 over the body limit, 400 for a broken request line)
  // gets the API's JSON error shape too.
  http.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string code = "error", detail = "request refused";
        if (res.status == 413) {
          code = "payload_too_large";
          detail = "the body is larger than market.api.body_limit";
        } else if (res.status == 400) {
          code = "bad_request";
          detail = "malformed HTTP request";
        } else if (res.status == 404) {
          code = "not_found";
          detail = "no such route";
        }
        const Response r = Api::error(res.status, code, detail);
        res.set_content(r.body, r.content_type.c_str());
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        const Response r = Api::error(500, "internal", "unexpected error");
        res.status = 500;
        res.set_content(r.body, r.content_type.c_str());
      });

  int bound = 0;
  if (o.port == 0) {
    bound = http.bind_to_any_port(o.host);
  } else {
    bound = http.bind_to_port(o.host, o.port) ? o.port : -1;
  }
  const std::string where = (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host) +
                            ":" + std::to_string(o.port);
  if (bound <= 0)
    return Error{"market.api.listen " + where +
                 ": cannot listen there (port in use, or not an address of this host)"};
  std::atomic<bool>& ended = impl->ended;
  impl->thread = std::thread([&http, &ended] {
    http.listen_after_bind();
    ended.store(true);
  });
  // stop() only reaches a server that is already listening: wait for that.
  while (!http.is_running() && !ended.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return std::unique_ptr<Server>(
      new Server(std::move(impl), o.host, static_cast<uint16_t>(bound), tls));
}

Server::Server(std::unique_ptr<Impl> impl, std::string host, uint16_t port, bool tls)
    : impl_(std::move(impl)), host_(std::move(host)), port_(port), tls_(tls) {}

Server::~Server() {
  stop();
}

void Server::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->http->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::string Server::url() const {
  const std::string host = host_ == "0.0.0.0" || host_.empty() ? "127.0.0.1" : host_;
  return std::string(tls_ ? "https" : "http") + "://" +
         (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port_);
}

}  // namespace segx::api
