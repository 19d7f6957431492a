#pragma once
// Frames for service tests: Ethernet, IPv4 or IPv6, TCP/UDP/ICMPv6 with a payload and
// correct checksums, built byte by byte here (not by the code under test), and an
// independent checksum check.

#include <arpa/inet.h>
#include <rte_mbuf.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace segx::test {

inline uint32_t sum16(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2)
    sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
  return sum;
}
inline uint16_t fold(uint32_t sum) {
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

/// A frame's bytes with the offsets of its headers.
struct Frame {
  std::vector<uint8_t> bytes;
  size_t l3 = 14, l4 = 0;
  int family = 4;
  uint8_t proto = 0;
};

/// Builds Ethernet / IP / (TCP | UDP | ICMPv6 echo) / payload with valid checksums. With
/// udp_zero, an IPv4 UDP datagram carries checksum 0 (none).
inline Frame make_frame(const std::string& src, const std::string& dst, uint8_t proto,
                        const std::string& payload, bool udp_zero = false) {
  Frame f;
  uint8_t s[16] = {}, d[16] = {};
  f.family = inet_pton(AF_INET, src.c_str(), s) == 1 ? 4 : 6;
  if (f.family == 4) {
    inet_pton(AF_INET, dst.c_str(), d);
  } else {
    inet_pton(AF_INET6, src.c_str(), s);
    inet_pton(AF_INET6, dst.c_str(), d);
  }
  f.proto = proto;
  const size_t l4h = proto == 6 ? 20 : 8;
  const size_t l3h = f.family == 4 ? 20 : 40;
  const size_t l4len = l4h + payload.size();
  f.bytes.assign(14 + l3h + l4len, 0);
  uint8_t* b = f.bytes.data();
  const uint8_t mac[12] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1};
  std::memcpy(b, mac, 12);
  b[12] = f.family == 4 ? 0x08 : 0x86;
  b[13] = f.family == 4 ? 0x00 : 0xdd;
  uint8_t* ip = b + 14;
  if (f.family == 4) {
    ip[0] = 0x45;
    const size_t total = 20 + l4len;
    ip[2] = static_cast<uint8_t>(total >> 8);
    ip[3] = static_cast<uint8_t>(total);
    ip[8] = 64;
    ip[9] = proto;
    std::memcpy(ip + 12, s, 4);
    std::memcpy(ip + 16, d, 4);
    const uint16_t c = fold(sum16(ip, 20));
    ip[10] = static_cast<uint8_t>(c >> 8);
    ip[11] = static_cast<uint8_t>(c);
  } else {
    ip[0] = 0x60;
    ip[4] = static_cast<uint8_t>(l4len >> 8);
    ip[5] = static_cast<uint8_t>(l4len);
    ip[6] = proto;
    ip[7] = 64;
    std::memcpy(ip + 8, s, 16);
    std::memcpy(ip + 24, d, 16);
  }
  f.l3 = 14;
  f.l4 = 14 + l3h;
  uint8_t* l4 = b + f.l4;
  size_t csum_at = 0;
  if (proto == 6) {
    l4[0] = 0x9c;
    l4[1] = 0x40;
    l4[3] = 80;
    l4[12] = 0x50;
    l4[13] = 0x18;
    l4[14] = 0xff;
    csum_at = 16;
  } else if (proto == 17) {
    l4[0] = 0x9c;
    l4[1] = 0x41;
    l4[3] = 53;
    l4[4] = static_cast<uint8_t>(l4len >> 8);
    l4[5] = static_cast<uint8_t>(l4len);
    csum_at = 6;
  } else {  // ICMPv6 echo request
    l4[0] = 128;
    csum_at = 2;
  }
  std::memcpy(l4 + l4h, payload.data(), payload.size());
  if (!(proto == 17 && udp_zero)) {
    uint16_t c = 0;
    // Pseudo-header, then the L4 bytes with a zero checksum field.
    uint32_t sum = f.family == 4 ? sum16(ip + 12, 8) : sum16(ip + 8, 32);
    sum += proto + static_cast<uint32_t>(l4len);
    c = fold(sum16(l4, l4len, sum));
    if (proto == 17 && c == 0) c = 0xffff;
    l4[csum_at] = static_cast<uint8_t>(c >> 8);
    l4[csum_at + 1] = static_cast<uint8_t>(c);
  }
  return f;
}

/// True when the IPv4 header checksum (if IPv4) and the L4 checksum are valid.
inline bool checksums_valid(const Frame& f) {
  const uint8_t* ip = f.bytes.data() + f.l3;
  if (f.family == 4 && fold(sum16(ip, 20)) != 0) return false;
  const uint8_t* l4 = f.bytes.data() + f.l4;
  const size_t l4len = f.bytes.size() - f.l4;
  if (f.proto == 17 && f.family == 4 && l4[6] == 0 && l4[7] == 0) return true;
  uint32_t sum = f.family == 4 ? sum16(ip + 12, 8) : sum16(ip + 8, 32);
  sum += f.proto + static_cast<uint32_t>(l4len);
  return fold(sum16(l4, l4len, sum)) == 0;
}

/// An mbuf holding the frame; with `split` > 0 the frame is cut into a chain of two segments
/// after that many bytes.
inline rte_mbuf* to_mbuf(rte_mempool* pool, const std::vector<uint8_t>& bytes, size_t split = 0) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  const size_t first = split ? split : bytes.size();
  std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(first)), bytes.data(), first);
  if (split) {
    rte_mbuf* tail = rte_pktmbuf_alloc(pool);
    std::memcpy(rte_pktmbuf_append(tail, static_cast<uint16_t>(bytes.size() - split)),
                bytes.data() + split, bytes.size() - split);
    rte_pktmbuf_chain(m, tail);
  }
  return m;
}

/// The mbuf's bytes.
inline std::vector<uint8_t> from_mbuf(const rte_mbuf* m) {
  std::vector<uint8_t> out(rte_pktmbuf_pkt_len(m));
  rte_pktmbuf_read(m, 0, static_cast<uint32_t>(out.size()), out.data());
  const uint8_t* p = static_cast<const uint8_t*>(
      rte_pktmbuf_read(m, 0, static_cast<uint32_t>(out.size()), out.data()));
  if (p != out.data()) std::memcpy(out.data(), p, out.size());
  return out;
}

}  // namespace segx::test
