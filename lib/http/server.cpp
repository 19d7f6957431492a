#include "http/server.hpp"

#include <pthread.h>

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include "http/client_limits.hpp"
#include "http/request_reader.hpp"
#include "http/tls.hpp"

namespace segx::http {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

// One read asks for at most this much; the read buffer holds the headers plus one read.
constexpr size_t read_chunk = 16 * 1024;
// After a refusal, what the client still sends is read and dropped for this long, so that it
// reads the refusal rather than a reset (an unread receive queue makes close() send RST).
constexpr auto linger_time = std::chrono::seconds(2);
// ... and for this many bytes at most, so a fast client cannot keep a thread reading.
constexpr size_t linger_bytes = 4 << 20;
constexpr auto tls_shutdown_time = std::chrono::seconds(1);
// accept() failing (out of file descriptors) is retried after a pause, not in a busy loop.
constexpr auto accept_retry = std::chrono::milliseconds(50);

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string where(const std::string& host, uint16_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  /// From any thread: close at once if waiting for the client, after the response if
  /// answering.
  virtual void shut() = 0;
};

}  // namespace

std::string_view refusal_name(Refusal r) {
  switch (r) {
    case Refusal::max_connections:
      return "max_connections";
    case Refusal::max_connections_per_address:
      return "max_connections_per_address";
    case Refusal::tls_handshake:
      return "tls_handshake";
    case Refusal::header_timeout:
      return "header_timeout";
    case Refusal::body_timeout:
      return "body_timeout";
    case Refusal::read_timeout:
      return "read_timeout";
    case Refusal::write_timeout:
      return "write_timeout";
    case Refusal::header_limit:
      return "header_limit";
    case Refusal::body_limit:
      return "body_limit";
    case Refusal::content_encoding:
      return "content_encoding";
    case Refusal::transfer_encoding:
      return "transfer_encoding";
    case Refusal::malformed:
      return "malformed";
    case Refusal::rate_limited:
      return "rate_limited";
  }
  return "unknown";
}

