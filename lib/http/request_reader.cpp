#include "http/request_reader.hpp"

#include <algorithm>
#include <boost/beast/http.hpp>
#include <boost/range/iterator_range.hpp>
#include <cctype>
#include <iterator>

#include "http/target.hpp"

namespace segx::http {

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

std::string_view sv(beast::string_view s) {
  return {s.data(), s.size()};
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// The first token of a comma-separated header value other than `allowed`, or "".
std::string first_other(std::string_view value, std::string_view allowed) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view token = trim(value.substr(0, comma));
    value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    if (!token.empty() && !iequals(token, allowed)) return std::string(token);
  }
  return {};
}

}  // namespace

struct RequestReader::Parser {
  bhttp::request_parser<bhttp::string_body> p;
};

RequestReader::RequestReader(const Limits& limits, std::string limits_key)
    : limits_(limits), limits_key_(std::move(limits_key)), parser_(std::make_unique<Parser>()) {
  parser_->p.header_limit(limits_.header_limit);
  // Beast refuses a Content-Length above this when the header completes, before any of the
  // body, and subtracts each chunk's announced size as it arrives.
  parser_->p.body_limit(limits_.body_limit);
}

RequestReader::~RequestReader() = default;

std::string RequestReader::key(const char* limit) const {
  return limits_key_.empty() ? "" : " (" + limits_key_ + "." + limit + ")";
}

RequestReader::Step RequestReader::refuse(Refusal reason, int status, std::string code,
                                          std::string detail) {
  refused_ = Refused{reason, status, std::move(code), std::move(detail)};
  return Step::refused;
}

RequestReader::Step RequestReader::feed(std::string_view bytes, size_t& used) {
  used = 0;
  auto& p = parser_->p;
  for (;;) {
    // The header's checks come first: a request without a body is done with its header.
    if (p.is_header_done() && !header_checked_) {
      header_checked_ = true;
      return check_header();
    }
    if (p.is_done()) return Step::complete;
    if (used == bytes.size()) return Step::more;
    beast::error_code ec;
    const bool in_header = !p.is_header_done();
    const size_t n = p.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    used += n;
    if (in_header) header_bytes_ += n;
    if (ec == bhttp::error::need_more) return Step::more;
    if (ec == bhttp::error::body_limit) {
      // Fields are stored as they are parsed: Content-Length is there even when the header
      // itself was refused for it.
      const std::string length(sv(p.get()[bhttp::field::content_length]));
      return refuse(Refusal::body_limit, 413, "payload_too_large",
                    (length.empty() ? std::string("the body passed")
                                    : "Content-Length " + length + " is over") +
                        " the limit of " + std::to_string(limits_.body_limit) + " bytes" +
                        key("body_limit"));
    }
    if (ec == bhttp::error::header_limit)
      return refuse(Refusal::header_limit, 431, "header_too_large",
                    "the request line and headers are over " +
                        std::to_string(limits_.header_limit) + " bytes");
    if (ec)
      return refuse(Refusal::malformed, 400, "bad_request",
                    "malformed HTTP request: " + ec.message());
    if (n == 0) return Step::more;
  }
}

RequestReader::Step RequestReader::check_header() {
  // Beast measures the request line and the fields apart when they arrive together: the
  // limit is held here on the whole header, however it arrived.
  if (header_bytes_ > limits_.header_limit)
    return refuse(
        Refusal::header_limit, 431, "header_too_large",
        "the request line and headers are over " + std::to_string(limits_.header_limit) + " bytes");
  const auto& h = parser_->p.get();
  header_fields_ = static_cast<size_t>(std::distance(h.begin(), h.end()));
  keep_alive_ = h.keep_alive();
  // Two of these and a proxy in front may have read one while segx reads the other.
  for (const bhttp::field one : {bhttp::field::authorization, bhttp::field::host}) {
    if (h.count(one) > 1)
      return refuse(Refusal::malformed, 400, "bad_request",
                    "more than one " + std::string(sv(bhttp::to_string(one))) + " header");
  }
  for (const auto& f : boost::make_iterator_range(h.equal_range(bhttp::field::content_encoding))) {
    if (std::string bad = first_other(sv(f.value()), "identity"); !bad.empty())
      return refuse(Refusal::content_encoding, 415, "unsupported_media_type",
                    "Content-Encoding '" + bad + "' is not accepted: send the body uncompressed");
  }
  std::string codings;
  for (const auto& f : boost::make_iterator_range(h.equal_range(bhttp::field::transfer_encoding)))
    codings += std::string(codings.empty() ? "" : ",") + std::string(sv(f.value()));
  if (!codings.empty()) {
    // RFC 9112 6.1: without chunked last, the body's length cannot be known.
    std::string_view last = codings;
    if (const size_t comma = last.rfind(','); comma != std::string_view::npos)
      last = last.substr(comma + 1);
    if (!iequals(trim(last), "chunked"))
      return refuse(Refusal::malformed, 400, "bad_request",
                    "Transfer-Encoding '" + codings + "' does not end with chunked");
    if (std::string bad = first_other(codings, "chunked"); !bad.empty())
      return refuse(Refusal::transfer_encoding, 501, "not_implemented",
                    "Transfer-Encoding '" + bad + "' is not supported (only chunked)");
  }
  return parser_->p.is_done() ? Step::complete : Step::header;
}

bool RequestReader::header_complete() const {
  return parser_->p.is_header_done();
}

bool RequestReader::expects_continue() const {
  const auto& p = parser_->p;
  return p.is_header_done() && !p.is_done() && p.get().version() >= 11 &&
         iequals(sv(p.get()[bhttp::field::expect]), "100-continue");
}

Incoming RequestReader::take() {
  auto message = parser_->p.release();
  Incoming in;
  Request& req = in.request;
  req.method = std::string(sv(message.method_string()));
  req.target = std::string(sv(message.target()));
  Target t = parse_target(req.target);
  req.path = std::move(t.path);
  req.query = std::move(t.query);
  // The fields keep their order of arrival: the header's first, then any trailer's.
  size_t n = 0;
  for (const auto& f : message) {
    if (n++ == header_fields_) break;
    req.headers.emplace_back(std::string(sv(f.name_string())), std::string(sv(f.value())));
  }
  req.body = std::move(message.body());
  in.version = message.version() == 10 ? 10 : 11;
  in.keep_alive = keep_alive_;
  in.head = message.method() == bhttp::verb::head;
  return in;
}

}  // namespace segx::http
