#include "metrics/server.hpp"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <thread>

namespace segx::metrics {

namespace {

// A scrape is a GET with no body; anything larger is not for us.
constexpr size_t max_payload_bytes = 4096;
// Prometheus scrapes one target with one connection; two workers leave room for a person
// with curl or a second Prometheus without letting scrapes pile up threads.
constexpr size_t worker_threads = 2;
constexpr time_t timeout_seconds = 5;

}  // namespace

struct Server::Impl {
  httplib::Server http;
  std::thread thread;
  std::atomic<bool> ended{false};
  bool stopped = false;
};

Result<std::unique_ptr<Server>> Server::start(const std::string& host, uint16_t port,
                                              const Registry& registry) {
  auto impl = std::make_unique<Impl>();
  httplib::Server& http = impl->http;
  http.new_task_queue = [] { return new httplib::ThreadPool(worker_threads); };
  http.set_payload_max_length(max_payload_bytes);
  http.set_read_timeout(timeout_seconds);
  http.set_write_timeout(timeout_seconds);
  http.set_keep_alive_timeout(timeout_seconds);
  // Without it, delayed ACKs stall small responses on a kept-alive connection.
  http.set_tcp_nodelay(true);
  // httplib's default adds SO_REUSEPORT, with which a second segx on the same port would
  // bind too and Prometheus would scrape the two in turn. SO_REUSEADDR alone still lets a
  // restarted segx bind while old connections linger in TIME_WAIT.
  http.set_socket_options([](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  http.Get("/metrics", [&registry](const httplib::Request&, httplib::Response& res) {
    try {
      res.set_content(registry.expose(), std::string(content_type).c_str());
    } catch (const std::exception& e) {
      res.status = 500;
      res.set_content(std::string("metrics: ") + e.what() + "\n", "text/plain");
    }
  });
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("segx: metrics at /metrics\n", "text/plain");
  });

  int bound = 0;
  if (port == 0) {
    bound = http.bind_to_any_port(host);
  } else {
    bound = http.bind_to_port(host, port) ? port : -1;
  }
  const std::string where =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  if (bound <= 0) {
    return Error{"metrics.listen " + where +
                 ": cannot listen there (port in use, or not an address of this host)"};
  }
  std::atomic<bool>& ended = impl->ended;
  impl->thread = std::thread([&http, &ended] {
    http.listen_after_bind();
    ended.store(true);
  });
  // stop() only reaches a server that is already listening: wait for that.
  while (!http.is_running() && !ended.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return std::unique_ptr<Server>(new Server(std::move(impl), host, static_cast<uint16_t>(bound)));
}

Server::Server(std::unique_ptr<Impl> impl, std::string host, uint16_t port)
    : impl_(std::move(impl)), host_(std::move(host)), port_(port) {}

Server::~Server() {
  stop();
}

void Server::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::string Server::url() const {
  const std::string host = host_ == "0.0.0.0" ? "127.0.0.1" : host_;
  return "http://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port_) + "/metrics";
}

}  // namespace segx::metrics