std::string Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return {};
}

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(Options options, Handler h)
      : o(std::move(options)),
        handler(std::move(h)),
        limiter(o.rate_limit.per_second),
        ioc(static_cast<int>(std::max<uint32_t>(o.threads, 1))) {}

  /// A new connection from `key` may open; otherwise why not.
  std::optional<Refusal> admit(const std::string& key) {
    std::lock_guard lock(mutex);
    if (open >= o.limits.max_connections) return Refusal::max_connections;
    auto [it, added] = per_client.try_emplace(key, 0);
    if (it->second >= o.limits.max_connections_per_address) {
      if (added) per_client.erase(it);
      return Refusal::max_connections_per_address;
    }
    ++it->second;
    ++open;
    stats->connections.fetch_add(1, std::memory_order_relaxed);
    stats->open_connections.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  void track(SessionBase* s, std::weak_ptr<SessionBase> w) {
    std::lock_guard lock(mutex);
    sessions.emplace(s, std::move(w));
  }
  void release(SessionBase* s, const std::string& key) {
    std::lock_guard lock(mutex);
    sessions.erase(s);
    if (auto it = per_client.find(key); it != per_client.end() && --it->second == 0)
      per_client.erase(it);
    --open;
    stats->open_connections.fetch_sub(1, std::memory_order_relaxed);
    if (open == 0) drained.notify_all();
  }
  void count(Refusal r) {
    stats->refused[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }
  Response error(int status, const std::string& code, const std::string& detail) const {
    if (o.error) return o.error(status, code, detail);
    Response r;
    r.status = status;
    r.body = code + ": " + detail + "\n";
    return r;
  }
  /// " (market.api.body_limit)" for "body_limit", or "" when limits are not named.
  std::string key(const char* limit) const {
    return o.limits_key.empty() ? "" : " (" + o.limits_key + "." + limit + ")";
  }

  void accept();
  void on_accept(error_code ec, tcp::socket socket);

  Options o;
  Handler handler;
  std::shared_ptr<Stats> stats = std::make_shared<Stats>();
  AddressRateLimiter limiter;
  std::mutex mutex;
  std::condition_variable drained;
  std::unordered_map<std::string, uint32_t> per_client;
  uint32_t open = 0;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;
  std::atomic<bool> stopping{false};
  bool stopped = false;
  std::vector<std::thread> threads;
  // Declared before the io_context so that they outlive the sessions it destroys.
  std::optional<asio::ssl::context> ssl;
  asio::io_context ioc;
  tcp::acceptor acceptor{asio::make_strand(ioc)};
  asio::steady_timer retry{acceptor.get_executor()};
};

namespace {

// One connection, plain (tcp::socket) or TLS (asio::ssl::stream<tcp::socket>), from accept
// to close. Every step runs on the connection's strand. A timer of its own bounds each wait:
// on expiry it cancels the pending operation, so that a 408 can still be written.
template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool tls = !std::is_same_v<Stream, tcp::socket>;

  Session(Server::Impl& s, tcp::socket&& socket, std::string peer, std::string key,
          Clock::time_point accepted)
      : s_(s),
        stream_(make_stream(std::move(socket), s)),
        timer_(stream_.get_executor()),
        ticker_(stream_.get_executor()),
        peer_(std::move(peer)),
        key_(std::move(key)),
        buffer_(s.o.limits.header_limit + read_chunk),
        deadline_(accepted + s.o.limits.header_timeout) {}
  ~Session() override { s_.release(this, key_); }

  void start() {
    s_.track(this, this->weak_from_this());
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->begin(); });
  }

  void shut() override {
    asio::post(stream_.get_executor(), [w = this->weak_from_this()] {
      if (auto self = w.lock()) self->on_shut();
    });
  }

 private:
  enum class Phase { handshake, idle, header, body, answering, writing, streaming, closing };

  static Stream make_stream(tcp::socket&& socket, Server::Impl& s) {
    if constexpr (tls)
      return Stream(std::move(socket), *s.ssl);
    else
      return Stream(std::move(socket));
  }
  tcp::socket& socket() {
    if constexpr (tls)
      return stream_.next_layer();
    else
      return stream_;
  }
  const Limits& limits() const { return s_.o.limits; }

  // ---- the timer ------------------------------------------------------------------------
  void arm(Clock::time_point until) {
    ++generation_;
    timed_out_ = false;
    timer_.expires_at(until);
    timer_.async_wait([w = this->weak_from_this(), g = generation_](error_code ec) {
      if (ec) return;
      auto self = w.lock();
      if (!self || self->generation_ != g) return;
      self->timed_out_ = true;
      error_code ignored;
      self->socket().cancel(ignored);
    });
  }
  void disarm() {
    ++generation_;
    timer_.cancel();
  }

  // ---- reading a request ----------------------------------------------------------------
  void begin() {
    if (shut_ || s_.stopping) return close_now();
    if constexpr (tls) {
      phase_ = Phase::handshake;
      arm(deadline_);
      stream_.async_handshake(
          asio::ssl::stream_base::server,
          [self = this->shared_from_this()](error_code ec) { self->on_handshake(ec); });
    } else {
      next_request(true);
    }
  }

  void on_handshake(error_code ec) {
    disarm();
    if (ec) {
      if (!shut_) s_.count(timed_out_ ? Refusal::header_timeout : Refusal::tls_handshake);
      return close_now();
    }
    next_request(true);
  }

  void next_request(bool first) {
    reader_.emplace(limits(), s_.o.limits_key);
    if (first) {
      phase_ = Phase::header;  // the deadline counts from the accept
    } else if (buffer_.size() > 0) {
      phase_ = Phase::header;  // a pipelined request: its bytes are here
      deadline_ = Clock::now() + limits().header_timeout;
    } else {
      phase_ = Phase::idle;
    }
    parse();
  }

  void read() {
    const auto now = Clock::now();
    arm(phase_ == Phase::idle ? now + limits().keep_alive_timeout
                              : std::min(deadline_, now + limits().read_timeout));
    const size_t room = buffer_.max_size() - buffer_.size();
    if (room == 0) {
      // Only a chunk-size line can fill the buffer: the header parser stops at header_limit.
      return refuse({Refusal::malformed, 400, "bad_request", "a chunk header line is too long"});
    }
    stream_.async_read_some(
        buffer_.prepare(std::min(room, read_chunk)),
        [self = this->shared_from_this()](error_code ec, size_t n) { self->on_read(ec, n); });
  }

  void on_read(error_code ec, size_t n) {
    disarm();
    if (shut_) return close_now();
    if (ec) {
      if (!timed_out_ || phase_ == Phase::idle) return close_now();  // the client left
      const bool deadline = Clock::now() >= deadline_;
      if (!deadline)
        return refuse({Refusal::read_timeout, 408, "request_timeout",
                       "nothing arrived for " + std::to_string(limits().read_timeout.count()) +
                           " ms in the middle of the request" + s_.key("read_timeout")});
      if (phase_ == Phase::header)
        return refuse({Refusal::header_timeout, 408, "request_timeout",
                       "the request line and headers took longer than " +
                           std::to_string(limits().header_timeout.count()) + " ms" +
                           s_.key("header_timeout")});
      return refuse({Refusal::body_timeout, 408, "request_timeout",
                     "the body took longer than " + std::to_string(limits().body_timeout.count()) +
                         " ms" + s_.key("body_timeout")});
    }
    buffer_.commit(n);
    if (phase_ == Phase::idle) {
      phase_ = Phase::header;
      deadline_ = Clock::now() + limits().header_timeout;
    }
    parse();
  }

  // Feeds the buffered bytes to the reader: the header first (checked before any of the body
  // is taken), then the body as it comes.
  void parse() {
    for (;;) {
      const auto data = buffer_.data();
      size_t used = 0;
      const auto step =
          reader_->feed(std::string_view(static_cast<const char*>(data.data()), data.size()), used);
      buffer_.consume(used);
      switch (step) {
        case RequestReader::Step::more:
          return read();
        case RequestReader::Step::refused:
          return refuse(reader_->refusal());
        case RequestReader::Step::complete:
          return answer();
        case RequestReader::Step::header:
          // The body has a deadline of its own, from the end of the headers.
          phase_ = Phase::body;
          deadline_ = Clock::now() + limits().body_timeout;
          if (reader_->expects_continue()) return proceed();
          break;
      }
    }
  }

  // "100 Continue": the client waits for it before sending its body.
  void proceed() {
    phase_ = Phase::writing;
    arm(Clock::now() + limits().write_timeout);
    static constexpr std::string_view line = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::async_write(stream_, asio::buffer(line.data(), line.size()),
                      [self = this->shared_from_this()](error_code ec, size_t) {
                        self->disarm();
                        if (ec || self->shut_) {
                          if (ec && self->timed_out_) self->s_.count(Refusal::write_timeout);
                          return self->close_now();
                        }
                        self->phase_ = Phase::body;
                        self->parse();
                      });
  }

  // ---- answering ------------------------------------------------------------------------
  void answer() {
    phase_ = Phase::answering;
    Incoming in = reader_->take();
    reader_.reset();
    Request& req = in.request;
    req.peer = peer_;
    s_.stats->requests.fetch_add(1, std::memory_order_relaxed);
    ++served_;

    Response r;
    const RateLimit& rl = s_.o.rate_limit;
    uint32_t wait = 0;
    if (rl.per_second && (!rl.applies || rl.applies(req)))
      wait = s_.limiter.take(key_, Clock::now());
    if (wait) {
      s_.count(Refusal::rate_limited);
      r = s_.error(429, "rate_limited", rl.detail);
      r.headers.emplace_back("Retry-After", std::to_string(wait));
    } else {
      try {
        r = s_.handler(req);
      } catch (const std::exception& e) {
        r = s_.error(500, "internal", std::string("unexpected error: ") + e.what());
      } catch (...) {
        r = s_.error(500, "internal", "unexpected error");
      }
    }
    if (r.later) {
      // The answer comes later, from another thread: the connection keeps itself (and the
      // listener) alive in the Resume, and its strand builds and writes the answer.
      auto later = std::move(r.later);
      // The Resume lets go of the connection once called, so a copy someone keeps does not
      // keep the connection (or a stopping listener) waiting; a second call does nothing.
      // While it waits no I/O of this connection is pending: the work guard keeps the
      // listener's threads from running out of work (stop() ends them regardless).
      struct Held {
        std::shared_ptr<Session> self;
        std::shared_ptr<Server::Impl> impl;
        asio::executor_work_guard<asio::io_context::executor_type> work;
      };
      auto held = std::make_shared<std::optional<Held>>(
          Held{this->shared_from_this(), s_.shared_from_this(), asio::make_work_guard(s_.ioc)});
      later([held, version = in.version, head = in.head,
             keep_alive = in.keep_alive](std::function<Response()> make) {
        std::optional<Held> h = std::exchange(*held, std::nullopt);
        if (!h) return;
        auto executor = h->self->stream_.get_executor();
        asio::post(executor, [h = std::move(*h), make = std::move(make), version, head,
                              keep_alive]() mutable {
          Response out;
          try {
            out = make();
          } catch (const std::exception& e) {
            out = h.self->s_.error(500, "internal", std::string("unexpected error: ") + e.what());
          } catch (...) {
            out = h.self->s_.error(500, "internal", "unexpected error");
          }
          h.self->finish(std::move(out), version, head, keep_alive);
        });
      });
      return;
    }
    finish(std::move(r), in.version, in.head, in.keep_alive);
  }

  void finish(Response r, unsigned version, bool head, bool keep_alive) {
    const bool keep = keep_alive && !shut_ && !s_.stopping.load() &&
                      served_ < limits().keep_alive_requests &&
                      limits().keep_alive_timeout.count() > 0;
    write(std::move(r), version, head, keep, false);
  }

  void refuse(Refused why) {  // a copy: it may live in the reader reset below
    s_.count(why.reason);
    reader_.reset();
    write(s_.error(why.status, why.code, why.detail), 11, false, false, true);
  }

  void write(Response r, unsigned version, bool head, bool keep, bool linger) {
    if (r.stream && !head) return begin_stream(std::move(r), version);
    res_.emplace();
    auto& res = *res_;
    res.version(version == 10 ? 10 : 11);
    res.result(static_cast<unsigned>(r.status));
    res.set(bhttp::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers)
      res.insert(k, v);
    if (head) {
      res.content_length(r.body.size());
    } else {
      res.body() = std::move(r.body);
      res.prepare_payload();
    }
    res.keep_alive(keep);
    phase_ = Phase::writing;
    arm(Clock::now() + limits().write_timeout);
    bhttp::async_write(stream_, res,
                       [self = this->shared_from_this(), keep, linger](error_code ec, size_t) {
                         self->on_write(ec, keep, linger);
                       });
  }

  void on_write(error_code ec, bool keep, bool linger) {
    disarm();
    res_.reset();
    if (ec) {
      if (timed_out_) s_.count(Refusal::write_timeout);
      return close_now();
    }
    if (keep && !shut_) return next_request(false);
    close_gracefully(linger);
  }

  // ---- a response that goes on (Stream) --------------------------------------------------
  void begin_stream(Response r, unsigned version) {
    sse_ = std::move(r.stream);
    const unsigned status = static_cast<unsigned>(r.status);
    std::string out = std::string(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ") +
                      std::to_string(status) + " " +
                      std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(status))) +
                      "\r\nContent-Type: " + r.content_type +
                      "\r\nCache-Control: no-store\r\nConnection: close\r\n";
    for (const auto& [k, v] : r.headers)
      out += k + ": " + v + "\r\n";
    out += "\r\n" + r.body;
    phase_ = Phase::streaming;
    last_sent_ = Clock::now();
    // A read that completes means the client closed (or sent something it should not):
    // either way the stream ends, rather than waiting for a write to fail.
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(read_chunk),
                            [self = this->shared_from_this()](error_code, size_t) {
                              self->stream_over_ = true;
                              self->ticker_.cancel();
                            });
    send_stream(std::move(out));
  }

  void send_stream(std::string text) {
    if (shut_ || stream_over_ || s_.stopping) return end_stream();
    out_ = std::move(text);
    arm(Clock::now() + limits().write_timeout);
    asio::async_write(stream_, asio::buffer(out_),
                      [self = this->shared_from_this()](error_code ec, size_t) {
                        self->disarm();
                        if (ec) {
                          if (self->timed_out_) self->s_.count(Refusal::write_timeout);
                          return self->close_now();
                        }
                        self->last_sent_ = Clock::now();
                        self->wait_stream();
                      });
  }

  void wait_stream() {
    if (shut_ || stream_over_ || s_.stopping) return end_stream();
    ticker_.expires_after(sse_->interval);
    ticker_.async_wait([self = this->shared_from_this()](error_code) {
      if (self->shut_ || self->stream_over_ || self->s_.stopping) return self->end_stream();
      std::optional<std::string> more;
      try {
        more = self->sse_->next();
      } catch (...) {
        more.reset();  // a producer that fails ends its stream
      }
      if (!more) return self->end_stream();
      if (more->empty()) {
        if (Clock::now() - self->last_sent_ < self->sse_->heartbeat) return self->wait_stream();
        *more = ": keep-alive\n\n";
      }
      self->send_stream(std::move(*more));
    });
  }

  void end_stream() {
    if (phase_ == Phase::closing) return;
    sse_.reset();
    ticker_.cancel();
    close_gracefully(false);
  }

  // ---- closing --------------------------------------------------------------------------
  void on_shut() {
    shut_ = true;
    if (phase_ == Phase::streaming) {
      ticker_.cancel();  // its handler sees shut_ and ends the stream
      return;
    }
    // Waiting for the client: stop now. Answering or writing: close after the response.
    if (phase_ == Phase::handshake || phase_ == Phase::idle || phase_ == Phase::header ||
        phase_ == Phase::body || phase_ == Phase::closing) {
      error_code ignored;
      socket().cancel(ignored);
    }
  }

  void close_gracefully(bool linger) {
    phase_ = Phase::closing;
    if constexpr (tls) {
      (void)linger;
      arm(Clock::now() + tls_shutdown_time);
      stream_.async_shutdown([self = this->shared_from_this()](error_code) {
        self->disarm();
        self->close_now();
      });
    } else {
      error_code ignored;
      socket().shutdown(tcp::socket::shutdown_send, ignored);
      if (!linger) return close_now();
      arm(Clock::now() + linger_time);
      drain();
    }
  }

  void drain() {
    buffer_.clear();
    socket().async_read_some(buffer_.prepare(read_chunk),
                             [self = this->shared_from_this()](error_code ec, size_t n) {
                               self->drained_ += n;
                               if (ec || self->shut_ || self->drained_ > linger_bytes) {
                                 self->disarm();
                                 return self->close_now();
                               }
                               self->drain();
                             });
  }

  void close_now() {
    phase_ = Phase::closing;
    disarm();
    error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
  }

  Server::Impl& s_;
  Stream stream_;
  asio::steady_timer timer_;
  asio::steady_timer ticker_;  // a Stream's cadence
  std::string peer_;
  std::string key_;
  beast::flat_buffer buffer_;
  std::optional<RequestReader> reader_;
  std::optional<bhttp::response<bhttp::string_body>> res_;
  std::shared_ptr<http::Stream> sse_;  // the http::Stream being written
  std::string out_;                    // its bytes in flight
  Clock::time_point last_sent_;
  bool stream_over_ = false;  // the client closed its side
  Phase phase_ = Phase::header;
  Clock::time_point deadline_;
  uint32_t served_ = 0;
  size_t drained_ = 0;  ///< bytes read and dropped after a refusal
  uint64_t generation_ = 0;
  bool timed_out_ = false;
  bool shut_ = false;
};

}  // namespace

