#include "market/types.hpp"

#include <algorithm>

#include "config/units.hpp"

namespace segx::market {

void Usage::add(const Usage& o) {
  active_ns += o.active_ns;
  for (size_t i = 0; i < 3; ++i) {
    packets[i] += o.packets[i];
    bytes[i] += o.bytes[i];
  }
  for (const auto& [label, b] : o.member_bytes)
    for (size_t i = 0; i < 3; ++i)
      member_bytes[label][i] += b[i];
  dropped_packets += o.dropped_packets;
  dropped_bytes += o.dropped_bytes;
  compliance.add(o.compliance);
}

Money Group::pledged() const {
  Money sum = 0;
  for (const auto& [who, p] : pledges) {
    if (p.amount <= 0) continue;
    sum = p.amount > max_money - sum ? max_money : sum + p.amount;
  }
  return sum;
}

bool Group::joined(const std::string& principal) const {
  return !consent || principal == organizer || pledges.count(principal) != 0;
}

std::vector<const GroupMember*> Group::served() const {
  std::vector<const GroupMember*> out;
  for (const GroupMember& gm : members)
    if (joined(gm.principal)) out.push_back(&gm);
  return out;
}

bool Group::has_member(const std::string& principal) const {
  return principal == organizer ||
         std::any_of(members.begin(), members.end(),
                     [&](const GroupMember& gm) { return gm.principal == principal; });
}

std::string_view format_name(Format f) {
  switch (f) {
    case Format::second_price:
      return "second_price";
    case Format::uniform:
      return "uniform";
    case Format::ascending:
      return "ascending";
  }
  return "?";
}

std::optional<Format> parse_format(std::string_view s) {
  if (s == "second_price") return Format::second_price;
  if (s == "uniform") return Format::uniform;
  if (s == "ascending") return Format::ascending;
  return std::nullopt;
}

std::string_view outcome_name(Outcome o) {
  switch (o) {
    case Outcome::none:
      return "none";
    case Outcome::awarded:
      return "awarded";
    case Outcome::partially_awarded:
      return "partially_awarded";
    case Outcome::reserve_not_met:
      return "reserve_not_met";
    case Outcome::no_bids:
      return "no_bids";
    case Outcome::cancelled:
      return "cancelled";
  }
  return "?";
}

std::string_view lot_state_name(LotState s) {
  switch (s) {
    case LotState::open:
      return "open";
    case LotState::closed:
      return "closed";
    case LotState::cancelled:
      return "cancelled";
  }
  return "?";
}

std::string_view lease_state_name(LeaseState s) {
  switch (s) {
    case LeaseState::awarded:
      return "awarded";
    case LeaseState::active:
      return "active";
    case LeaseState::suspended:
      return "suspended";
    case LeaseState::finished:
      return "finished";
    case LeaseState::unpaid:
      return "unpaid";
    case LeaseState::failed:
      return "failed";
  }
  return "?";
}

std::string_view charge_result_name(ChargeResult r) {
  switch (r) {
    case ChargeResult::pending:
      return "pending";
    case ChargeResult::accepted:
      return "accepted";
    case ChargeResult::declined:
      return "declined";
    case ChargeResult::error:
      return "error";
  }
  return "?";
}

std::string_view refund_state_name(RefundState r) {
  switch (r) {
    case RefundState::none:
      return "none";
    case RefundState::pending:
      return "pending";
    case RefundState::accepted:
      return "accepted";
    case RefundState::declined:
      return "declined";
    case RefundState::error:
      return "error";
  }
  return "?";
}

std::string_view role_name(Role r) {
  switch (r) {
    case Role::admin:
      return "admin";
    case Role::provider:
      return "provider";
    case Role::recipient:
      return "recipient";
    case Role::device:
      return "device";
  }
  return "?";
}

std::optional<Role> parse_role(std::string_view s) {
  if (s == "admin") return Role::admin;
  if (s == "provider") return Role::provider;
  if (s == "recipient") return Role::recipient;
  if (s == "device") return Role::device;
  return std::nullopt;
}

Result<config::MemberConfig> parse_member(std::string_view text) {
  const size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  const std::string_view value = colon == std::string_view::npos ? "" : text.substr(colon + 1);
  config::MemberConfig m;
  using K = config::MemberConfig::Kind;
  const auto bad = [&](const std::string& why) {
    return Error{"member '" + std::string(text) + "': " + why};
  };
  if (colon == std::string_view::npos || value.empty())
    return bad("expected KIND:VALUE with KIND one of ip, mac, vlan, phone, device, user");
  if (kind == "ip") {
    auto p = config::parse_ip_prefix(value);
    if (!p) return bad(p.error());
    m.kind = K::ip;
    if (p.value().length == 0)
      return bad("a prefix of length 0 would match every address; name narrower prefixes");
    m.ip = p.value();
  } else if (kind == "mac") {
    auto mac = config::parse_mac(value);
    if (!mac) return bad(mac.error());
    m.kind = K::mac;
    m.mac = mac.value();
  } else if (kind == "vlan") {
    auto r = config::parse_range(value, 4094);
    if (!r || r.value().lo != r.value().hi || r.value().lo == 0)
      return bad("expected a VLAN id from 1 to 4094");
    m.kind = K::vlan;
    m.vlan = static_cast<uint16_t>(r.value().lo);
  } else if (kind == "phone") {
    auto ph = config::parse_phone(value);
    if (!ph) return bad(ph.error());
    m.kind = K::phone;
    m.name = ph.value();
  } else if (kind == "device" || kind == "user") {
    m.kind = kind == "device" ? K::device : K::subscriber;
    m.name = std::string(value);
  } else {
    return bad("unknown kind '" + std::string(kind) +
               "'; expected ip, mac, vlan, phone, device or user");
  }
  return m;
}

std::string format_member(const config::MemberConfig& m) {
  using K = config::MemberConfig::Kind;
  switch (m.kind) {
    case K::ip:
      return "ip:" + config::format_prefix(m.ip);
    case K::mac:
      return "mac:" + config::format_mac(m.mac);
    case K::vlan:
      return "vlan:" + std::to_string(m.vlan);
    case K::phone:
      return "phone:" + m.name;
    case K::device:
      return "device:" + m.name;
    case K::subscriber:
      return "user:" + m.name;
  }
  return "?";
}

}  // namespace segx::market
