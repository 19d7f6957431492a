// The HTTP listener in-process over loopback: what a well-behaved client gets (keep-alive,
// pipelining, HEAD, 100-continue), and what a hostile one gets: deadlines for slow headers,
// slow and silent bodies; bodies refused before or as they arrive; no inflation; caps per
// address and in total; a per-address rate; all while another client is answered.
// Deadlines are short here (hundreds of ms); bounds in the assertions are generous.

#include "http/server.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "raw_http.hpp"

namespace segx::http {
namespace {

using namespace std::chrono_literals;
using test::RawClient;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

struct Counting {
  std::atomic<int> calls{0};
  Handler handler() {
    return [this](const Request& r) {
      ++calls;
      Response res;
      if (r.path == "/throw") throw std::runtime_error("boom");
      res.body = r.method + " " + r.path + " " + std::to_string(r.query.size()) + " " +
                 std::to_string(r.body.size()) + " " + r.peer;
      res.headers.emplace_back("X-Seen", r.header("x-token"));
      return res;
    };
  }
};

Options local(Limits l = {}) {
  Options o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.threads = 1;  // one thread: any client I/O holding it would show
  o.limits = l;
  o.limits_key = "test";
  return o;
}

std::unique_ptr<Server> start(Options o, Handler h) {
  auto s = Server::start(std::move(o), std::move(h));
  EXPECT_TRUE(s.ok()) << s.error();
  return s.ok() ? std::move(s).value() : nullptr;
}

std::string get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n";
}

TEST(HttpServer, AnswersKeepsAlivePipelinesAndHead) {
  Counting c;
  auto s = start(local(), c.handler());
  ASSERT_TRUE(s);
  RawClient a("127.0.0.1", s->port());
  ASSERT_TRUE(a.connected());
  ASSERT_TRUE(a.send(get("/one?x=1&y=a+b")));
  auto r1 = a.response(5s);
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->status, 200);
  EXPECT_EQ(r1->body, "GET /one 2 0 127.0.0.1");
  // HEAD: the length of the body the handler made, no body (the next answer reads clean).
  ASSERT_TRUE(a.send("HEAD /one HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto h = a.response(5s, true);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(h->header("Content-Length"),
            std::to_string(std::string("HEAD /one 0 0 127.0.0.1").size()));
  // Two requests in one write: two answers, in order, on the same connection.
  ASSERT_TRUE(a.send(get("/a") + "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz"));
  auto ra = a.response(5s), rb = a.response(5s);
  ASSERT_TRUE(ra && rb);
  EXPECT_EQ(ra->body, "GET /a 0 0 127.0.0.1");
  EXPECT_EQ(rb->body, "POST /b 0 3 127.0.0.1");
  // A chunked body within the limit is read whole.
  ASSERT_TRUE(
      a.send("POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"));
  auto rc = a.response(5s);
  ASSERT_TRUE(rc);
  EXPECT_EQ(rc->body, "POST /c 0 5 127.0.0.1");
  // 100-continue: the client hears "go on" before it sends the body.
  ASSERT_TRUE(
      a.send("PUT /d HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2"
             "\r\n\r\n"));
  auto go = a.response(5s);
  ASSERT_TRUE(go);
  EXPECT_EQ(go->status, 100);
  ASSERT_TRUE(a.send("ok"));
  auto rd = a.response(5s);
  ASSERT_TRUE(rd);
  EXPECT_EQ(rd->body, "PUT /d 0 2 127.0.0.1");
  // A handler that throws: 500, and the listener goes on.
  ASSERT_TRUE(a.send(get("/throw")));
  auto rt = a.response(5s);
  ASSERT_TRUE(rt);
  EXPECT_EQ(rt->status, 500);
  EXPECT_EQ(c.calls.load(), 7);
  EXPECT_EQ(s->stats()->connections.load(), 1u);
}

TEST(HttpServer, AnAnswerThatComesLaterHoldsNoThread) {
  // /later answers only when the test resumes it, from its own thread; meanwhile the
  // listener's one thread answers another client, and the waiting connection, resumed,
  // answers and keeps alive.
  std::mutex m;
  std::vector<Resume> waiting;
  // Whether a request is waiting for its answer within a second; then its Resume.
  const auto until_waiting = [&] {
    for (int i = 0; i < 100; ++i) {
      {
        std::lock_guard lock(m);
        if (!waiting.empty()) return true;
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  };
  const auto take = [&] {
    std::lock_guard lock(m);
    Resume r = waiting.size() == 1 ? std::move(waiting[0]) : Resume{};
    waiting.clear();
    return r;
  };
  auto s = start(local(), [&](const Request& r) {
    Response res;
    if (r.path == "/later") {
      res.later = [&](Resume resume) {
        std::lock_guard lock(m);
        waiting.push_back(std::move(resume));
      };
      return res;
    }
    res.body = "now";
    return res;
  });
  ASSERT_TRUE(s);
  RawClient a("127.0.0.1", s->port()), b("127.0.0.1", s->port());
  ASSERT_TRUE(a.connected() && b.connected());
  ASSERT_TRUE(a.send(get("/later")));
  ASSERT_TRUE(until_waiting());
  ASSERT_TRUE(b.send(get("/now")));
  auto rb = b.response(5s);
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->body, "now");
  Resume resume = take();
  ASSERT_TRUE(resume) << "one request waits";
  std::thread([resume] {
    resume([] {
      Response r;
      r.status = 201;
      r.body = "later";
      return r;
    });
  }).join();
  auto ra = a.response(5s);
  ASSERT_TRUE(ra);
  EXPECT_EQ(ra->status, 201);
  EXPECT_EQ(ra->body, "later");
  // The same connection goes on.
  ASSERT_TRUE(a.send(get("/now")));
  auto again = a.response(5s);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, "now");
  // One that throws while building its answer: 500.
  ASSERT_TRUE(a.send(get("/later")));
  ASSERT_TRUE(until_waiting());
  resume = take();
  ASSERT_TRUE(resume) << "one request waits";
  resume([]() -> Response { throw std::runtime_error("gone"); });
  auto thrown = a.response(5s);
  ASSERT_TRUE(thrown);
  EXPECT_EQ(thrown->status, 500);
  // A connection still waiting when the listener stops: stop returns, and resuming it
  // afterwards is harmless.
  ASSERT_TRUE(b.send(get("/later")));
  ASSERT_TRUE(until_waiting());
  resume = take();
  ASSERT_TRUE(resume) << "one request waits";
  std::thread stopper([&] { s->stop(); });
  std::this_thread::sleep_for(50ms);
  const auto stopping = Clock::now();
  resume([] { return Response{}; });
  resume([] { return Response{}; });  // a second call does nothing
  auto last = b.response(5s);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->status, 200);
  EXPECT_EQ(last->header("Connection"), "close");
  stopper.join();
  // The copy of the Resume the test still holds does not hold the listener up.
  EXPECT_LT(Clock::now() - stopping, 2s);
  s.reset();
}

