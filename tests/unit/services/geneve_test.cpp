// The subcontracting wire format (lib/dataplane/geneve.cpp): messages round-trip through
// encode and decode over IPv4 and IPv6, the outer headers are what the data plane's parser
// and an independent checksum expect, each decode error comes from a message with exactly
// that problem, and no truncation or mutation makes the decoder read past its input.

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "dataplane/geneve.hpp"
#include "dataplane/packet.hpp"

namespace segx::dataplane::geneve {
namespace {

using Bytes = std::vector<uint8_t>;

Endpoints endpoints(uint8_t family) {
  Endpoints e;
  e.family = family;
  e.src_mac = {0x02, 0, 0, 0, 0, 0x0a};
  e.dst_mac = {0x02, 0, 0, 0, 0, 0x0b};
  if (family == 4) {
    e.src = {10, 99, 0, 1};
    e.dst = {10, 99, 0, 2};
  } else {
    e.src = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    e.dst = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  }
  e.src_port = 49152;
  return e;
}

Message sample(bool reply, Kind kind) {
  Message m;
  m.reply = reply;
  m.kind = kind;
  m.flags = reply ? flag_dropped : 0;
  m.segment = 0x0100000000000007ull;
  m.first_seq = 12;
  m.index = kind == Kind::end ? 4 : 3;
  m.service = service_id("dpi");
  m.handle = (1u << 24) | 77;
  m.slot = kind == Kind::end ? no_slot : 4095;
  m.generation = 0xdeadbeef;
  return m;
}

// A whole message: outer headers, then the payload.
Bytes message(uint8_t family, const Message& m, const Bytes& payload) {
  Bytes out(outer_bytes(family) + payload.size());
  encode(out.data(), endpoints(family), m, static_cast<uint32_t>(payload.size()));
  // memcpy wants valid pointers even for no bytes, and an empty vector's data() may be null.
  if (!payload.empty())
    std::memcpy(out.data() + outer_bytes(family), payload.data(), payload.size());
  set_udp_checksum(out.data(), static_cast<uint32_t>(out.size()));
  return out;
}

Bytes inner_frame() {
  Bytes f(60, 0);
  for (size_t i = 0; i < f.size(); ++i)
    f[i] = static_cast<uint8_t>(i * 7);
  return f;
}

uint16_t ones_sum(const uint8_t* p, size_t len, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < len; i += 2)
    sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += static_cast<uint32_t>(p[len - 1] << 8);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// The UDP payload of a whole message (where decode starts).
const uint8_t* udp_payload(const Bytes& frame, uint8_t family) {
  return frame.data() + 14 + (family == 6 ? 40 : 20) + 8;
}

TEST(ServicesGeneve, RoundTripsOverBothFamilies) {
  for (uint8_t family : {4, 6}) {
    for (bool reply : {false, true}) {
      for (Kind kind : {Kind::packet, Kind::end}) {
        const Message m = sample(reply, kind);
        const Bytes payload = kind == Kind::packet ? inner_frame() : Bytes{'{', '}'};
        const Bytes frame = message(family, m, payload);
        const uint32_t udp_len =
            static_cast<uint32_t>(frame.size()) - 14 - (family == 6 ? 40 : 20) - 8;
        Decoded d;
        ASSERT_EQ(decode(udp_payload(frame, family), udp_len, d), Error::none);
        EXPECT_EQ(d.message, m);
        EXPECT_EQ(d.payload_len, payload.size());
        EXPECT_EQ(d.payload_offset, geneve_bytes);
        EXPECT_EQ(0, std::memcmp(udp_payload(frame, family) + d.payload_offset, payload.data(),
                                 payload.size()));
      }
    }
  }
}

TEST(ServicesGeneve, OuterHeadersParseAsUdpToPort6081WithValidChecksums) {
  for (uint8_t family : {4, 6}) {
    const Bytes frame = message(family, sample(false, Kind::packet), inner_frame());
    PacketInfo info;
    ASSERT_EQ(parse_frame(frame.data(), static_cast<uint32_t>(frame.size()),
                          static_cast<uint32_t>(frame.size()), info, ParseOptions{}),
              ParseError::none);
    EXPECT_EQ(info.family, family);
    EXPECT_EQ(info.proto, 17);
    EXPECT_EQ(info.dst_port, udp_port);
    EXPECT_EQ(info.src_port, 49152);
    EXPECT_EQ(info.l4_payload_offset, 14u + (family == 6 ? 40 : 20) + 8);
    EXPECT_EQ(info.l4_payload_len, geneve_bytes + inner_frame().size());
    EXPECT_EQ(0, std::memcmp(info.src.data(), endpoints(family).src.data(), family == 4 ? 4 : 16));
    if (family == 4) {
      EXPECT_EQ(ones_sum(frame.data() + 14, 20), 0xffff) << "IPv4 header checksum";
    } else {
      // Pseudo-header (addresses, length, next header) plus the UDP message sums to ~0.
      const uint8_t* ip = frame.data() + 14;
      const size_t udp_len = frame.size() - 54;
      uint32_t sum = ones_sum(ip + 8, 32);
      sum += static_cast<uint32_t>(udp_len) + 17;
      EXPECT_EQ(ones_sum(ip + 40, udp_len, sum), 0xffff) << "UDP checksum over IPv6";
      EXPECT_NE(frame[54 + 6] | frame[54 + 7], 0);
    }
  }
}

TEST(ServicesGeneve, TheCriticalBitIsSetSoStrangersDropTheMessage) {
  const Bytes frame = message(4, sample(false, Kind::packet), inner_frame());
  const uint8_t* g = udp_payload(frame, 4);
  EXPECT_EQ(g[1] & 0x40, 0x40) << "C bit";
  EXPECT_EQ(g[8], 0xFF);
  EXPECT_EQ(g[9], 0x53);
  EXPECT_EQ(g[10], type_request);
  EXPECT_EQ(g[10] & 0x80, 0x80);
  EXPECT_EQ(g[11], option_data_bytes / 4);
  EXPECT_EQ(g[2] << 8 | g[3], protocol_teb);
}

TEST(ServicesGeneve, ServiceIdIsCrc32c) {
  EXPECT_EQ(service_id("123456789"), 0xe3069283u);  // the standard check value
  EXPECT_NE(service_id("dpi"), service_id("fingerprint"));
}

// A GENEVE header with the given options (already encoded TLVs) and payload.
Bytes geneve(const Bytes& options, const Bytes& payload, uint8_t first = 0, uint8_t second = 0x40,
             uint16_t protocol = protocol_teb) {
  Bytes g{static_cast<uint8_t>(first | options.size() / 4),
          second,
          static_cast<uint8_t>(protocol >> 8),
          static_cast<uint8_t>(protocol),
          0,
          0,
          0,
          0};
  g.insert(g.end(), options.begin(), options.end());
  g.insert(g.end(), payload.begin(), payload.end());
  return g;
}

// The segx option as encode() writes it.
Bytes segx_option(const Message& m) {
  const Bytes frame = message(4, m, {});
  const uint8_t* g = udp_payload(frame, 4);
  return Bytes(g + 8, g + geneve_bytes);
}

Error decode_bytes(const Bytes& g) {
  Decoded d;
  return decode(g.data(), static_cast<uint32_t>(g.size()), d);
}

TEST(ServicesGeneve, EachErrorComesFromExactlyItsProblem) {
  const Message m = sample(false, Kind::packet);
  const Bytes opt = segx_option(m);
  const Bytes inner = inner_frame();
  EXPECT_EQ(decode_bytes(geneve(opt, inner)), Error::none);
  EXPECT_EQ(decode_bytes(Bytes{0, 0x40, 0x65}), Error::truncated);
  EXPECT_EQ(decode_bytes(geneve(opt, inner, 0x40)), Error::bad_version);
  EXPECT_EQ(decode_bytes(geneve(opt, inner, 0, 0xc0)), Error::control);
  EXPECT_EQ(decode_bytes(geneve(opt, inner, 0, 0x40, 0x0800)), Error::bad_protocol);
  {
    Bytes g = geneve(opt, {});
    g.resize(20);  // options length says 40 bytes
    EXPECT_EQ(decode_bytes(g), Error::truncated);
  }
  {
    Bytes bad = opt;
    bad[3] = 31;  // option says 124 bytes of data
    EXPECT_EQ(decode_bytes(geneve(bad, inner)), Error::option_truncated);
  }
  EXPECT_EQ(decode_bytes(geneve(Bytes{0x01, 0x02, 0x83, 0}, inner)), Error::unknown_critical);
  EXPECT_EQ(decode_bytes(geneve(Bytes{0x01, 0x02, 0x03, 0}, inner)), Error::no_option);
  EXPECT_EQ(decode_bytes(geneve({}, inner)), Error::no_option);
  {
    Bytes two = opt;
    two.insert(two.end(), opt.begin(), opt.end());
    EXPECT_EQ(decode_bytes(geneve(two, inner)), Error::duplicate_option);
  }
  {
    Bytes short_opt(opt.begin(), opt.begin() + 4 + 32);
    short_opt[3] = 8;
    EXPECT_EQ(decode_bytes(geneve(short_opt, inner)), Error::bad_option_length);
  }
  {
    Bytes bad = opt;
    bad[4 + 32] = 3;
    EXPECT_EQ(decode_bytes(geneve(bad, inner)), Error::bad_kind);
  }
  EXPECT_EQ(decode_bytes(geneve(opt, Bytes(13, 0))), Error::inner_truncated);
  // An end message needs no inner frame, nor does a goodbye.
  EXPECT_EQ(decode_bytes(geneve(segx_option(sample(true, Kind::end)), {})), Error::none);
  EXPECT_EQ(decode_bytes(geneve(segx_option(sample(false, Kind::goodbye)), {})), Error::none);
}

TEST(ServicesGeneve, UnknownOptionsWithoutTheCriticalBitAreSkipped) {
  const Message m = sample(true, Kind::packet);
  Bytes options{0x01, 0x02, 0x03, 1, 0xaa, 0xbb, 0xcc, 0xdd};  // 4 bytes of data
  const Bytes opt = segx_option(m);
  options.insert(options.end(), opt.begin(), opt.end());
  const Bytes g = geneve(options, inner_frame());
  Decoded d;
  ASSERT_EQ(decode(g.data(), static_cast<uint32_t>(g.size()), d), Error::none);
  EXPECT_EQ(d.message, m);
  EXPECT_EQ(d.payload_offset, 8u + options.size());
}

TEST(ServicesGeneve, TruncationsAndMutationsNeverReadPastTheInput) {
  const Bytes g = geneve(segx_option(sample(false, Kind::packet)), inner_frame());
  std::set<Error> seen;
  // Every truncation, each in a buffer of exactly its size (heap: a read past it is a
  // bug sanitizers and guard pages see).
  for (size_t n = 0; n < g.size(); ++n) {
    auto copy = std::make_unique<uint8_t[]>(n == 0 ? 1 : n);
    std::memcpy(copy.get(), g.data(), n);
    Decoded d;
    const Error e = decode(copy.get(), static_cast<uint32_t>(n), d);
    seen.insert(e);
    if (n < geneve_bytes + 14) {
      EXPECT_NE(e, Error::none) << n;
    }
  }
  EXPECT_GE(seen.size(), 3u);
  std::mt19937 rng(2024);
  size_t accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    Bytes m = g;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k)
      m[rng() % geneve_bytes] = static_cast<uint8_t>(rng());
    m.resize(rng() % (m.size() + 1));
    auto copy = std::make_unique<uint8_t[]>(m.size() + 1);
    std::memcpy(copy.get(), m.data(), m.size());
    Decoded d;
    if (decode(copy.get(), static_cast<uint32_t>(m.size()), d) == Error::none) {
      ++accepted;
      EXPECT_LE(d.payload_offset + d.payload_len, m.size());
    }
  }
  EXPECT_LT(accepted, 20000u);
}

}  // namespace
}  // namespace segx::dataplane::geneve
