#include "dataplane/classifier.hpp"

#include <rte_byteorder.h>
#include <rte_errno.h>

#include <cstddef>
#include <cstring>

namespace segx::dataplane {
namespace {

// Most ACL rules one profile may expand to; beyond that the configuration is refused.
constexpr size_t max_rules_per_profile = 65536;

enum Field4 { f4_proto, f4_vlan, f4_port, f4_dscp, f4_src, f4_dst, f4_sport, f4_dport, f4_count };
enum Field6 {
  f6_proto,
  f6_vlan,
  f6_port,
  f6_dscp,
  f6_src0,
  f6_src1,
  f6_src2,
  f6_src3,
  f6_dst0,
  f6_dst1,
  f6_dst2,
  f6_dst3,
  f6_sport,
  f6_dport,
  f6_count
};

RTE_ACL_RULE_DEF(AclRule4, f4_count);
RTE_ACL_RULE_DEF(AclRule6, f6_count);

rte_acl_field_def field(uint8_t type, uint8_t size, uint8_t index, uint8_t input, uint32_t offset) {
  rte_acl_field_def d{};
  d.type = type;
  d.size = size;
  d.field_index = index;
  d.input_index = input;
  d.offset = offset;
  return d;
}

// Field layout of AclKey4: proto alone in input 0, then 4-byte groups.
std::vector<rte_acl_field_def> defs4() {
  return {
      field(RTE_ACL_FIELD_TYPE_BITMASK, 1, f4_proto, 0, offsetof(AclKey4, proto)),
      field(RTE_ACL_FIELD_TYPE_RANGE, 2, f4_vlan, 1, offsetof(AclKey4, vlan)),
      field(RTE_ACL_FIELD_TYPE_RANGE, 1, f4_port, 1, offsetof(AclKey4, in_port)),
      field(RTE_ACL_FIELD_TYPE_RANGE, 1, f4_dscp, 1, offsetof(AclKey4, dscp)),
      field(RTE_ACL_FIELD_TYPE_MASK, 4, f4_src, 2, offsetof(AclKey4, src)),
      field(RTE_ACL_FIELD_TYPE_MASK, 4, f4_dst, 3, offsetof(AclKey4, dst)),
      field(RTE_ACL_FIELD_TYPE_RANGE, 2, f4_sport, 4, offsetof(AclKey4, src_port)),
      field(RTE_ACL_FIELD_TYPE_RANGE, 2, f4_dport, 4, offsetof(AclKey4, dst_port)),
  };
}

std::vector<rte_acl_field_def> defs6() {
  std::vector<rte_acl_field_def> d{
      field(RTE_ACL_FIELD_TYPE_BITMASK, 1, f6_proto, 0, offsetof(AclKey6, proto)),
      field(RTE_ACL_FIELD_TYPE_RANGE, 2, f6_vlan, 1, offsetof(AclKey6, vlan)),
      field(RTE_ACL_FIELD_TYPE_RANGE, 1, f6_port, 1, offsetof(AclKey6, in_port)),
      field(RTE_ACL_FIELD_TYPE_RANGE, 1, f6_dscp, 1, offsetof(AclKey6, dscp)),
  };
  for (uint8_t i = 0; i < 4; ++i) {
    d.push_back(field(RTE_ACL_FIELD_TYPE_MASK, 4, static_cast<uint8_t>(f6_src0 + i),
                      static_cast<uint8_t>(2 + i), offsetof(AclKey6, src) + 4u * i));
  }
  for (uint8_t i = 0; i < 4; ++i) {
    d.push_back(field(RTE_ACL_FIELD_TYPE_MASK, 4, static_cast<uint8_t>(f6_dst0 + i),
                      static_cast<uint8_t>(6 + i), offsetof(AclKey6, dst) + 4u * i));
  }
  d.push_back(field(RTE_ACL_FIELD_TYPE_RANGE, 2, f6_sport, 10, offsetof(AclKey6, src_port)));
  d.push_back(field(RTE_ACL_FIELD_TYPE_RANGE, 2, f6_dport, 10, offsetof(AclKey6, dst_port)));
  return d;
}

uint32_t word(const config::IpPrefix& p, unsigned i) {
  uint32_t w;
  std::memcpy(&w, p.address.bytes.data() + 4 * i, 4);
  return rte_be_to_cpu_32(w);
}

// Bits of a prefix that fall in 32-bit word i.
uint32_t word_bits(const config::IpPrefix& p, unsigned i) {
  const int bits = static_cast<int>(p.length) - 32 * static_cast<int>(i);
  return static_cast<uint32_t>(bits <= 0 ? 0 : bits >= 32 ? 32 : bits);
}

template <class Rule>
void fill_common(Rule& r, const ExpandedRule& e, size_t profiles, int vlan, int port, int dscp,
                 int sport, int dport, int proto) {
  r.data.category_mask = 1;
  // The first profile written must win, so it gets the highest priority.
  r.data.priority = static_cast<int32_t>(profiles - e.profile);
  r.data.userdata = e.profile + 1;
  r.field[proto].value.u8 = e.proto;
  r.field[proto].mask_range.u8 = e.proto_mask;
  r.field[vlan].value.u16 = e.vlan_lo;
  r.field[vlan].mask_range.u16 = e.vlan_hi;
  r.field[port].value.u8 = e.port_lo;
  r.field[port].mask_range.u8 = e.port_hi;
  r.field[dscp].value.u8 = e.dscp_lo;
  r.field[dscp].mask_range.u8 = e.dscp_hi;
  r.field[sport].value.u16 = e.sport_lo;
  r.field[sport].mask_range.u16 = e.sport_hi;
  r.field[dport].value.u16 = e.dport_lo;
  r.field[dport].mask_range.u16 = e.dport_hi;
}

Result<rte_acl_ctx*> make_context(const std::string& name,
                                  const std::vector<rte_acl_field_def>& defs, const void* rules,
                                  size_t count, size_t rule_size) {
  rte_acl_param param{};
  param.name = name.c_str();
  param.socket_id = SOCKET_ID_ANY;
  param.rule_size = static_cast<uint32_t>(rule_size);
  param.max_rule_num = static_cast<uint32_t>(count);
  rte_acl_ctx* ctx = rte_acl_create(&param);
  if (ctx == nullptr)
    return Error{"cannot create ACL context " + name + ": " + rte_strerror(rte_errno)};
  if (int ret = rte_acl_add_rules(ctx, static_cast<const rte_acl_rule*>(rules),
                                  static_cast<uint32_t>(count));
      ret != 0) {
    rte_acl_free(ctx);
    return Error{"cannot add " + std::to_string(count) + " ACL rules: " + rte_strerror(-ret)};
  }
  rte_acl_config cfg{};
  cfg.num_categories = 1;
  cfg.num_fields = static_cast<uint32_t>(defs.size());
  std::memcpy(cfg.defs, defs.data(), defs.size() * sizeof(rte_acl_field_def));
  if (int ret = rte_acl_build(ctx, &cfg); ret != 0) {
    rte_acl_free(ctx);
    return Error{"cannot build the ACL context " + name + ": " + rte_strerror(-ret)};
  }
  return ctx;
}

}  // namespace

AclKey4 make_acl_key4(const PacketInfo& info, uint8_t in_port) {
  AclKey4 k{};
  k.proto = info.proto;
  k.vlan = rte_cpu_to_be_16(info.vlan_count ? info.outer_vlan : 0);
  k.in_port = in_port;
  k.dscp = info.dscp;
  std::memcpy(&k.src, info.src.data(), 4);
  std::memcpy(&k.dst, info.dst.data(), 4);
  k.src_port = rte_cpu_to_be_16(info.src_port);
  k.dst_port = rte_cpu_to_be_16(info.dst_port);
  return k;
}

AclKey6 make_acl_key6(const PacketInfo& info, uint8_t in_port) {
  AclKey6 k{};
  k.proto = info.proto;
  k.vlan = rte_cpu_to_be_16(info.vlan_count ? info.outer_vlan : 0);
  k.in_port = in_port;
  k.dscp = info.dscp;
  std::memcpy(k.src, info.src.data(), 16);
  std::memcpy(k.dst, info.dst.data(), 16);
  k.src_port = rte_cpu_to_be_16(info.src_port);
  k.dst_port = rte_cpu_to_be_16(info.dst_port);
  return k;
}

Result<std::vector<ExpandedRule>> expand_profile(const config::Config& config, size_t profile,
                                                 size_t limit) {
  const config::MatchConfig& m = config.profiles[profile].match;
  // Each list becomes its values, or a single "any" entry when empty.
  std::vector<std::pair<uint8_t, uint8_t>> ports;
  for (const auto& name : m.ports) {
    const auto i = static_cast<uint8_t>(config.port_index(name));
    ports.emplace_back(i, i);
  }
  if (ports.empty()) ports.emplace_back(0, 0xff);
  std::vector<config::Range> vlans = m.vlans;
  if (vlans.empty()) vlans.push_back({0, 0xffff});
  std::vector<config::Range> dscps = m.dscp;
  if (dscps.empty()) dscps.push_back({0, 0xff});
  std::vector<config::Range> sports = m.src_ports, dports = m.dst_ports;
  if (sports.empty()) sports.push_back({0, 0xffff});
  if (dports.empty()) dports.push_back({0, 0xffff});
  std::vector<std::pair<uint8_t, uint8_t>> protos;
  for (uint8_t p : m.protocols)
    protos.emplace_back(p, 0xff);
  if (protos.empty()) protos.emplace_back(0, 0);

  std::vector<ExpandedRule> out;
  for (uint8_t family : {uint8_t{4}, uint8_t{6}}) {
    // Address lists of this family; a profile with prefixes of the other family only
    // cannot match this one.
    std::vector<config::IpPrefix> srcs, dsts;
    for (const auto& p : m.src)
      if (p.address.family == family) srcs.push_back(p);
    for (const auto& p : m.dst)
      if (p.address.family == family) dsts.push_back(p);
    if ((!m.src.empty() && srcs.empty()) || (!m.dst.empty() && dsts.empty())) continue;
    if (srcs.empty()) srcs.push_back(config::IpPrefix{{family, {}}, 0});
    if (dsts.empty()) dsts.push_back(config::IpPrefix{{family, {}}, 0});
    // ICMP is IPv4's, ICMPv6 IPv6's: a listed protocol of the other family is skipped.
    for (const auto& [proto, pmask] : protos) {
      if (pmask && ((family == 4 && proto == 58) || (family == 6 && proto == 1))) continue;
      for (const auto& port : ports)
        for (const auto& vlan : vlans)
          for (const auto& dscp : dscps)
            for (const auto& src : srcs)
              for (const auto& dst : dsts)
                for (const auto& sp : sports)
                  for (const auto& dp : dports) {
                    if (out.size() >= limit) {
                      return Error{"profile '" + config.profiles[profile].name +
                                   "' expands to more than " + std::to_string(limit) +
                                   " classifier rules; list fewer combinations"};
                    }
                    ExpandedRule r;
                    r.profile = static_cast<uint32_t>(profile);
                    r.family = family;
                    r.proto = proto;
                    r.proto_mask = pmask;
                    r.port_lo = port.first;
                    r.port_hi = port.second;
                    r.vlan_lo = static_cast<uint16_t>(vlan.lo);
                    r.vlan_hi = static_cast<uint16_t>(vlan.hi);
                    r.dscp_lo = static_cast<uint8_t>(dscp.lo);
                    r.dscp_hi = static_cast<uint8_t>(dscp.hi);
                    r.src = src;
                    r.dst = dst;
                    r.sport_lo = static_cast<uint16_t>(sp.lo);
                    r.sport_hi = static_cast<uint16_t>(sp.hi);
                    r.dport_lo = static_cast<uint16_t>(dp.lo);
                    r.dport_hi = static_cast<uint16_t>(dp.hi);
                    out.push_back(r);
                  }
    }
  }
  return out;
}

Result<std::unique_ptr<Classifier>> Classifier::build(const config::Config& config,
                                                      const std::string& name,
                                                      const std::vector<uint32_t>& slots) {
  std::unique_ptr<Classifier> c(new Classifier);
  std::vector<AclRule4> rules4;
  std::vector<AclRule6> rules6;
  const size_t n = config.profiles.size();
  for (size_t p = 0; p < n; ++p) {
    auto expanded = expand_profile(config, p, max_rules_per_profile);
    if (!expanded) return Error{expanded.error()};
    for (const ExpandedRule& e : expanded.value()) {
      if (e.family == 4) {
        AclRule4 r{};
        fill_common(r, e, n, f4_vlan, f4_port, f4_dscp, f4_sport, f4_dport, f4_proto);
        if (!slots.empty()) r.data.userdata = slots[p] + 1;
        r.field[f4_src].value.u32 = word(e.src, 0);
        r.field[f4_src].mask_range.u32 = e.src.length;
        r.field[f4_dst].value.u32 = word(e.dst, 0);
        r.field[f4_dst].mask_range.u32 = e.dst.length;
        rules4.push_back(r);
      } else {
        AclRule6 r{};
        fill_common(r, e, n, f6_vlan, f6_port, f6_dscp, f6_sport, f6_dport, f6_proto);
        if (!slots.empty()) r.data.userdata = slots[p] + 1;
        for (unsigned i = 0; i < 4; ++i) {
          r.field[f6_src0 + i].value.u32 = word(e.src, i);
          r.field[f6_src0 + i].mask_range.u32 = word_bits(e.src, i);
          r.field[f6_dst0 + i].value.u32 = word(e.dst, i);
          r.field[f6_dst0 + i].mask_range.u32 = word_bits(e.dst, i);
        }
        rules6.push_back(r);
      }
    }
  }
  // rte_acl_build refuses an empty rule set: a family without rules has no context and
  // matches nothing.
  if (!rules4.empty()) {
    auto ctx = make_context(name + "_v4", defs4(), rules4.data(), rules4.size(), sizeof(AclRule4));
    if (!ctx) return Error{ctx.error()};
    c->ctx4_ = ctx.value();
    c->rules4_ = rules4.size();
  }
  if (!rules6.empty()) {
    auto ctx = make_context(name + "_v6", defs6(), rules6.data(), rules6.size(), sizeof(AclRule6));
    if (!ctx) return Error{ctx.error()};
    c->ctx6_ = ctx.value();
    c->rules6_ = rules6.size();
  }
  return c;
}

Classifier::~Classifier() {
  rte_acl_free(ctx4_);
  rte_acl_free(ctx6_);
}

namespace {

// A family without rules has no context and matches nothing.
void classify(const rte_acl_ctx* ctx, const void* const* keys, uint32_t* profiles, uint32_t n) {
  if (ctx == nullptr) {
    std::memset(profiles, 0, n * sizeof(uint32_t));
    return;
  }
  rte_acl_classify(ctx, reinterpret_cast<const uint8_t**>(const_cast<const void**>(keys)), profiles,
                   n, 1);
}

}  // namespace

void Classifier::classify4(const AclKey4* const* keys, uint32_t* profiles, uint32_t n) const {
  classify(ctx4_, reinterpret_cast<const void* const*>(keys), profiles, n);
}

void Classifier::classify6(const AclKey6* const* keys, uint32_t* profiles, uint32_t n) const {
  classify(ctx6_, reinterpret_cast<const void* const*>(keys), profiles, n);
}

}  // namespace segx::dataplane
