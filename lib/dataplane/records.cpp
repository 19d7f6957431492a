// Segment records: one JSON line per closed segment, written by the control loop from the
// results ring to results.file and results.socket.

#include <arpa/inet.h>
#include <rte_cycles.h>

#include <cstdio>

#include "dataplane/dataplane_impl.hpp"

namespace segx::dataplane {

namespace {

std::string address(uint8_t family, const uint8_t* bytes) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 4 ? AF_INET : AF_INET6, bytes, buf, sizeof buf);
  return buf;
}

}  // namespace

std::string Dataplane::Impl::record_json(const Segment& s) const {
  const FlowKey& k = s.key;
  std::string vlan = "[";
  if (k.vlan_count >= 1) vlan += std::to_string(k.outer_vlan);
  if (k.vlan_count >= 2) vlan += ", " + std::to_string(k.inner_vlan);
  vlan += "]";
  std::string block = "null";
  if (s.block_serial != 0) {
    auto it = block_ids.find(s.block_serial);
    block = "\"" + (it != block_ids.end() ? it->second : std::to_string(s.block_serial)) + "\"";
  }
  const uint64_t hz = rte_get_tsc_hz();
  const auto duration =
      static_cast<uint64_t>(static_cast<long double>(s.last_tsc - s.first_tsc) * 1e9L / hz);
  const bool truncated = s.result_len >= segment_result_bytes;
  char head[512];
  std::snprintf(
      head, sizeof head,
      "{\"segment\": %lu, \"profile\": \"%s\", \"block\": %s, \"flow\": {\"port\": \"%s\", "
      "\"vlan\": %s, \"family\": %u, \"proto\": %u, \"src\": \"%s\", \"dst\": \"%s\", "
      "\"sport\": %u, \"dport\": %u}, \"first_seq\": %u, \"packets\": %u, \"bytes\": %lu, "
      "\"duration_ns\": %lu, \"close\": \"%s\", \"services\": {",
      s.id, slots[s.profile].name.c_str(), block.c_str(), config.ports[k.in_port].name.c_str(),
      vlan.c_str(), k.family, k.proto, address(k.family, k.src).c_str(),
      address(k.family, k.dst).c_str(), k.src_port, k.dst_port, s.first_seq, s.packets, s.bytes,
      duration, std::string(close_reason_name(s.reason)).c_str());
  std::string line = head;
  if (!truncated) line.append(s.result, s.result_len);
  line += truncated ? "}, \"services_truncated\": true}\n" : "}}\n";
  return line;
}

// Writes the records waiting in the results ring and returns their descriptors to the pool.
size_t Dataplane::Impl::write_records() {
  if (results == nullptr) return 0;
  void* entries[256];
  size_t total = 0;
  unsigned n;
  while ((n = rte_ring_dequeue_burst(results, entries, 256, nullptr)) > 0) {
    for (unsigned i = 0; i < n; ++i) {
      const std::string line = record_json(*static_cast<Segment*>(entries[i]));
      if (records) std::fwrite(line.data(), 1, line.size(), records);
      if (record_socket) record_socket->write(line);
    }
    rte_mempool_put_bulk(segments, entries, n);
    total += n;
  }
  if (total > 0 && records) std::fflush(records);
  // Also when nothing is new: sends what waited and reconnects a lost collector.
  if (record_socket) record_socket->flush();
  records_written += total;
  return total;
}

}  // namespace segx::dataplane
