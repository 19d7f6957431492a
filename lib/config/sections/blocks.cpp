// Section blocks: blocks of service provisioned in the file, and their members.

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "config/sections/context.hpp"

namespace segx::config::sections {
namespace {

bool phone_has_address(Context& ctx, const std::string& phone) {
  for (const auto& s : ctx.c.subscribers) {
    for (const auto& d : s.devices) {
      if (!d.ips.empty() && contains(d.phones, phone)) return true;
    }
  }
  return false;
}

// A member is a mapping with exactly one key naming what identifies it.
std::optional<MemberConfig> read_member(Context& ctx, const Value& v) {
  if (!v.is_map() || v.yaml().size() != 1) {
    v.error(
        "expected one of {ip: PREFIX}, {mac: MAC}, {vlan: ID}, {phone: NUMBER}, "
        "{device: ID}, {subscriber: ID}");
    return std::nullopt;
  }
  MapReader m(v);
  MemberConfig mc;
  if (auto x = m.get("ip")) {
    mc.kind = MemberConfig::Kind::ip;
    auto p = x->as_parsed<IpPrefix>(parse_ip_prefix);
    if (!p) return std::nullopt;
    if (p->length == 0) {
      // The data plane's LPM tables hold prefixes of length 1 and up.
      x->error(
          "a member prefix of length 0 would match every address; split it in two (" +
          std::string(p->address.family == 4 ? "0.0.0.0/1 and 128.0.0.0/1" : "::/1 and 8000::/1") +
          ")");
      return std::nullopt;
    }
    mc.ip = *p;
  } else if (auto x = m.get("mac")) {
    mc.kind = MemberConfig::Kind::mac;
    auto mac = x->as_parsed<MacAddress>(parse_mac);
    if (!mac) return std::nullopt;
    mc.mac = *mac;
  } else if (auto x = m.get("vlan")) {
    mc.kind = MemberConfig::Kind::vlan;
    auto n = x->as_int(1, 4094);
    if (!n) return std::nullopt;
    mc.vlan = static_cast<uint16_t>(*n);
  } else if (auto x = m.get("phone")) {
    mc.kind = MemberConfig::Kind::phone;
    auto ph = x->as_parsed<std::string>(parse_phone);
    if (!ph) return std::nullopt;
    mc.name = *ph;
    if (!phone_has_address(ctx, mc.name)) {
      x->error("telephone number " + mc.name +
               " belongs to no subscriber device with an ip "
               "(subscribers), so its traffic cannot be recognised");
      return std::nullopt;
    }
  } else if (auto x = m.get("device")) {
    mc.kind = MemberConfig::Kind::device;
    auto id = x->as_name();
    if (!id) return std::nullopt;
    if (!ctx.device_ids.count(*id)) {
      x->error("no subscriber device named '" + *id + "'");
      return std::nullopt;
    }
    mc.name = *id;
  } else if (auto x = m.get("subscriber")) {
    mc.kind = MemberConfig::Kind::subscriber;
    auto id = x->as_name();
    if (!id) return std::nullopt;
    if (!ctx.subscriber_ids.count(*id)) {
      x->error("no subscriber named '" + *id + "'");
      return std::nullopt;
    }
    mc.name = *id;
  } else {
    return std::nullopt;  // the reader reports the unknown key
  }
  return mc;
}

}  // namespace

// ---- blocks -------------------------------------------------------------------------
void read_blocks(Context& ctx, const Value& v) {
  std::set<std::string> ids;
  for (const Value& item : v.list()) {
    MapReader m(item);
    if (!m.valid()) continue;
    BlockConfig b;
    m.read_name("id", b.id, true);
    if (!b.id.empty() && !ids.insert(b.id).second)
      item.error("block id '" + b.id + "' is used twice");
    if (auto p = m.require("profile")) {
      if (auto name = p->as_name()) {
        const int i = ctx.c.profile_index(*name);
        if (i < 0) {
          p->error("no profile named '" + *name + "'");
        } else if (!ctx.c.profiles[static_cast<size_t>(i)].metered) {
          p->error("profile '" + *name +
                   "' is not metered (metered: true), so a block would "
                   "change nothing");
        } else {
          b.profile = *name;
        }
      }
    }
    if (auto s = m.get("start")) {
      // A duration counts from segx's start; anything else must be an RFC 3339 time.
      auto text = s->as_string();
      if (text && parse_duration(*text)) {
        b.start_after = parse_duration(*text).value();
      } else if (text) {
        b.start_at = s->as_parsed<int64_t>(parse_timestamp);
      }
    }
    m.read("duration", b.duration, Duration(1ms), Duration(std::chrono::hours(24 * 366)));
    if (b.duration == Duration(0) && m.valid()) item.error("missing required key 'duration'");
    if (auto r = m.get("min_rate")) {
      if (auto n = r->as_parsed<uint64_t>(parse_rate)) b.min_rate = *n;
    }
    if (auto r = m.get("max_rate")) {
      if (auto n = r->as_parsed<uint64_t>(parse_rate)) b.max_rate = *n;
    }
    if (b.min_rate > 0 && b.max_rate > 0 && b.min_rate > b.max_rate) {
      item.error("min_rate " + format_rate(b.min_rate) + " is above max_rate " +
                 format_rate(b.max_rate));
    }
    if (auto members = m.require("members")) {
      for (const Value& mv : members->list()) {
        if (auto member = read_member(ctx, mv)) b.members.push_back(*member);
      }
      if (members->list().empty()) members->error("a block needs at least one member");
    }
    ctx.c.blocks.push_back(b);
  }
}

}  // namespace segx::config::sections
