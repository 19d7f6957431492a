#include "dataplane/geneve.hpp"

#include <cstring>

namespace segx::dataplane::geneve {
namespace {

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}
void put64(uint8_t* p, uint64_t v) {
  put32(p, static_cast<uint32_t>(v >> 32));
  put32(p + 4, static_cast<uint32_t>(v));
}
uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t get32(const uint8_t* p) {
  return uint32_t{get16(p)} << 16 | get16(p + 2);
}
uint64_t get64(const uint8_t* p) {
  return uint64_t{get32(p)} << 32 | get32(p + 4);
}

// Ones' complement sum of 16-bit words (RFC 1071), not yet folded.
uint32_t sum16(const uint8_t* p, uint32_t len, uint32_t sum) {
  for (uint32_t i = 0; i + 1 < len; i += 2)
    sum += get16(p + i);
  if (len & 1) sum += uint32_t{p[len - 1]} << 8;
  return sum;
}

uint16_t fold(uint32_t sum) {
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace

void encode(uint8_t* out, const Endpoints& e, const Message& m, uint32_t payload_len) {
  const bool v6 = e.family == 6;
  uint8_t* p = out;
  std::memcpy(p, e.dst_mac.data(), 6);
  std::memcpy(p + 6, e.src_mac.data(), 6);
  put16(p + 12, v6 ? 0x86dd : 0x0800);
  p += 14;
  const uint32_t udp_len = 8 + geneve_bytes + payload_len;
  if (v6) {
    put32(p, 0x60000000);  // version 6, traffic class 0, flow label 0
    put16(p + 4, static_cast<uint16_t>(udp_len));
    p[6] = 17;  // UDP
    p[7] = 64;  // hop limit
    std::memcpy(p + 8, e.src.data(), 16);
    std::memcpy(p + 24, e.dst.data(), 16);
    p += 40;
  } else {
    p[0] = 0x45;
    p[1] = 0;
    put16(p + 2, static_cast<uint16_t>(20 + udp_len));
    put16(p + 4, 0);       // identification: never fragmented
    put16(p + 6, 0x4000);  // don't fragment
    p[8] = 64;             // TTL
    p[9] = 17;
    put16(p + 10, 0);
    std::memcpy(p + 12, e.src.data(), 4);
    std::memcpy(p + 16, e.dst.data(), 4);
    put16(p + 10, fold(sum16(p, 20, 0)));
    p += 20;
  }
  put16(p, e.src_port);
  put16(p + 2, udp_port);
  put16(p + 4, static_cast<uint16_t>(udp_len));
  put16(p + 6, 0);
  p += 8;
  // GENEVE: version 0, options length in 4-byte words, C bit (a critical option follows).
  p[0] = static_cast<uint8_t>((geneve_bytes - 8) / 4);
  p[1] = 0x40;
  put16(p + 2, protocol_teb);
  put32(p + 4, 0);  // VNI 0, reserved
  p += 8;
  put16(p, option_class);
  p[2] = m.reply ? type_reply : type_request;
  p[3] = static_cast<uint8_t>(option_data_bytes / 4);  // R bits 0, length in 4-byte words
  p += 4;
  put64(p, m.segment);
  put32(p + 8, m.first_seq);
  put32(p + 12, m.index);
  put32(p + 16, m.service);
  put32(p + 20, m.handle);
  put32(p + 24, m.slot);
  put32(p + 28, m.generation);
  p[32] = static_cast<uint8_t>(m.kind);
  p[33] = m.flags;
  put16(p + 34, 0);
}

void set_udp_checksum(uint8_t* frame, uint32_t len) {
  if (len < 14 + 40 + 8 || get16(frame + 12) != 0x86dd) return;
  uint8_t* ip = frame + 14;
  uint8_t* udp = ip + 40;
  const uint32_t udp_len = get16(ip + 4);
  if (udp_len < 8 || 14 + 40 + udp_len > len) return;
  put16(udp + 6, 0);
  // Pseudo-header: addresses, upper-layer length, next header.
  uint32_t sum = sum16(ip + 8, 32, 0);
  sum += udp_len;
  sum += 17;
  sum = sum16(udp, udp_len, sum);
  uint16_t c = fold(sum);
  put16(udp + 6, c == 0 ? 0xffff : c);  // 0 means "no checksum"; all ones is the same sum
}

std::string_view error_name(Error e) {
  switch (e) {
    case Error::none:
      return "none";
    case Error::truncated:
      return "truncated";
    case Error::bad_version:
      return "bad_version";
    case Error::control:
      return "control";
    case Error::bad_protocol:
      return "bad_protocol";
    case Error::option_truncated:
      return "option_truncated";
    case Error::unknown_critical:
      return "unknown_critical";
    case Error::no_option:
      return "no_option";
    case Error::duplicate_option:
      return "duplicate_option";
    case Error::bad_option_length:
      return "bad_option_length";
    case Error::bad_kind:
      return "bad_kind";
    case Error::inner_truncated:
      return "inner_truncated";
    case Error::count_:
      break;
  }
  return "unknown";
}

Error decode(const uint8_t* data, uint32_t len, Decoded& out) {
  if (len < 8) return Error::truncated;
  if (data[0] >> 6 != 0) return Error::bad_version;
  const uint32_t options = uint32_t{data[0] & 0x3fu} * 4;
  if (data[1] & 0x80) return Error::control;
  if (get16(data + 2) != protocol_teb) return Error::bad_protocol;
  if (8 + options > len) return Error::truncated;
  const uint8_t* opt = data + 8;
  const uint8_t* end = opt + options;
  const uint8_t* found = nullptr;
  uint8_t found_type = 0;
  while (opt < end) {
    if (end - opt < 4) return Error::option_truncated;
    const uint16_t cls = get16(opt);
    const uint8_t type = opt[2];
    const uint32_t data_len = uint32_t{opt[3] & 0x1fu} * 4;
    if (data_len > static_cast<uint32_t>(end - opt) - 4) return Error::option_truncated;
    if (cls == option_class && (type == type_request || type == type_reply)) {
      if (found != nullptr) return Error::duplicate_option;
      if (data_len != option_data_bytes) return Error::bad_option_length;
      found = opt + 4;
      found_type = type;
    } else if (type & 0x80) {
      return Error::unknown_critical;
    }
    opt += 4 + data_len;
  }
  if (found == nullptr) return Error::no_option;
  Message m;
  m.reply = found_type == type_reply;
  m.segment = get64(found);
  m.first_seq = get32(found + 8);
  m.index = get32(found + 12);
  m.service = get32(found + 16);
  m.handle = get32(found + 20);
  m.slot = get32(found + 24);
  m.generation = get32(found + 28);
  if (found[32] > static_cast<uint8_t>(Kind::goodbye)) return Error::bad_kind;
  m.kind = static_cast<Kind>(found[32]);
  m.flags = found[33];
  const uint32_t payload = 8 + options;
  if (m.kind == Kind::packet && len - payload < 14) return Error::inner_truncated;
  out.message = m;
  out.payload_offset = payload;
  out.payload_len = len - payload;
  return Error::none;
}

uint32_t service_id(std::string_view name) {
  // Bitwise CRC-32C: called at start-up only, so no table and no special instructions.
  uint32_t crc = 0xffffffff;
  for (const char ch : name) {
    crc ^= static_cast<uint8_t>(ch);
    for (int k = 0; k < 8; ++k)
      crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

}  // namespace segx::dataplane::geneve
