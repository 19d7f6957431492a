#pragma once
// Parsers for the value syntaxes used in segx configuration: durations ("250ms"), sizes
// ("64KiB"), IP addresses and prefixes, MAC addresses, lcore lists ("0-3,8"), PCI
// addresses, listen endpoints, telephone numbers. Each returns the value or a message
// that says what was expected; none throws.

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace segx::config {

using Duration = std::chrono::nanoseconds;

/// Parses a duration: one or more <integer><unit> groups, units ns, us, ms, s, m, h, d
/// ("250ms", "1m30s"). A bare number is refused: the unit must be explicit.
Result<Duration> parse_duration(std::string_view text);
/// Formats a duration in its largest exact unit ("1500ms", "2s", "14d").
std::string format_duration(Duration d);

/// Parses a byte size: an integer with an optional unit B, KB, MB, GB, TB (powers of 1000)
/// or KiB, MiB, GiB, TiB (powers of 1024). "64KiB" is 65536; "1500" is 1500 bytes.
Result<uint64_t> parse_size(std::string_view text);

/// Parses a data rate in bits per second: an integer with unit bit/s, kbit/s, Mbit/s,
/// Gbit/s (powers of 1000; "bps", "kbps", "Mbps", "Gbps" are accepted too). "10Mbit/s" is
/// 10,000,000.
Result<uint64_t> parse_rate(std::string_view text);
/// Formats bits per second in the largest exact unit ("10Mbit/s").
std::string format_rate(uint64_t bits_per_second);

/// Parses an RFC 3339 time ("2026-11-26T12:00:00Z", "2026-11-26T13:00:00.5+01:00") to
/// nanoseconds since the Unix epoch.
Result<int64_t> parse_timestamp(std::string_view text);

/// An IPv4 or IPv6 address in network byte order (IPv4 in the first four bytes).
struct IpAddress {
  uint8_t family = 0;  ///< 4 or 6
  std::array<uint8_t, 16> bytes{};
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

/// An address prefix; host bits are zero.
struct IpPrefix {
  IpAddress address;
  uint8_t length = 0;  ///< 0..32 for IPv4, 0..128 for IPv6
  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
};

/// Parses "192.0.2.1" or "2001:db8::1".
Result<IpAddress> parse_ip_address(std::string_view text);
/// Parses "10.0.0.0/8", "2001:db8::/32", or a plain address (a /32 or /128 prefix).
/// Host bits set below the length are an error that names the intended prefix.
Result<IpPrefix> parse_ip_prefix(std::string_view text);
std::string format_ip(const IpAddress& a);
/// True when every address of `inner` is in `outer` (same family, `outer` no longer).
bool prefix_contains(const IpPrefix& outer, const IpPrefix& inner);
/// True when the two prefixes share an address: one contains the other.
inline bool prefixes_overlap(const IpPrefix& a, const IpPrefix& b) {
  return prefix_contains(a, b) || prefix_contains(b, a);
}
std::string format_prefix(const IpPrefix& p);

/// A 48-bit Ethernet address.
using MacAddress = std::array<uint8_t, 6>;
/// Parses "02:00:5e:10:00:01" (colons or dashes, any case).
Result<MacAddress> parse_mac(std::string_view text);
std::string format_mac(const MacAddress& m);

/// Parses a CPU/lcore list: "0-3,8,10-11" into sorted, unique ids below max_id.
Result<std::vector<unsigned>> parse_id_list(std::string_view text, unsigned max_id);

/// Normalizes a PCI address ("3b:00.0" or "0000:3b:00.0") to "0000:3b:00.0".
Result<std::string> parse_pci_address(std::string_view text);

/// A TCP listen endpoint: host (IPv4, IPv6 without brackets, or a name) and port.
struct Endpoint {
  std::string host;
  uint16_t port = 0;
};
/// Parses "127.0.0.1:8080", "[::1]:8080", "localhost:8080", ":8080" (all addresses).
Result<Endpoint> parse_endpoint(std::string_view text);

/// Validates an E.164 telephone number ("+15551230001": '+', then 8 to 15 digits).
Result<std::string> parse_phone(std::string_view text);

/// An inclusive range of unsigned values, e.g. ports "1024-65535" or one value "80".
struct Range {
  uint32_t lo = 0;
  uint32_t hi = 0;
  friend bool operator==(const Range&, const Range&) = default;
};
/// Parses "80" or "1024-65535" with both ends in [0, max] and lo <= hi.
Result<Range> parse_range(std::string_view text, uint32_t max);

/// Edit distance, for "did you mean ...?" suggestions.
size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace segx::config
