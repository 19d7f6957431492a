#include "config/units.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <initializer_list>
#include <limits>

namespace segx::config {
namespace {

// Reads a run of decimal digits at the front of text; refuses overflow.
bool take_uint(std::string_view& text, uint64_t& out) {
  size_t n = 0;
  while (n < text.size() && std::isdigit(static_cast<unsigned char>(text[n])))
    ++n;
  if (n == 0) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + n, out);
  if (ec != std::errc() || ptr != text.data() + n) return false;
  text.remove_prefix(n);
  return true;
}

bool parse_whole_uint(std::string_view text, uint64_t& out) {
  return take_uint(text, out) && text.empty();
}

std::string quoted(std::string_view s) {
  return "'" + std::string(s) + "'";
}

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
  const std::string expected =
      "expected a duration with a unit, such as 250ms, 5s, 1m30s or 14d (units ns, us, ms, s, "
      "m, h, d), got " +
      quoted(text);
  if (text.empty()) return Error{expected};
  struct Unit {
    std::string_view name;
    uint64_t ns;
  };
  // Longest names first so "ms" is not read as "m" followed by junk.
  static constexpr Unit units[] = {{"ns", 1},
                                   {"us", 1'000},
                                   {"ms", 1'000'000},
                                   {"s", 1'000'000'000},
                                   {"m", 60'000'000'000},
                                   {"h", 3'600'000'000'000},
                                   {"d", 86'400'000'000'000}};
  uint64_t total = 0;
  while (!text.empty()) {
    uint64_t n = 0;
    if (!take_uint(text, n)) return Error{expected};
    const Unit* unit = nullptr;
    for (const Unit& u : units) {
      if (text.starts_with(u.name) &&
          (text.size() == u.name.size() ||
           std::isdigit(static_cast<unsigned char>(text[u.name.size()])))) {
        unit = &u;
        break;
      }
    }
    if (unit == nullptr) return Error{expected};
    text.remove_prefix(unit->name.size());
    constexpr uint64_t max_ns = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (n > max_ns / unit->ns || total > max_ns - n * unit->ns) {
      return Error{"duration is too long"};
    }
    total += n * unit->ns;
  }
  return Duration(static_cast<int64_t>(total));
}

std::string format_duration(Duration d) {
  const int64_t ns = d.count();
  struct Unit {
    const char* name;
    int64_t ns;
  };
  static constexpr Unit units[] = {{"d", 86'400'000'000'000}, {"h", 3'600'000'000'000},
                                   {"m", 60'000'000'000},     {"s", 1'000'000'000},
                                   {"ms", 1'000'000},         {"us", 1'000}};
  if (ns == 0) return "0s";
  for (const Unit& u : units) {
    if (ns % u.ns == 0) return std::to_string(ns / u.ns) + u.name;
  }
  return std::to_string(ns) + "ns";
}

// An integer followed by one of the units (a factor each); `expected` says what was meant.
namespace {

struct Unit {
  std::string_view name;
  uint64_t factor;
};

Result<uint64_t> parse_scaled(std::string_view text, std::initializer_list<Unit> units,
                              const std::string& expected, const char* too_large) {
  uint64_t n = 0;
  std::string_view rest = text;
  if (!take_uint(rest, n)) return Error{expected};
  for (const Unit& u : units) {
    if (rest == u.name) {
      if (n > std::numeric_limits<uint64_t>::max() / u.factor) return Error{too_large};
      return n * u.factor;
    }
  }
  return Error{expected};
}

}  // namespace

Result<uint64_t> parse_size(std::string_view text) {
  return parse_scaled(
      text,
      {{"", 1},
       {"B", 1},
       {"KB", 1'000},
       {"MB", 1'000'000},
       {"GB", 1'000'000'000},
       {"TB", 1'000'000'000'000},
       {"KiB", 1ull << 10},
       {"MiB", 1ull << 20},
       {"GiB", 1ull << 30},
       {"TiB", 1ull << 40}},
      "expected a size in bytes, such as 1500, 64KiB, 16MiB or 1GB, got " + quoted(text),
      "size is too large");
}

Result<uint64_t> parse_rate(std::string_view text) {
  return parse_scaled(text,
                      {{"bit/s", 1},
                       {"bps", 1},
                       {"kbit/s", 1'000},
                       {"kbps", 1'000},
                       {"Mbit/s", 1'000'000},
                       {"Mbps", 1'000'000},
                       {"Gbit/s", 1'000'000'000},
                       {"Gbps", 1'000'000'000},
                       {"Tbit/s", 1'000'000'000'000},
                       {"Tbps", 1'000'000'000'000}},
                      "expected a rate such as 500kbit/s, 10Mbit/s or 1Gbit/s, got " + quoted(text),
                      "rate is too large");
}

std::string format_rate(uint64_t bps) {
  static constexpr std::pair<uint64_t, const char*> units[] = {{1'000'000'000'000, "Tbit/s"},
                                                               {1'000'000'000, "Gbit/s"},
                                                               {1'000'000, "Mbit/s"},
                                                               {1'000, "kbit/s"}};
  for (const auto& [factor, name] : units) {
    if (bps != 0 && bps % factor == 0) return std::to_string(bps / factor) + name;
  }
  return std::to_string(bps) + "bit/s";
}

Result<int64_t> parse_timestamp(std::string_view text) {
  const std::string expected =
      "expected an RFC 3339 time such as 2026-11-26T12:00:00Z, got " + quoted(text);
  const std::string s(text);
  int year, mon, day, hour, min, sec, used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &mon, &day, &hour, &min, &sec,
                  &used) != 6 ||
      used != 19) {
    return Error{expected};
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) {
    return Error{expected};
  }
  std::string_view rest = std::string_view(s).substr(19);
  int64_t frac_ns = 0;
  if (rest.starts_with('.')) {
    rest.remove_prefix(1);
    int64_t scale = 100'000'000;
    size_t digits = 0;
    while (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest[0]))) {
      if (digits++ < 9) frac_ns += (rest[0] - '0') * scale, scale /= 10;
      rest.remove_prefix(1);
    }
    if (digits == 0) return Error{expected};
  }
  int offset_s = 0;
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = 0, om = 0;
    if (std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &oh, &om) != 2 || oh > 23 ||
        om > 59) {
      return Error{expected};
    }
    offset_s = (rest[0] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
  } else {
    return Error{expected};
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  const int64_t epoch = static_cast<int64_t>(timegm(&tm)) - offset_s;
  return epoch * 1'000'000'000 + frac_ns;
}

Result<IpAddress> parse_ip_address(std::string_view text) {
  const std::string s(text);
  IpAddress a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = 4;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = 6;
    return a;
  }
  return Error{"expected an IPv4 or IPv6 address, got " + quoted(text)};
}

Result<IpPrefix> parse_ip_prefix(std::string_view text) {
  const size_t slash = text.find('/');
  auto addr = parse_ip_address(text.substr(0, slash));
  if (!addr) {
    return Error{"expected an IP address or prefix such as 10.0.0.0/8 or 2001:db8::/32, got " +
                 quoted(text)};
  }
  IpPrefix p{addr.value(), static_cast<uint8_t>(addr.value().family == 4 ? 32 : 128)};
  const unsigned max_len = p.length;
  if (slash != std::string_view::npos) {
    uint64_t len = 0;
    if (!parse_whole_uint(text.substr(slash + 1), len) || len > max_len) {
      return Error{"prefix length must be 0.." + std::to_string(max_len) + ", got " + quoted(text)};
    }
    p.length = static_cast<uint8_t>(len);
  }
  IpPrefix masked = p;
  for (unsigned bit = p.length; bit < max_len; ++bit) {
    masked.address.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  if (masked.address != p.address) {
    return Error{quoted(text) + " has host bits set; did you mean " + format_prefix(masked) + "?"};
  }
  return p;
}

bool prefix_contains(const IpPrefix& outer, const IpPrefix& inner) {
  if (outer.address.family != inner.address.family || outer.length > inner.length) return false;
  const unsigned full = outer.length / 8, rest = outer.length % 8;
  for (unsigned i = 0; i < full; ++i)
    if (outer.address.bytes[i] != inner.address.bytes[i]) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (outer.address.bytes[full] & mask) == (inner.address.bytes[full] & mask);
}

std::string format_ip(const IpAddress& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(a.family == 4 ? AF_INET : AF_INET6, a.bytes.data(), buf, sizeof buf);
  return buf;
}

std::string format_prefix(const IpPrefix& p) {
  return format_ip(p.address) + "/" + std::to_string(p.length);
}

Result<MacAddress> parse_mac(std::string_view text) {
  MacAddress m{};
  const std::string expected =
      "expected a MAC address such as 02:00:5e:10:00:01, got " + quoted(text);
  if (text.size() != 17) return Error{expected};
  for (size_t i = 0; i < 6; ++i) {
    const std::string_view byte = text.substr(i * 3, 2);
    if (i < 5 && text[i * 3 + 2] != ':' && text[i * 3 + 2] != '-') return Error{expected};
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(byte.data(), byte.data() + 2, v, 16);
    if (ec != std::errc() || ptr != byte.data() + 2) return Error{expected};
    m[i] = static_cast<uint8_t>(v);
  }
  return m;
}

std::string format_mac(const MacAddress& m) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                m[5]);
  return buf;
}

Result<std::vector<unsigned>> parse_id_list(std::string_view text, unsigned max_id) {
  const std::string expected = "expected a list of ids such as 0-3,8 (each below " +
                               std::to_string(max_id) + "), got " + quoted(text);
  std::vector<unsigned> ids;
  while (true) {
    const size_t comma = text.find(',');
    auto range = parse_range(text.substr(0, comma), max_id - 1);
    if (!range) return Error{expected};
    for (uint32_t id = range.value().lo; id <= range.value().hi; ++id)
      ids.push_back(id);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  std::sort(ids.begin(), ids.end());
  if (std::adjacent_find(ids.begin(), ids.end()) != ids.end()) {
    return Error{"id list names an id twice"};
  }
  return ids;
}

Result<std::string> parse_pci_address(std::string_view text) {
  const std::string expected =
      "expected a PCI address such as 0000:3b:00.0 or 3b:00.0, got " + quoted(text);
  unsigned domain = 0, bus = 0, dev = 0, fn = 0;
  const std::string s(text);
  int used = 0;
  if (std::sscanf(s.c_str(), "%4x:%2x:%2x.%1x%n", &domain, &bus, &dev, &fn, &used) == 4 &&
      static_cast<size_t>(used) == s.size() && s.size() == 12) {
  } else if (std::sscanf(s.c_str(), "%2x:%2x.%1x%n", &bus, &dev, &fn, &used) == 3 &&
             static_cast<size_t>(used) == s.size() && s.size() == 7) {
    domain = 0;
  } else {
    return Error{expected};
  }
  if (dev > 0x1f || fn > 7) return Error{expected};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", domain, bus, dev, fn);
  return std::string(buf);
}

Result<Endpoint> parse_endpoint(std::string_view text) {
  const std::string expected =
      "expected host:port such as 127.0.0.1:8080, [::1]:8080 or :8080, got " + quoted(text);
  Endpoint e;
  std::string_view port;
  if (text.starts_with('[')) {
    const size_t close = text.find("]:");
    if (close == std::string_view::npos) return Error{expected};
    e.host = std::string(text.substr(1, close - 1));
    if (!parse_ip_address(e.host) || parse_ip_address(e.host).value().family != 6) {
      return Error{expected};
    }
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return Error{expected};
    e.host = std::string(text.substr(0, colon));
    if (e.host.find(':') != std::string::npos) return Error{expected};  // IPv6 needs brackets
    port = text.substr(colon + 1);
  }
  if (e.host.empty()) e.host = "0.0.0.0";
  uint64_t p = 0;
  if (!parse_whole_uint(port, p) || p > 65535) return Error{expected};
  e.port = static_cast<uint16_t>(p);
  return e;
}

Result<std::string> parse_phone(std::string_view text) {
  const bool digits = text.size() >= 9 && text.size() <= 16 && text[0] == '+' &&
                      std::all_of(text.begin() + 1, text.end(), [](char c) {
                        return std::isdigit(static_cast<unsigned char>(c));
                      });
  if (!digits || text[1] == '0') {
    return Error{
        "expected an E.164 telephone number such as +15551230001 ('+' and 8 to 15 "
        "digits, no spaces), got " +
        quoted(text)};
  }
  return std::string(text);
}

Result<Range> parse_range(std::string_view text, uint32_t max) {
  const std::string expected = "expected a value or a range lo-hi within 0.." +
                               std::to_string(max) + ", got " + quoted(text);
  const size_t dash = text.find('-');
  uint64_t lo = 0, hi = 0;
  if (!parse_whole_uint(text.substr(0, dash), lo)) return Error{expected};
  hi = lo;
  if (dash != std::string_view::npos && !parse_whole_uint(text.substr(dash + 1), hi)) {
    return Error{expected};
  }
  if (lo > max || hi > max || lo > hi) return Error{expected};
  return Range{static_cast<uint32_t>(lo), static_cast<uint32_t>(hi)};
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace segx::config