void Server::Impl::accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void Server::Impl::on_accept(error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
  if (stopping) return;
  if (ec) {
    retry.expires_after(accept_retry);
    retry.async_wait([this](error_code e) {
      if (!e && acceptor.is_open()) accept();
    });
    return;
  }
  const auto accepted = Clock::now();
  error_code e;
  const tcp::endpoint remote = socket.remote_endpoint(e);
  if (e) return accept();  // gone already
  asio::ip::address address = remote.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  std::string peer = address.to_string();
  std::string key = client_key(peer);
  if (auto refusal = admit(key)) {
    count(*refusal);
    socket.close(e);
    return accept();
  }
  // Without it, delayed ACKs stall small responses on a kept-alive connection.
  socket.set_option(tcp::no_delay(true), e);
  std::shared_ptr<SessionBase> session;
  try {
    if (ssl) {
      auto s = std::make_shared<Session<asio::ssl::stream<tcp::socket>>>(*this, std::move(socket),
                                                                         peer, key, accepted);
      session = s;
      s->start();
    } else {
      auto s =
          std::make_shared<Session<tcp::socket>>(*this, std::move(socket), peer, key, accepted);
      session = s;
      s->start();
    }
  } catch (const std::exception&) {
    // Not made (out of memory, SSL_new failed): a constructed session gives its slot back
    // when it is destroyed, one that never was gives it back here.
    if (!session) release(nullptr, key);
  }
  accept();
}

