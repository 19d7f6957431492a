// anonymize: rewrites IPv4 and IPv6 source and destination addresses with Crypto-PAn, so
// that the output stream keeps its subnet structure but not who was talking. Checksums
// stay valid: the IPv4 header checksum and the TCP, UDP and ICMPv6 checksums (which cover
// the addresses through the pseudo-header) are updated incrementally (RFC 1624), so a
// packet is not read twice. A segment is one flow, so the anonymized addresses of its first
// packet are kept in the segment's state and most packets cost no AES at all.

#include <arpa/inet.h>

#include <cstring>
#include <span>

#include "cryptopan.hpp"
#include "dataplane/service.hpp"
#include "options.hpp"
#include "payload.hpp"
#include "services_internal.hpp"

namespace segx::services {
namespace {

struct Options {
  std::array<uint8_t, CryptoPan::key_size> key{};
  bool source = true;
  bool destination = true;
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Options read(config::MapReader& m, const config::Config&) {
  Options o;
  if (auto key = m.require("key")) {
    if (auto text = key->as_string()) {
      std::string hex;
      bool ok = true;
      for (char c : *text) {
        if (c == ':' || c == ' ') continue;  // "00:11:..." and grouped forms read the same
        if (hex_digit(c) < 0) ok = false;
        hex += c;
      }
      if (!ok) {
        key->error("the key must be hex digits (32 bytes: 64 hex digits)");
      } else if (hex.size() != 2 * CryptoPan::key_size) {
        key->error(
            "the key must be 32 bytes (64 hex digits): a 16-byte AES-128 key followed by "
            "16 bytes of pad secret; got " +
            (hex.size() % 2 ? std::to_string(hex.size()) + " hex digits"
                            : std::to_string(hex.size() / 2) + " bytes"));
      } else {
        for (size_t i = 0; i < o.key.size(); ++i)
          o.key[i] = static_cast<uint8_t>(hex_digit(hex[2 * i]) << 4 | hex_digit(hex[2 * i + 1]));
      }
    }
  }
  std::string which = "both";
  m.read_choice("addresses", which, {"both", "source", "destination"});
  o.source = which != "destination";
  o.destination = which != "source";
  return o;
}

uint16_t load16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
void store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), over every 16-bit word that changed.
uint16_t adjust(uint16_t checksum, const uint8_t* before, const uint8_t* after, unsigned len) {
  uint32_t sum = static_cast<uint16_t>(~checksum);
  for (unsigned i = 0; i < len; i += 2) {
    sum += static_cast<uint16_t>(~load16(before + i));
    sum += load16(after + i);
  }
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

class Anonymize final : public dataplane::Service {
 public:
  struct State {
    uint8_t original[2][16];  // the first packet's source and destination
    uint8_t anonymized[2][16];
    uint32_t packets;
    uint32_t rewritten;
    uint32_t skipped;  // not IP, or headers beyond the first mbuf segment
    uint8_t family;    // of the cached pair; 0: nothing cached yet
  };

  Anonymize(Options o, std::unique_ptr<CryptoPan> pan) : o_(o), pan_(std::move(pan)) {}

  uint32_t state_size() const override { return sizeof(State); }

  void open(const dataplane::Segment&, void* state) override {
    static_cast<State*>(state)->packets = 0;
    static_cast<State*>(state)->rewritten = 0;
    static_cast<State*>(state)->skipped = 0;
    static_cast<State*>(state)->family = 0;
  }

  void process(const dataplane::Segment&, void* state, rte_mbuf* const* pkts, uint16_t n,
               uint8_t*) override {
    auto& s = *static_cast<State*>(state);
    for (uint16_t i = 0; i < n; ++i) {
      ++s.packets;
      dataplane::PacketInfo info;
      if (!parse_headers(pkts[i], info) || info.family == 0) {
        ++s.skipped;
        continue;
      }
      rewrite(s, rte_pktmbuf_mtod(pkts[i], uint8_t*), info);
      ++s.rewritten;
    }
  }

  void close(const dataplane::Segment&, void* state, dataplane::ResultWriter& out) override {
    const auto& s = *static_cast<const State*>(state);
    out.begin("anonymize");
    out.field("packets", uint64_t{s.packets});
    out.field("rewritten", uint64_t{s.rewritten});
    out.field("skipped", uint64_t{s.skipped});
    if (s.family != 0) {
      // The record's flow shows the addresses as received; these are what went out.
      char text[INET6_ADDRSTRLEN];
      const int af = s.family == 4 ? AF_INET : AF_INET6;
      inet_ntop(af, s.anonymized[0], text, sizeof text);
      out.field("src", std::string_view(text));
      inet_ntop(af, s.anonymized[1], text, sizeof text);
      out.field("dst", std::string_view(text));
    }
    out.end();
  }

 private:
  // The anonymized form of addr: from the segment's cache, or computed.
  void map(State& s, uint8_t family, const uint8_t* addr, uint8_t* out) {
    const unsigned len = family == 4 ? 4 : 16;
    if (s.family == family) {
      for (int k = 0; k < 2; ++k) {
        if (std::memcmp(s.original[k], addr, len) == 0) {
          std::memcpy(out, s.anonymized[k], len);
          return;
        }
      }
    }
    if (family == 4) {
      pan_->anonymize4(addr, out);
    } else {
      pan_->anonymize6(addr, out);
    }
  }

  void rewrite(State& s, uint8_t* frame, const dataplane::PacketInfo& info) {
    const uint8_t family = info.family;
    const unsigned len = family == 4 ? 4 : 16;
    uint8_t* ip = frame + info.l3_offset;
    uint8_t* addr[2] = {ip + (family == 4 ? 12 : 8), ip + (family == 4 ? 16 : 24)};
    uint8_t before[2][16], after[2][16];
    for (int k = 0; k < 2; ++k) {
      std::memcpy(before[k], addr[k], len);
      std::memcpy(after[k], addr[k], len);
      if (k == 0 ? o_.source : o_.destination) map(s, family, before[k], after[k]);
    }
    if (s.family == 0) {
      s.family = family;
      for (int k = 0; k < 2; ++k) {
        std::memcpy(s.original[k], before[k], len);
        std::memcpy(s.anonymized[k], after[k], len);
      }
    }
    for (int k = 0; k < 2; ++k)
      std::memcpy(addr[k], after[k], len);

    // Checksums over the addresses: the IPv4 header's, and the pseudo-header's in TCP, UDP
    // and ICMPv6 (not in non-first fragments, which carry no L4 header).
    const auto fix = [&](uint8_t* field) {
      uint16_t c = load16(field);
      for (int k = 0; k < 2; ++k)
        c = adjust(c, before[k], after[k], len);
      return c;
    };
    if (family == 4) store16(ip + 10, fix(ip + 10));
    if (info.l4_offset == 0) return;
    uint8_t* l4 = frame + info.l4_offset;
    switch (info.proto) {
      case 6:
        store16(l4 + 16, fix(l4 + 16));
        break;
      case 17: {
        const uint16_t old = load16(l4 + 6);
        if (family == 4 && old == 0) break;  // IPv4 UDP without a checksum
        const uint16_t c = fix(l4 + 6);
        store16(l4 + 6, c == 0 ? 0xffff : c);  // 0 means "none" in UDP
        break;
      }
      case 58:
        store16(l4 + 2, fix(l4 + 2));
        break;
      default:
        break;  // ICMP and SCTP checksums do not cover the addresses
    }
  }

  Options o_;
  std::unique_ptr<CryptoPan> pan_;
};

}  // namespace

dataplane::ServiceFactory anonymize_factory() {
  return {[](const config::ServiceConfig&, const config::Value& entry, const config::Config& c) {
            validate_entry(entry, c, read);
          },
          [](const config::ServiceConfig& s,
             const config::Config& c) -> Result<std::unique_ptr<dataplane::Service>> {
            auto o = read_options(s, c, read);
            if (!o) return Error{o.error()};
            auto pan =
                CryptoPan::create(std::span<const uint8_t, CryptoPan::key_size>(o.value().key));
            if (!pan) return Error{"anonymize: " + pan.error()};
            return std::unique_ptr<dataplane::Service>(
                new Anonymize(o.value(), std::move(pan).value()));
          }};
}

}  // namespace segx::services
