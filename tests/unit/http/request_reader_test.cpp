// Reading one request from bytes as they arrive: any split of the bytes gives the same
// request; what is refused, and when (before the body, or as soon as it passes the limit).

#include "http/request_reader.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace segx::http {
namespace {

using ::testing::HasSubstr;

Limits small() {
  Limits l;
  l.body_limit = 16;
  l.header_limit = 256;
  return l;
}

// Feeds `bytes` `piece` at a time; returns the final step and how many bytes were taken.
RequestReader::Step feed_all(RequestReader& r, std::string_view bytes, size_t piece,
                             size_t& taken) {
  taken = 0;
  size_t have = 0;  // bytes "received" so far; the reader sees [taken, have)
  for (;;) {
    have = std::min(bytes.size(), have + piece);
    size_t used = 0;
    const auto step = r.feed(bytes.substr(taken, have - taken), used);
    taken += used;
    if (step == RequestReader::Step::header) continue;
    if (step != RequestReader::Step::more || have == bytes.size()) return step;
  }
}

TEST(RequestReader, AnySplitGivesTheSameRequest) {
  const std::string text =
      "POST /v1/x%20y?a=1&b=two+words HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer t\r\n"
      "Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\nTrailer: z\r\n\r\n"
      "GET /next HTTP/1.1\r\n\r\n";
  for (size_t piece : {1u, 2u, 7u, 64u, 4096u}) {
    RequestReader r(small(), "k");
    size_t taken = 0;
    ASSERT_EQ(feed_all(r, text, piece, taken), RequestReader::Step::complete) << piece;
    EXPECT_EQ(text.substr(taken), "GET /next HTTP/1.1\r\n\r\n") << piece;
    Incoming in = r.take();
    EXPECT_EQ(in.request.method, "POST");
    EXPECT_EQ(in.request.path, "/v1/x y");
    EXPECT_EQ(in.request.query.find("b")->second, "two words");
    EXPECT_EQ(in.request.body, "abcdefg");
    EXPECT_EQ(in.request.header("authorization"), "Bearer t");
    EXPECT_TRUE(in.keep_alive);
    EXPECT_FALSE(in.head);
  }
}

// A chunked body's trailer is not a header: a token or a Connection sent there, where a
// proxy that checked the header never looked, counts for nothing.
TEST(RequestReader, TrailerFieldsAreDropped) {
  const std::string text =
      "GET /v1/whoami HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
      "Authorization: Bearer stolen\r\nConnection: close\r\nX-Late: 1\r\n\r\n";
  for (size_t piece : {1u, 5u, 4096u}) {
    RequestReader r(small(), "");
    size_t taken = 0;
    ASSERT_EQ(feed_all(r, text, piece, taken), RequestReader::Step::complete) << piece;
    Incoming in = r.take();
    EXPECT_EQ(in.request.header("Authorization"), "") << piece;
    EXPECT_EQ(in.request.header("X-Late"), "") << piece;
    EXPECT_EQ(in.request.header("Host"), "h") << piece;
    EXPECT_TRUE(in.keep_alive) << piece;
  }
}

// Boost 1.74's Beast asserted on this (a final chunk re-parsed with fewer than 5 bytes): with
// assertions on, one client could abort segx (tests/fuzz/http/regressions).
TEST(RequestReader, AnEmptyChunkedBodyInPieces) {
  const std::string text = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
  for (size_t piece : {1u, 2u, 3u}) {
    RequestReader r(small(), "");
    size_t taken = 0;
    ASSERT_EQ(feed_all(r, text, piece, taken), RequestReader::Step::complete) << piece;
    EXPECT_EQ(r.take().request.body, "");
  }
}

TEST(RequestReader, RefusesBeforeTheBodyOrAsItPassesTheLimit) {
  const auto refused = [](const std::string& text, size_t piece = 4096) {
    RequestReader r(small(), "market.api");
    size_t taken = 0;
    EXPECT_EQ(feed_all(r, text, piece, taken), RequestReader::Step::refused) << text;
    return std::make_pair(r.refusal(), taken);
  };
  // Content-Length over the limit: refused with the header, no body byte taken.
  auto [cl, cl_taken] =
      refused("POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n" + std::string(17, 'x'));
  EXPECT_EQ(cl.status, 413);
  EXPECT_THAT(cl.detail, HasSubstr("Content-Length 17 is over the limit of 16 bytes "
                                   "(market.api.body_limit)"));
  EXPECT_LE(cl_taken, std::string("POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n").size());
  // Chunked: the chunk that passes the limit is refused when it is announced.
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  auto [ch, ch_taken] = refused(head + "8\r\n12345678\r\n9\r\n123456789\r\n0\r\n\r\n", 1);
  EXPECT_EQ(ch.status, 413);
  EXPECT_EQ(ch.reason, Refusal::body_limit);
  EXPECT_LT(ch_taken, head.size() + 10 + 4 + 9);
  auto [huge, huge_taken] = refused(head + "ffffffffffffffff\r\n");
  EXPECT_EQ(huge.status, 413);
  // Encodings: refused with the header, whatever follows.
  EXPECT_EQ(refused("POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\n")
                .first.status,
            415);
  EXPECT_EQ(refused("POST / HTTP/1.1\r\nContent-Encoding: identity\r\nContent-Encoding: br\r\n"
                    "Content-Length: 3\r\n\r\n")
                .first.status,
            415);
  EXPECT_EQ(refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").first.status,
            501);
  EXPECT_EQ(refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").first.status,
            400);
  EXPECT_EQ(refused("GET / HTTP/1.1\r\nX: " + std::string(300, 'x') + "\r\n\r\n").first.status,
            431);
  // The limit holds for the whole header, also when its line and fields, each under it,
  // arrive together.
  EXPECT_EQ(refused("GET /" + std::string(200, 'p') + " HTTP/1.1\r\nX: " + std::string(200, 'f') +
                    "\r\n\r\n")
                .first.status,
            431);
  EXPECT_EQ(refused("GET / HTTP/9.9\r\n\r\n").first.status, 400);
  EXPECT_EQ(
      refused("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").first.status,
      400);
  EXPECT_EQ(refused("G\x01T / HTTP/1.1\r\n\r\n").first.status, 400);
  // Two of these, and a proxy and segx may each read a different one.
  const auto twice = refused(
      "GET / HTTP/1.1\r\nAuthorization: Bearer a\r\n"
      "authorization: Bearer b\r\n\r\n");
  EXPECT_EQ(twice.first.status, 400);
  EXPECT_THAT(twice.first.detail, HasSubstr("more than one Authorization header"));
  EXPECT_EQ(refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").first.status, 400);
}

TEST(RequestReader, HeadVersionsAndContinue) {
  RequestReader head(small(), "");
  size_t taken = 0;
  ASSERT_EQ(feed_all(head, "HEAD / HTTP/1.0\r\n\r\n", 4096, taken), RequestReader::Step::complete);
  Incoming h = head.take();
  EXPECT_TRUE(h.head);
  EXPECT_EQ(h.version, 10u);
  EXPECT_FALSE(h.keep_alive);

  RequestReader cont(small(), "");
  size_t used = 0;
  const std::string text = "PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
  ASSERT_EQ(cont.feed(text, used), RequestReader::Step::header);
  EXPECT_TRUE(cont.header_complete());
  EXPECT_TRUE(cont.expects_continue());
  EXPECT_EQ(cont.feed("", used), RequestReader::Step::more);
  EXPECT_EQ(cont.feed("ok", used), RequestReader::Step::complete);
  EXPECT_EQ(cont.take().request.body, "ok");
}

}  // namespace
}  // namespace segx::http
