#include "api/server.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace segx::api {

namespace {

http::Response to_http(Response in) {
  http::Response out;
  out.status = in.status;
  out.content_type = std::move(in.content_type);
  out.body = std::move(in.body);
  out.headers = std::move(in.headers);
  if (in.stream) {
    out.stream = std::make_shared<http::Stream>();
    out.stream->interval = in.stream->interval;
    out.stream->next = std::move(in.stream->next);
  }
  return out;
}

// True when the request names a token the store knows: only those escape the per-address
// rate for anonymous requests (the API limits them per token).
bool has_valid_token(const http::Request& req, const TokenStore& tokens) {
  const std::string h = req.header("Authorization");
  const std::string_view token = bearer_token(h);
  return !token.empty() && tokens.authenticate(token).has_value();
}

}  // namespace

Result<std::unique_ptr<Server>> Server::start(const ServerOptions& o, Api& api,
                                              const TokenStore& tokens) {
  http::Options h;
  h.host = o.host;
  h.port = o.port;
  h.threads = o.threads;
  h.thread_name = "segx-api";
  h.limits = o.limits;
  h.tls = o.tls;
  h.listen_key = "market.api.listen";
  h.limits_key = "market.api";
  h.rate_limit.per_second = o.anonymous_rate_limit;
  h.rate_limit.applies = [&tokens](const http::Request& req) {
    return !has_valid_token(req, tokens);
  };
  h.rate_limit.detail = "more than " + std::to_string(o.anonymous_rate_limit) +
                        " requests per second from this address without a valid token "
                        "(market.api.anonymous_rate_limit)";
  // What the listener answers by itself (413, 408, 415, 429, ...) gets the API's JSON error
  // shape too.
  h.error = [](int status, const std::string& code, const std::string& detail) {
    return to_http(Api::error(status, code, detail));
  };
  auto server = http::Server::start(std::move(h), [&api](const http::Request& req) {
    Request r;
    r.method = req.method;
    r.path = req.path;
    r.query = req.query;
    r.body = req.body;
    r.authorization = req.header("Authorization");
    r.last_event_id = req.header("Last-Event-ID");
    Response answer = api.handle(r);
    if (answer.later) {
      http::Response out;
      out.later = [later = std::move(answer.later)](http::Resume resume) {
        later([resume = std::move(resume)](std::function<Response()> make) {
          resume([make = std::move(make)] { return to_http(make()); });
        });
      };
      return out;
    }
    return to_http(std::move(answer));
  });
  if (!server) return Error{server.error()};
  return std::unique_ptr<Server>(new Server(std::move(server).value()));
}

Server::~Server() {
  stop();
}

void Server::stop() {
  http_->stop();
}

}  // namespace segx::api
