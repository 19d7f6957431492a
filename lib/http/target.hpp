#pragma once
// The request target of an HTTP/1.1 request line ("/v1/lots?state=open") split into the
// decoded path and query parameters, the way segx's routes read them. Pure functions: no
// network, fuzzed with the rest of the request parsing (tests/fuzz/http_fuzz.cpp).

#include <map>
#include <string>
#include <string_view>

namespace segx::http {

/// "%41" -> "A"; with `plus_is_space`, "+" -> " " (query strings). A "%" not followed by two
/// hex digits is kept as it is. The result may hold any byte, NUL included. With
/// `keep_slash`, "%2F" stays as it is (a path: it does not split a segment in two).
std::string percent_decode(std::string_view text, bool plus_is_space, bool keep_slash = false);

/// A target split at the first "?": the path percent-decoded ("+" and "%2F" kept), and each
/// "&"-separated "key=value" of the query decoded with "+" as a space. A parameter without
/// "=" has an empty value; one with an empty key is skipped; a key may repeat.
struct Target {
  std::string path;
  std::multimap<std::string, std::string> query;
};
Target parse_target(std::string_view target);

}  // namespace segx::http
