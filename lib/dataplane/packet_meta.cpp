#include "dataplane/packet_meta.hpp"

namespace segx::dataplane {

int packet_meta_offset = -1;

bool register_packet_meta() {
  static const rte_mbuf_dynfield desc = {
      .name = "segx_packet_meta",
      .size = sizeof(PacketMeta),
      .align = alignof(PacketMeta),
      .flags = 0,
  };
  if (packet_meta_offset < 0) packet_meta_offset = rte_mbuf_dynfield_register(&desc);
  return packet_meta_offset >= 0;
}

}  // namespace segx::dataplane
