#pragma once
// One HTTP/1.1 request read from bytes as they arrive, with the listener's limits, and no I/O:
// the listener (http/server.hpp) feeds it what the socket gives, and the fuzzer
// (tests/fuzz/http_fuzz.cpp) feeds it anything. Boost.Beast's parser does the framing; this
// adds what segx refuses and when: the header is checked before any of the body is taken (a
// Content-Length over the limit, a Content-Encoding other than identity, a transfer coding
// other than chunked), and a chunked body is counted chunk by chunk.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "http/server.hpp"

namespace segx::http {

/// Why a request was refused, and what to answer (then close the connection).
struct Refused {
  Refusal reason = Refusal::malformed;
  int status = 400;
  std::string code;    ///< "payload_too_large"
  std::string detail;  ///< a sentence for the client
};

/// A complete request and what the connection needs to answer it.
struct Incoming {
  Request request;         ///< peer not set
  unsigned version = 11;   ///< 10 or 11
  bool keep_alive = true;  ///< what the client asked for (HTTP/1.0: only with keep-alive)
  bool head = false;       ///< HEAD: answer without the body
};

/// Reads one request. Not thread-safe; one per request (construct a new one for the next).
class RequestReader {
 public:
  /// `limits_key`: "market.api" names limits in refusals ("(market.api.body_limit)"); empty:
  /// they are not named.
  RequestReader(const Limits& limits, std::string limits_key);
  ~RequestReader();
  RequestReader(const RequestReader&) = delete;
  RequestReader& operator=(const RequestReader&) = delete;

  enum class Step {
    more,      ///< every byte given was taken; give more
    header,    ///< the header just completed and passed its checks; the body (if any) follows
    complete,  ///< a whole request: take() it
    refused,   ///< refusal() says why; answer it and close
  };
  /// Parses what it can of `bytes` and sets `used` to how many it took; bytes after a complete
  /// request belong to the next one (pipelining). Call again with the rest after `header`.
  Step feed(std::string_view bytes, size_t& used);
  /// True once the request line and headers are in (the body deadline applies from then).
  bool header_complete() const;
  /// True when the client sent "Expect: 100-continue" and waits for "100 Continue" before its
  /// body (checked after Step::header).
  bool expects_continue() const;
  /// The request, after Step::complete. Once.
  Incoming take();
  /// Why, after Step::refused.
  const Refused& refusal() const { return refused_; }

 private:
  struct Parser;
  Step refuse(Refusal reason, int status, std::string code, std::string detail);
  Step check_header();
  std::string key(const char* limit) const;

  Limits limits_;
  std::string limits_key_;
  std::unique_ptr<Parser> parser_;
  Refused refused_;
  bool header_checked_ = false;
  size_t header_bytes_ = 0;  ///< taken before the header was complete
  // The header's own fields: a chunked body's trailer fields, which the parser appends after
  // them, are dropped (RFC 9110 6.5.1), so that no trailer passes for a header (a token in
  // an Authorization trailer that a proxy never saw, say).
  size_t header_fields_ = 0;
  bool keep_alive_ = true;
};

}  // namespace segx::http