TEST(HttpServer, SlowHeadersGet408AtTheDeadlineWhileAnotherClientIsAnswered) {
  Limits l;
  l.header_timeout = 1500ms;
  l.read_timeout = 1500ms;
  Counting c;
  auto s = start(local(l), c.handler());
  ASSERT_TRUE(s);
  // Four clients, one thread: each sends a header line every 100 ms and never finishes.
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < 4; ++i) {
    slow.push_back(std::make_unique<RawClient>("127.0.0.1", s->port()));
    ASSERT_TRUE(slow.back()->send("GET / HTTP/1.1\r\n"));
  }
  const auto began = Clock::now();
  // A jthread: stopped and joined however the test leaves this scope.
  std::jthread dribble([&](std::stop_token stop) {
    for (int i = 0; i < 100 && !stop.stop_requested(); ++i) {
      for (auto& c : slow)
        c->send("X-Slow: " + std::to_string(i) + "\r\n", 100ms);
      std::this_thread::sleep_for(100ms);
    }
  });
  // Meanwhile another client is answered at once, several times.
  for (int i = 0; i < 3; ++i) {
    RawClient other("127.0.0.1", s->port());
    const auto t0 = Clock::now();
    ASSERT_TRUE(other.send(get("/healthz")));
    auto r = other.response(5s);
    ASSERT_TRUE(r) << "no answer while slow clients send headers";
    EXPECT_EQ(r->status, 200);
    std::printf("answered in %.1f ms while 4 clients dribble headers\n",
                std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    std::this_thread::sleep_for(200ms);
  }
  // The slow ones get 408 and are closed once their header deadline passes.
  for (auto& c : slow) {
    auto r = c->response(10s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 408);
    EXPECT_THAT(r->body, HasSubstr("test.header_timeout"));
    EXPECT_TRUE(c->closed_within(5s));
  }
  const double took = std::chrono::duration<double>(Clock::now() - began).count();
  dribble.request_stop();
  EXPECT_GE(took, 1.0) << "closed before the deadline";
  EXPECT_EQ(s->stats()->refusals(Refusal::header_timeout), 4u);
  EXPECT_EQ(c.calls.load(), 3);
}

