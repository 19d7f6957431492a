// libFuzzer target: the frame parser (lib/dataplane/packet.hpp) over arbitrary bytes, and its
// fast path (parse_fast) against it.
// parse_frame works on contiguous bytes, the same call the rx path makes with an mbuf's
// first segment or a linearized copy, so no EAL is needed. The first input byte picks the
// options and how much longer the "whole frame" is than the bytes handed over (the rx path
// passes a parse window of a longer frame); the rest is the frame. libFuzzer hands over a
// buffer of exactly that size, so ASan catches any read past it.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "dataplane/packet.hpp"

using segx::dataplane::PacketInfo;
using segx::dataplane::ParseError;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t control = data[0];
  // A copy of exactly the frame's bytes: a read one past them is an ASan error.
  const std::vector<uint8_t> frame(data + 1, data + size);
  const auto len = static_cast<uint32_t>(frame.size());
  // Bit 7: GTP-U decapsulation. Bits 0-6: extra bytes of the whole frame beyond `len`,
  // in units of 16, as when a long frame is parsed through its first window.
  segx::dataplane::ParseOptions options;
  options.gtpu = (control & 0x80) != 0;
  const uint32_t frame_len = len + (control & 0x7fu) * 16;

  PacketInfo info;
  const ParseError e = segx::dataplane::parse_frame(frame.data(), len, frame_len, info, options);
  if (segx::dataplane::parse_error_name(e) == "unknown") std::abort();
  // The rx path's fast parser, differentially: where it takes a frame, the full parser's
  // answer exactly; parse_packet (fast, else full) the same result and drop reason.
  PacketInfo fast;
  if (segx::dataplane::parse_fast(frame.data(), len, frame_len, fast, options) &&
      (e != ParseError::none || !(fast == info)))
    std::abort();
  PacketInfo combined;
  if (segx::dataplane::parse_packet(frame.data(), len, frame_len, combined, options) != e ||
      (e == ParseError::none && !(combined == info)))
    std::abort();
  if (e != ParseError::none) return 0;
  // What the rx path and the services rely on for an accepted frame: every offset it
  // reports lies inside the frame, and the L4 payload ends inside it.
  if (info.l2_len > frame_len || info.l3_offset > frame_len || info.l4_offset > frame_len) {
    std::abort();
  }
  if (info.l4_payload_offset != 0 &&
      uint64_t{info.l4_payload_offset} + info.l4_payload_len > frame_len) {
    std::abort();
  }
  return 0;
}
