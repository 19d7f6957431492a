#include "http/target.hpp"

namespace segx::http {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_decode(std::string_view text, bool plus_is_space, bool keep_slash) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      const int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
      if (hi >= 0 && lo >= 0 && !(keep_slash && hi * 16 + lo == '/')) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

Target parse_target(std::string_view target) {
  Target t;
  const size_t q = target.find('?');
  // "%2F" is a slash inside a segment, not between two: kept encoded, so that
  // "/v1/lots%2F1" is no route rather than "/v1/lots/1" (a proxy's rule for the one would
  // not hold for the other).
  t.path = percent_decode(target.substr(0, q), false, true);
  if (q == std::string_view::npos) return t;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    if (key.empty()) continue;
    t.query.emplace(percent_decode(key, true), eq == std::string_view::npos
                                                   ? std::string{}
                                                   : percent_decode(pair.substr(eq + 1), true));
  }
  return t;
}

}  // namespace segx::http
