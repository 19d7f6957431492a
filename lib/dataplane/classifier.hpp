#pragma once
// Profile classification with rte_acl: every profile's match is expanded into ACL rules
// (one per combination of its listed values), compiled once at start into an IPv4 and an
// IPv6 context. The first profile written wins: it gets the highest priority. Built
// contexts are read-only, so every rx lcore classifies with them at once.

#include <rte_acl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "config/config.hpp"
#include "dataplane/packet.hpp"

namespace segx::dataplane {

/// The bytes an IPv4 packet is classified on, in network byte order, laid out for
/// rte_acl: the one-byte first field, then groups of four bytes.
struct AclKey4 {
  uint8_t proto;
  uint8_t pad[3];
  uint16_t vlan;    ///< outer VLAN id, 0 when untagged
  uint8_t in_port;  ///< configured port index
  uint8_t dscp;
  uint32_t src;
  uint32_t dst;
  uint16_t src_port;
  uint16_t dst_port;
};
static_assert(sizeof(AclKey4) == 20);

/// As AclKey4, with 16-byte addresses.
struct AclKey6 {
  uint8_t proto;
  uint8_t pad[3];
  uint16_t vlan;
  uint8_t in_port;
  uint8_t dscp;
  uint8_t src[16];
  uint8_t dst[16];
  uint16_t src_port;
  uint16_t dst_port;
};
static_assert(sizeof(AclKey6) == 44);

/// The classification key of a parsed IP packet (network byte order throughout).
AclKey4 make_acl_key4(const PacketInfo& info, uint8_t in_port);
AclKey6 make_acl_key6(const PacketInfo& info, uint8_t in_port);

/// One expanded rule: single values or ranges per field, host byte order.
struct ExpandedRule {
  uint32_t profile;  ///< profile index
  uint8_t family;    ///< 4 or 6
  uint8_t proto = 0, proto_mask = 0;
  uint16_t vlan_lo = 0, vlan_hi = 0xffff;
  uint8_t port_lo = 0, port_hi = 0xff;
  uint8_t dscp_lo = 0, dscp_hi = 0xff;
  config::IpPrefix src, dst;  ///< length 0: any
  uint16_t sport_lo = 0, sport_hi = 0xffff;
  uint16_t dport_lo = 0, dport_hi = 0xffff;
};

/// Expands one profile's match into rules for each family it can match. Fails when the
/// combinations exceed `limit`.
Result<std::vector<ExpandedRule>> expand_profile(const config::Config& config, size_t profile,
                                                 size_t limit);

/// The compiled classifier.
class Classifier {
 public:
  /// Builds both contexts from the configuration's profiles. `name` makes the ACL context
  /// names unique in the process. A match answers `slots[p] + 1` for profile p (the data
  /// plane's profile slots), or p + 1 when `slots` is empty.
  static Result<std::unique_ptr<Classifier>> build(const config::Config& config,
                                                   const std::string& name,
                                                   const std::vector<uint32_t>& slots = {});
  ~Classifier();
  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;

  /// Classifies n keys; profiles[i] is the matching profile's index (or slot) + 1, or 0 for
  /// none.
  void classify4(const AclKey4* const* keys, uint32_t* profiles, uint32_t n) const;
  void classify6(const AclKey6* const* keys, uint32_t* profiles, uint32_t n) const;

  size_t rules4() const { return rules4_; }
  size_t rules6() const { return rules6_; }

 private:
  Classifier() = default;
  rte_acl_ctx* ctx4_ = nullptr;
  rte_acl_ctx* ctx6_ = nullptr;
  size_t rules4_ = 0, rules6_ = 0;
};

}  // namespace segx::dataplane