TEST(HttpServer, ASilentOrSlowBodyGets408) {
  Limits l;
  l.read_timeout = 300ms;
  l.body_timeout = 800ms;
  Counting c;
  auto s = start(local(l), c.handler());
  ASSERT_TRUE(s);
  RawClient silent("127.0.0.1", s->port());
  ASSERT_TRUE(silent.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab"));
  auto r = silent.response(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_THAT(r->body, HasSubstr("test.read_timeout"));

  RawClient slow("127.0.0.1", s->port());
  ASSERT_TRUE(slow.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"));
  std::optional<test::RawResponse> got;
  for (int i = 0; i < 60 && !slow.readable(); ++i) {
    slow.send("a", 100ms);
    std::this_thread::sleep_for(100ms);
  }
  got = slow.response(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 408);
  EXPECT_THAT(got->body, HasSubstr("test.body_timeout"));
  EXPECT_EQ(s->stats()->refusals(Refusal::read_timeout), 1u);
  EXPECT_EQ(s->stats()->refusals(Refusal::body_timeout), 1u);
  EXPECT_EQ(c.calls.load(), 0);
}

TEST(HttpServer, BodiesOverTheLimitAreRefusedBeforeOrAsTheyArrive) {
  Limits l;
  l.body_limit = 4096;
  Counting c;
  auto s = start(local(l), c.handler());
  ASSERT_TRUE(s);
  // Content-Length over the limit: 413 without a byte of the body sent.
  RawClient big("127.0.0.1", s->port());
  ASSERT_TRUE(big.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1073741824\r\n\r\n"));
  auto r = big.response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_THAT(r->body, HasSubstr("Content-Length 1073741824 is over the limit of 4096 bytes"));
  EXPECT_EQ(r->header("Connection"), "close");

  // A chunked body: refused the moment it passes the limit, while the client still sends.
  RawClient chunked("127.0.0.1", s->port());
  ASSERT_TRUE(chunked.send("POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const std::string chunk = "200\r\n" + std::string(512, 'z') + "\r\n";
  size_t sent = 0;
  for (int i = 0; i < 1000 && !chunked.readable(); ++i) {
    if (!chunked.send(chunk, 1s)) break;
    sent += 512;
    std::this_thread::sleep_for(2ms);
  }
  auto rc = chunked.response(5s);
  ASSERT_TRUE(rc);
  EXPECT_EQ(rc->status, 413);
  EXPECT_THAT(rc->body, HasSubstr("the body passed the limit of 4096 bytes"));
  EXPECT_LE(sent, 64u * 1024) << "the refusal came late";
  EXPECT_EQ(c.calls.load(), 0);
  EXPECT_EQ(s->stats()->refusals(Refusal::body_limit), 2u);
}

TEST(HttpServer, NothingIsInflatedAndUnknownCodingsAreRefused) {
  Counting c;
  auto s = start(local(), c.handler());
  ASSERT_TRUE(s);
  const auto status = [&](const std::string& request) {
    RawClient k("127.0.0.1", s->port());
    k.send(request);
    auto r = k.response(5s);
    return r ? r->status : -1;
  };
  EXPECT_EQ(status("POST /x HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\nContent-Length: 4"
                   "\r\n\r\nabcd"),
            415);
  EXPECT_EQ(status("POST /x HTTP/1.1\r\nHost: t\r\nContent-Encoding: identity, br\r\n"
                   "Content-Length: 4\r\n\r\nabcd"),
            415);
  EXPECT_EQ(status("POST /x HTTP/1.1\r\nHost: t\r\nContent-Encoding: identity\r\n"
                   "Content-Length: 4\r\n\r\nabcd"),
            200);
  EXPECT_EQ(status("POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                   "0\r\n\r\n"),
            501);
  EXPECT_EQ(status("GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(20000, 'h') + "\r\n\r\n"),
            431);
  EXPECT_EQ(status("NOT HTTP AT ALL\r\n\r\n"), 400);
  EXPECT_EQ(status("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2"
                   "\r\n\r\nab"),
            400);
  EXPECT_EQ(c.calls.load(), 1);
  EXPECT_EQ(s->stats()->refusals(Refusal::content_encoding), 2u);
  EXPECT_EQ(s->stats()->refusals(Refusal::malformed), 2u);
}

TEST(HttpServer, ConnectionsAreCappedPerAddressAndInTotal) {
  Limits l;
  l.max_connections = 3;
  l.max_connections_per_address = 2;
  Counting c;
  auto s = start(local(l), c.handler());
  ASSERT_TRUE(s);
  auto a1 = std::make_unique<RawClient>("127.0.0.1", s->port());
  RawClient a2("127.0.0.1", s->port());
  // Admitted connections answer (and prove they are counted before the next arrives).
  for (RawClient* k : {a1.get(), &a2}) {
    ASSERT_TRUE(k->send(get("/")));
    ASSERT_TRUE(k->response(5s));
  }
  RawClient a3("127.0.0.1", s->port());
  EXPECT_TRUE(a3.closed_within(3s)) << "a third connection from one address stays open";
  RawClient b1("127.0.0.1", s->port(), "127.0.0.2");
  ASSERT_TRUE(b1.send(get("/")));
  auto rb = b1.response(5s);
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->body, "GET / 0 0 127.0.0.2");
  RawClient c1("127.0.0.1", s->port(), "127.0.0.3");
  EXPECT_TRUE(c1.closed_within(3s)) << "a fourth connection in all stays open";
  EXPECT_EQ(s->stats()->refusals(Refusal::max_connections_per_address), 1u);
  EXPECT_EQ(s->stats()->refusals(Refusal::max_connections), 1u);
  // A slot given back is a slot again.
  a1.reset();
  bool admitted = false;
  for (int i = 0; i < 50 && !admitted; ++i) {
    RawClient again("127.0.0.1", s->port());
    again.send(get("/"));
    admitted = again.response(2s).has_value();
    if (!admitted) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(admitted);
  EXPECT_LE(s->stats()->open_connections.load(), 3);
}

TEST(HttpServer, KeepAliveEndsAfterTheRequestCountAndTheIdleTime) {
  Limits l;
  l.keep_alive_requests = 2;
  l.keep_alive_timeout = 300ms;
  Counting c;
  auto s = start(local(l), c.handler());
  ASSERT_TRUE(s);
  RawClient k("127.0.0.1", s->port());
  ASSERT_TRUE(k.send(get("/1")));
  auto r1 = k.response(5s);
  ASSERT_TRUE(r1);
  EXPECT_NE(r1->header("Connection"), "close");
  ASSERT_TRUE(k.send(get("/2")));
  auto r2 = k.response(5s);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->header("Connection"), "close");
  EXPECT_TRUE(k.closed_within(3s));

  RawClient idle("127.0.0.1", s->port());
  ASSERT_TRUE(idle.send(get("/1")));
  ASSERT_TRUE(idle.response(5s));
  const auto t0 = Clock::now();
  EXPECT_TRUE(idle.closed_within(5s));
  EXPECT_GE(Clock::now() - t0, 250ms);
}

TEST(HttpServer, RequestsTheRateLimitSelectsGet429WithRetryAfter) {
  Options o = local();
  o.rate_limit.per_second = 3;
  o.rate_limit.applies = [](const Request& r) { return r.header("X-Token") != "ok"; };
  o.rate_limit.detail = "too many";
  Counting c;
  auto s = start(std::move(o), c.handler());
  ASSERT_TRUE(s);
  RawClient k("127.0.0.1", s->port());
  int limited = 0, passed = 0;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(k.send(get("/")));
    auto r = k.response(5s);
    ASSERT_TRUE(r);
    if (r->status == 429) {
      ++limited;
      EXPECT_GE(std::stoi(r->header("Retry-After")), 1);
      EXPECT_THAT(r->body, HasSubstr("too many"));
    } else {
      ++passed;
    }
  }
  EXPECT_GE(limited, 6);
  EXPECT_LE(passed, 4);
  // Requests the predicate leaves out are not limited, from the same address.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(k.send(get("/", "X-Token: ok\r\n")));
    auto r = k.response(5s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  // Another address has its own budget.
  RawClient other("127.0.0.1", s->port(), "127.0.0.2");
  ASSERT_TRUE(other.send(get("/")));
  auto r = other.response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(s->stats()->refusals(Refusal::rate_limited), static_cast<uint64_t>(limited));
}

// A response that goes on (Server-Sent Events): the head and first part at once, then what
// Stream::next returns at its cadence, heartbeats when it has nothing, the end when it says so;
// a client that leaves, or a listener that stops, ends it; HEAD gets the head alone. The
// thread is free between writes.
TEST(HttpServer, AStreamSendsUntilItsProducerEndsAndHoldsNoThread) {
  std::atomic<int> calls{0};
  auto s = start(local(), [&](const Request& r) {
    Response res;
    if (r.path != "/events") {
      res.body = "plain";
      return res;
    }
    res.content_type = "text/event-stream";
    res.body = "retry: 1000\n\n";
    res.stream = std::make_shared<Stream>();
    res.stream->interval = 20ms;
    res.stream->heartbeat = 50ms;
    // Three events, one every other turn, then the end.
    res.stream->next = [&calls, n = 0]() mutable -> std::optional<std::string> {
      ++calls;
      ++n;
      if (n > 6) return std::nullopt;
      if (n % 2) return std::string();
      return "id: " + std::to_string(n / 2) + "\ndata: x\n\n";
    };
    return res;
  });
  ASSERT_TRUE(s);
  RawClient c("127.0.0.1", s->port());
  ASSERT_TRUE(c.send(get("/events")));
  // Meanwhile (one thread) another client is served.
  RawClient other("127.0.0.1", s->port());
  ASSERT_TRUE(other.send(get("/")));
  auto r = other.response(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "plain");
  bool closed = false;
  const std::string all = c.read_for(5s, &closed);
  EXPECT_TRUE(closed) << all;
  EXPECT_THAT(all, HasSubstr("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(all, HasSubstr("Content-Type: text/event-stream\r\n"));
  EXPECT_THAT(all, HasSubstr("Cache-Control: no-store\r\n"));
  EXPECT_THAT(all, HasSubstr("Connection: close\r\n"));
  EXPECT_THAT(all, ::testing::Not(HasSubstr("Content-Length")));
  const size_t body = all.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos);
  EXPECT_EQ(all.substr(body + 4),
            "retry: 1000\n\nid: 1\ndata: x\n\nid: 2\ndata: x\n\nid: 3\ndata: x\n\n");
  EXPECT_EQ(calls.load(), 7);

  // Nothing to say for longer than the heartbeat: a comment line keeps the connection.
  auto quiet = start(local(), [](const Request&) {
    Response res;
    res.stream = std::make_shared<Stream>();
    res.stream->interval = 10ms;
    res.stream->heartbeat = 100ms;
    res.stream->next = []() -> std::optional<std::string> { return std::string(); };
    return res;
  });
  ASSERT_TRUE(quiet);
  RawClient q("127.0.0.1", quiet->port());
  ASSERT_TRUE(q.send(get("/")));
  const std::string beats = q.read_for(450ms);
  EXPECT_THAT(beats, HasSubstr(": keep-alive\n\n"));
  // HEAD: the head alone, the connection kept.
  RawClient h("127.0.0.1", quiet->port());
  ASSERT_TRUE(h.send("HEAD / HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto head = h.response(5s, /*to_head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  // The client leaving ends the stream (the server's side closes too); stopping ends the rest.
  q.close();
  const auto t0 = Clock::now();
  quiet->stop();
  EXPECT_LT(Clock::now() - t0, 5s);
}

TEST(HttpServer, StopClosesIdleConnectionsAndReturns) {
  Counting c;
  auto s = start(local(), c.handler());
  ASSERT_TRUE(s);
  RawClient idle("127.0.0.1", s->port());
  RawClient half("127.0.0.1", s->port());
  ASSERT_TRUE(half.send("GET / HTTP/1.1\r\n"));
  ASSERT_TRUE(idle.send(get("/")));
  ASSERT_TRUE(idle.response(5s));
  const auto t0 = Clock::now();
  s->stop();
  s->stop();
  EXPECT_LT(Clock::now() - t0, 5s);
  EXPECT_TRUE(idle.closed_within(2s));
  EXPECT_TRUE(half.closed_within(2s));
  RawClient late("127.0.0.1", s->port());
  EXPECT_FALSE(late.connected() && late.send(get("/")) && late.response(1s));
}

TEST(HttpServer, StartRefusesWeakTlsSuitesAndNamesTheKey) {
  Options o = local();
  o.limits_key = "market.api";
  o.tls.cert = "/nonexistent/cert.pem";
  o.tls.key = "/nonexistent/key.pem";
  for (const char* weak : {"AES128-SHA", "ECDHE-RSA-AES128-SHA", "DHE-RSA-AES128-GCM-SHA256"}) {
    o.tls.ciphers = weak;
    auto r = Server::start(o, [](const Request&) { return Response{}; });
    ASSERT_FALSE(r.ok()) << weak;
    EXPECT_THAT(r.error(), HasSubstr(std::string("market.api.tls.ciphers: ") + weak +
                                     " is not an ECDHE suite with an AEAD cipher"));
  }
  o.tls.ciphers = "NO-SUCH-SUITE";
  auto unknown = Server::start(o, [](const Request&) { return Response{}; });
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.error(), HasSubstr("market.api.tls.ciphers"));
  o.tls.ciphers.clear();
  auto files = Server::start(o, [](const Request&) { return Response{}; });
  ASSERT_FALSE(files.ok());
  EXPECT_THAT(files.error(), HasSubstr("market.api.tls: cannot load certificate"));
}

TEST(HttpServer, APortInUseIsAnErrorNamingTheKey) {
  Counting c;
  auto first = start(local(), c.handler());
  ASSERT_TRUE(first);
  Options o = local();
  o.port = first->port();
  o.listen_key = "market.api.listen";
  auto second = Server::start(o, c.handler());
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.error(),
              HasSubstr("market.api.listen 127.0.0.1:" + std::to_string(first->port())));
}

}  // namespace
}  // namespace segx::http
