#include "metrics/server.hpp"

#include <algorithm>
#include <exception>

namespace segx::metrics {

namespace {

// A scrape is a GET with no body; anything larger is not for us.
constexpr uint64_t max_payload_bytes = 4096;
// Prometheus scrapes one target with one connection; two threads leave room for a person
// with curl or a second Prometheus while a scrape waits for the data plane's counters.
constexpr uint32_t worker_threads = 2;

}  // namespace

Result<std::unique_ptr<Server>> Server::start(const std::string& host, uint16_t port,
                                              const Registry& registry, ServerLimits limits) {
  http::Options o;
  o.host = host;
  o.port = port;
  o.threads = worker_threads;
  o.thread_name = "segx-metrics";
  o.limits.body_limit = max_payload_bytes;
  o.limits.max_connections = limits.max_connections;
  o.limits.max_connections_per_address =
      std::min(limits.max_connections_per_address, limits.max_connections);
  o.listen_key = "metrics.listen";
  auto server = http::Server::start(std::move(o), [&registry](const http::Request& req) {
    http::Response res;
    if (req.method != "GET" && req.method != "HEAD") {
      res.status = 405;
      res.headers.emplace_back("Allow", "GET, HEAD");
      res.body = "metrics: only GET\n";
    } else if (req.path == "/metrics") {
      try {
        res.body = registry.expose();
        res.content_type = std::string(content_type);
      } catch (const std::exception& e) {
        res.status = 500;
        res.body = std::string("metrics: ") + e.what() + "\n";
      }
    } else if (req.path == "/") {
      res.body = "segx: metrics at /metrics\n";
    } else {
      res.status = 404;
      res.body = "metrics: no such path (the metrics are at /metrics)\n";
    }
    return res;
  });
  if (!server) return Error{server.error()};
  return std::unique_ptr<Server>(new Server(std::move(server).value()));
}

Server::Server(std::unique_ptr<http::Server> http) : http_(std::move(http)), port_(http_->port()) {}

Server::~Server() {
  stop();
}

void Server::stop() {
  http_->stop();
}

std::string Server::url() const {
  return http_->url() + "/metrics";
}

void add_http_collector(Registry& registry, const std::string& server,
                        std::shared_ptr<const http::Stats> stats) {
  registry.add_collector([server, stats](std::vector<FamilySnapshot>& out) {
    FamilySnapshot total{"segx_http_connections_total",
                         "Connections accepted and admitted by an HTTP listener",
                         Type::counter,
                         {}};
    total.add({{"server", server}}, static_cast<double>(stats->connections.load()));
    out.push_back(std::move(total));
    FamilySnapshot open{
        "segx_http_connections_open", "Connections open now on an HTTP listener", Type::gauge, {}};
    open.add({{"server", server}}, static_cast<double>(stats->open_connections.load()));
    out.push_back(std::move(open));
    FamilySnapshot conns{"segx_http_connections_refused_total",
                         "Connections closed at accept because a cap was reached, by cap",
                         Type::counter,
                         {}};
    FamilySnapshot requests{"segx_http_requests_refused_total",
                            "Requests the HTTP listener refused itself (a deadline, a limit, a "
                            "malformed request, the per-address rate), by reason",
                            Type::counter,
                            {}};
    for (size_t i = 0; i < http::refusal_count; ++i) {
      const auto r = static_cast<http::Refusal>(i);
      const bool at_accept =
          r == http::Refusal::max_connections || r == http::Refusal::max_connections_per_address;
      (at_accept ? conns : requests)
          .add({{"server", server}, {"reason", std::string(http::refusal_name(r))}},
               static_cast<double>(stats->refusals(r)));
    }
    out.push_back(std::move(conns));
    out.push_back(std::move(requests));
  });
}

}  // namespace segx::metrics