Result<std::unique_ptr<Server>> Server::start(Options options, Handler handler) {
  auto impl = std::make_shared<Impl>(std::move(options), std::move(handler));
  const Options& o = impl->o;
  if (o.tls.enabled()) {
    impl->ssl.emplace(asio::ssl::context::tls_server);
    if (auto s = configure_tls(impl->ssl->native_handle(), o.tls,
                               (o.limits_key.empty() ? "" : o.limits_key + ".") + "tls");
        !s)
      return Error{s.error()};
  }
  const std::string bind_error = o.listen_key + " " + where(o.host, o.port) +
                                 ": cannot listen there (port in use, or not an address of "
                                 "this host)";
  error_code ec;
  tcp::resolver resolver(impl->ioc);
  const auto endpoints = resolver.resolve(
      o.host, std::to_string(o.port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) return Error{bind_error};
  bool bound = false;
  for (const auto& entry : endpoints) {
    tcp::acceptor& a = impl->acceptor;
    error_code e;
    a.open(entry.endpoint().protocol(), e);
    // SO_REUSEADDR lets a restarted segx bind while old connections linger in TIME_WAIT;
    // no SO_REUSEPORT, with which a second segx would bind too and take half the requests.
    if (!e) a.set_option(tcp::acceptor::reuse_address(true), e);
    if (!e) a.bind(entry.endpoint(), e);
    if (!e) a.listen(asio::socket_base::max_listen_connections, e);
    if (!e) {
      bound = true;
      break;
    }
    a.close(e);
  }
  if (!bound) return Error{bind_error};
  const uint16_t port = impl->acceptor.local_endpoint(ec).port();
  const bool tls = o.tls.enabled();
  const std::string host = o.host;
  impl->accept();
  for (uint32_t i = 0; i < std::max<uint32_t>(o.threads, 1); ++i) {
    impl->threads.emplace_back([p = impl.get()] {
      pthread_setname_np(pthread_self(), p->o.thread_name.substr(0, 15).c_str());
      for (;;) {
        try {
          p->ioc.run();
          return;
        } catch (const std::exception&) {
          // A handler escaped with an exception: the connection it served is gone; go on.
        }
      }
    });
  }
  auto stats = impl->stats;
  return std::unique_ptr<Server>(new Server(std::move(impl), std::move(stats), host, port, tls));
}

Server::Server(std::shared_ptr<Impl> impl, std::shared_ptr<const Stats> stats, std::string host,
               uint16_t port, bool tls)
    : impl_(std::move(impl)),
      stats_(std::move(stats)),
      host_(std::move(host)),
      port_(port),
      tls_(tls) {}

Server::~Server() {
  stop();
}

void Server::stop() {
  Impl& s = *impl_;
  std::vector<std::weak_ptr<SessionBase>> sessions;
  {
    std::lock_guard lock(s.mutex);
    if (s.stopped) return;
    s.stopped = true;
    s.stopping = true;
    for (const auto& [p, w] : s.sessions)
      sessions.push_back(w);
  }
  asio::post(s.acceptor.get_executor(), [&s] {
    error_code ignored;
    s.acceptor.close(ignored);
    s.retry.cancel();
  });
  for (auto& w : sessions)
    if (auto session = w.lock()) session->shut();
  {
    std::unique_lock lock(s.mutex);
    s.drained.wait_for(lock, s.o.limits.write_timeout + std::chrono::seconds(2),
                       [&] { return s.open == 0; });
  }
  s.ioc.stop();
  for (auto& t : s.threads)
    if (t.joinable()) t.join();
}

std::string Server::url() const {
  std::string host = host_;
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::") host = "::1";
  return std::string(tls_ ? "https" : "http") + "://" + where(host, port_);
}

}  // namespace segx::http
