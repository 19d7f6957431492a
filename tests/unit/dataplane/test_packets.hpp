#pragma once
// A parsed packet made from text addresses, for tests of what consumes PacketInfo.

#include <arpa/inet.h>

#include "dataplane/packet.hpp"

namespace segx::dataplane {

/// An IPv4 or IPv6 packet (by the form of `src`) with the given protocol and ports.
inline PacketInfo ip_packet(const char* src, const char* dst, uint8_t proto = 0, uint16_t sport = 0,
                            uint16_t dport = 0) {
  PacketInfo i{};
  if (inet_pton(AF_INET, src, i.src.data()) == 1) {
    inet_pton(AF_INET, dst, i.dst.data());
    i.family = 4;
  } else {
    inet_pton(AF_INET6, src, i.src.data());
    inet_pton(AF_INET6, dst, i.dst.data());
    i.family = 6;
  }
  i.proto = proto;
  i.src_port = sport;
  i.dst_port = dport;
  return i;
}

}  // namespace segx::dataplane
