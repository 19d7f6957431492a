#include "dataplane/metering.hpp"

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_malloc.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace segx::dataplane {

// Most blocks one member identifier can belong to at once (one per metered profile).
constexpr unsigned refs_per_member = 4;

struct MemberRef {
  uint16_t slot;
  uint16_t profile;
};

struct MemberEntry {
  uint8_t count = 0;
  std::array<MemberRef, refs_per_member> refs{};
};

struct BlockEntry {
  bool active = false;
  uint16_t profile = 0;
  uint64_t serial = 0;
  rte_meter_trtcm_profile meter{};
};

struct MeterSnapshot {
  std::vector<MemberEntry> members;                 // by member id
  std::vector<std::pair<uint64_t, uint32_t>> macs;  // sorted: MAC as integer, member id
  std::vector<uint32_t> vlans;                      // by VLAN id: member id + 1, 0 for none
  std::vector<BlockEntry> blocks;                   // by slot
  rte_lpm6* lpm6 = nullptr;                         // IPv6 members, or null
  std::vector<std::pair<config::IpPrefix, uint32_t>> routes6;  // what lpm6 holds
};

// One rx lcore's meters and counters, on cache lines of their own.
struct alignas(RTE_CACHE_LINE_SIZE) Metering::Lcore {
  std::vector<rte_meter_trtcm> meters;  // by slot
  std::vector<ColourCounters> blocks;   // by slot
  std::vector<ColourCounters> members;  // by member id * refs_per_member + ref
  std::vector<DropCounters> dropped;    // by slot
};

struct Metering::Active {
  std::string id;
  uint16_t slot = 0;
  uint64_t serial = 0;
  int64_t start_ns = 0;
  size_t profile = 0;
  uint64_t min_rate = 0, max_rate = 0;
  struct Member {
    MemberId id;
    std::string label;
    uint32_t counter;  // member entry * refs_per_member + reference
  };
  std::vector<Member> members;
};

namespace {

uint64_t mac_key(const uint8_t* mac) {
  uint64_t k = 0;
  for (int i = 0; i < 6; ++i)
    k = (k << 8) | mac[i];
  return k;
}

std::string prefix_label(const config::IpPrefix& p) {
  return "ip " + config::format_prefix(p);
}

int64_t wall_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string MemberId::label() const {
  switch (kind) {
    case Kind::ip:
      return prefix_label(ip);
    case Kind::mac:
      return "mac " + config::format_mac(mac);
    case Kind::vlan:
      return "vlan " + std::to_string(vlan);
  }
  return "?";
}

Result<std::vector<MemberId>> resolve_members(const config::Config& config,
                                              const std::vector<config::MemberConfig>& members) {
  std::vector<MemberId> out;
  const auto add_device = [&](const config::DeviceConfig& d) {
    for (const auto& p : d.ips)
      out.push_back({MemberId::Kind::ip, p, {}, 0});
    for (const auto& m : d.macs)
      out.push_back({MemberId::Kind::mac, {}, m, 0});
    for (uint16_t v : d.vlans)
      out.push_back({MemberId::Kind::vlan, {}, {}, v});
  };
  for (const auto& m : members) {
    switch (m.kind) {
      case config::MemberConfig::Kind::ip:
        out.push_back({MemberId::Kind::ip, m.ip, {}, 0});
        break;
      case config::MemberConfig::Kind::mac:
        out.push_back({MemberId::Kind::mac, {}, m.mac, 0});
        break;
      case config::MemberConfig::Kind::vlan:
        out.push_back({MemberId::Kind::vlan, {}, {}, m.vlan});
        break;
      case config::MemberConfig::Kind::phone: {
        bool found = false;
        for (const auto& s : config.subscribers) {
          for (const auto& d : s.devices) {
            if (std::find(d.phones.begin(), d.phones.end(), m.name) == d.phones.end()) continue;
            for (const auto& p : d.ips)
              out.push_back({MemberId::Kind::ip, p, {}, 0});
            found = found || !d.ips.empty();
          }
        }
        if (!found) return Error{"telephone number " + m.name + " maps to no device address"};
        break;
      }
      case config::MemberConfig::Kind::device: {
        bool found = false;
        for (const auto& s : config.subscribers) {
          for (const auto& d : s.devices) {
            if (d.id == m.name) add_device(d), found = true;
          }
        }
        if (!found) return Error{"no device named '" + m.name + "'"};
        break;
      }
      case config::MemberConfig::Kind::subscriber: {
        bool found = false;
        for (const auto& s : config.subscribers) {
          if (s.id != m.name) continue;
          for (const auto& d : s.devices)
            add_device(d);
          found = true;
        }
        if (!found) return Error{"no subscriber named '" + m.name + "'"};
        break;
      }
    }
  }
  // One identifier listed twice (a device and its subscriber, say) is one member.
  std::vector<MemberId> unique;
  std::vector<std::string> seen;
  for (auto& m : out) {
    const std::string l = m.label();
    if (std::find(seen.begin(), seen.end(), l) != seen.end()) continue;
    seen.push_back(l);
    unique.push_back(std::move(m));
  }
  return unique;
}

Result<std::unique_ptr<Metering>> Metering::create(const config::Config& config, unsigned rx_lcores,
                                                   const std::string& name) {
  std::unique_ptr<Metering> m(new Metering);
  m->name_ = name;
  for (size_t i = 0; i < config.profiles.size(); ++i)
    m->set_profile(i, config.profiles[i].name, config.profiles[i].metered);
  m->rx_lcores_ = rx_lcores;
  m->max_blocks_ = config.pipeline.metering.blocks;
  m->max_members_ = config.pipeline.metering.members;
  m->burst_ns_ = static_cast<uint64_t>(config.pipeline.metering.burst.count());

  const size_t rcu_size = rte_rcu_qsbr_get_memsize(rx_lcores);
  m->rcu_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc(nullptr, rcu_size, RTE_CACHE_LINE_SIZE));
  if (m->rcu_ == nullptr || rte_rcu_qsbr_init(m->rcu_, rx_lcores) != 0) {
    return Error{"cannot create the metering RCU variable"};
  }
  rte_lpm_config lc{};
  lc.max_rules = m->max_members_;
  lc.number_tbl8s = std::max<uint32_t>(256, std::min<uint32_t>(m->max_members_, 65535));
  m->lpm4_ = rte_lpm_create((name + "_m4").c_str(), SOCKET_ID_ANY, &lc);
  if (m->lpm4_ == nullptr) {
    return Error{std::string("cannot create the IPv4 member table: ") + rte_strerror(rte_errno) +
                 " (it needs 64 MiB of eal.memory)"};
  }
  // Deleting a prefix frees table groups only once no reader can see them.
  rte_lpm_rcu_config rc{};
  rc.v = m->rcu_;
  rc.mode = RTE_LPM_QSBR_MODE_SYNC;
  if (rte_lpm_rcu_qsbr_add(m->lpm4_, &rc) != 0) {
    return Error{std::string("cannot attach RCU to the IPv4 member table: ") +
                 rte_strerror(rte_errno)};
  }
  for (unsigned i = 0; i < rx_lcores; ++i) {
    auto l = std::make_unique<Lcore>();
    l->meters.resize(m->max_blocks_);
    l->blocks = std::vector<ColourCounters>(m->max_blocks_);
    l->dropped = std::vector<DropCounters>(m->max_blocks_);
    l->members = std::vector<ColourCounters>(size_t(m->max_members_) * refs_per_member);
    m->lcores_.push_back(std::move(l));
  }
  for (uint32_t s = m->max_blocks_; s > 0; --s)
    m->free_slots_.push_back(static_cast<uint16_t>(s - 1));
  for (uint32_t i = m->max_members_; i > 0; --i)
    m->free_members_.push_back(i - 1);
  auto first = std::make_unique<MeterSnapshot>();
  first->members.resize(m->max_members_);
  first->vlans.assign(4096, 0);
  first->blocks.resize(m->max_blocks_);
  m->current_.store(first.get(), std::memory_order_release);
  m->owned_ = std::move(first);
  return m;
}

Metering::~Metering() {
  rte_lpm_free(lpm4_);
  for (rte_lpm6* l : lpm6_)
    rte_lpm6_free(l);
  rte_free(rcu_);
}

Status Metering::rebuild_lpm6(MeterSnapshot& next) {
  if (next.routes6.empty()) {
    next.lpm6 = nullptr;
    return {};
  }
  // The instance the published snapshot does not use is free to rewrite.
  const MeterSnapshot* cur = current_.load(std::memory_order_relaxed);
  int target = (cur->lpm6 == lpm6_[0] && lpm6_[0] != nullptr) ? 1 : 0;
  if (lpm6_[target] == nullptr) {
    rte_lpm6_config c{};
    c.max_rules = max_members_;
    c.number_tbl8s = std::max<uint32_t>(1024, max_members_ * 4);
    lpm6_[target] =
        rte_lpm6_create((name_ + "_m6_" + std::to_string(target)).c_str(), SOCKET_ID_ANY, &c);
    if (lpm6_[target] == nullptr) {
      return Error{std::string("cannot create the IPv6 member table: ") + rte_strerror(rte_errno) +
                   " (it needs 64 MiB of eal.memory)"};
    }
  }
  rte_lpm6_delete_all(lpm6_[target]);
  for (const auto& [prefix, id] : next.routes6) {
    if (int ret = rte_lpm6_add(lpm6_[target], prefix.address.bytes.data(), prefix.length, id);
        ret != 0) {
      return Error{"cannot add " + config::format_prefix(prefix) +
                   " to the IPv6 member table: " + rte_strerror(-ret)};
    }
  }
  next.lpm6 = lpm6_[target];
  return {};
}

Status Metering::publish(std::unique_ptr<MeterSnapshot> next) {
  current_.store(next.get(), std::memory_order_release);
  // After this, no rx lcore still reads the old snapshot (or an old IPv6 table).
  rte_rcu_qsbr_synchronize(rcu_, RTE_QSBR_THRID_INVALID);
  owned_ = std::move(next);
  return {};
}

void Metering::set_profile(size_t id, const std::string& name, bool metered) {
  if (profile_names_.size() <= id) {
    profile_names_.resize(id + 1);
    profile_metered_.resize(id + 1, false);
  }
  profile_names_[id] = name;
  profile_metered_[id] = metered;
}

Result<uint64_t> Metering::activate(const BlockSpec& spec) {
  if (active_.count(spec.id)) return Error{"block '" + spec.id + "' is already active"};
  if (spec.profile >= profile_metered_.size() || !profile_metered_[spec.profile]) {
    return Error{"block '" + spec.id + "': its profile is not metered"};
  }
  if (spec.members.empty()) return Error{"block '" + spec.id + "' has no members"};
  if (free_slots_.empty()) {
    return Error{"no free block slot (pipeline.metering.blocks is " + std::to_string(max_blocks_) +
                 ")"};
  }
  const auto profile = static_cast<uint16_t>(spec.profile);
  auto next = std::make_unique<MeterSnapshot>(*owned_);
  auto active = std::make_unique<Active>();
  active->id = spec.id;
  active->slot = free_slots_.back();
  active->serial = next_serial_++;
  active->profile = spec.profile;
  active->min_rate = spec.min_rate;
  active->max_rate = spec.max_rate;

  // Members: a known identifier gains a reference, a new one takes a free entry.
  std::vector<std::pair<std::string, uint32_t>> new_members;  // label, entry
  std::vector<std::pair<config::IpPrefix, uint32_t>> new_v4;
  std::vector<std::string> labels;
  for (const MemberId& m : spec.members) {
    const std::string label = m.label();
    if (std::find(labels.begin(), labels.end(), label) != labels.end()) continue;
    labels.push_back(label);
    uint32_t id;
    auto known = member_by_label_.find(label);
    if (known != member_by_label_.end()) {
      id = known->second;
    } else {
      if (free_members_.size() <= new_members.size()) {
        return Error{"no free member entry (pipeline.metering.members is " +
                     std::to_string(max_members_) + ")"};
      }
      id = free_members_[free_members_.size() - 1 - new_members.size()];
      new_members.emplace_back(label, id);
      if (m.kind == MemberId::Kind::ip && m.ip.address.family == 4) new_v4.emplace_back(m.ip, id);
      if (m.kind == MemberId::Kind::ip && m.ip.address.family == 6)
        next->routes6.emplace_back(m.ip, id);
      if (m.kind == MemberId::Kind::mac) next->macs.emplace_back(mac_key(m.mac.data()), id);
      if (m.kind == MemberId::Kind::vlan) next->vlans[m.vlan] = id + 1;
    }
    MemberEntry& e = next->members[id];
    for (uint8_t r = 0; r < e.count; ++r) {
      if (e.refs[r].profile == profile) {
        return Error{label + " is already a member of another active block of profile '" +
                     profile_names_[profile] + "'"};
      }
    }
    if (e.count == refs_per_member) {
      return Error{label + " is already in " + std::to_string(refs_per_member) + " active blocks"};
    }
    e.refs[e.count++] = {active->slot, profile};
    active->members.push_back({m, label, id * refs_per_member + (e.count - 1u)});
  }
  std::sort(next->macs.begin(), next->macs.end());

  // Meter: rates in bytes per second, split between rx lcores. rte_meter wants both rates
  // positive; no minimum means nothing is green, no maximum that nothing is red.
  const uint64_t n = rx_lcores_;
  const uint64_t cir = spec.min_rate ? std::max<uint64_t>(1, spec.min_rate / 8 / n) : 1;
  const uint64_t pir = spec.max_rate ? std::max<uint64_t>(cir, spec.max_rate / 8 / n)
                                     : std::max<uint64_t>(cir, uint64_t(1) << 40);
  const auto depth = [&](uint64_t rate) {
    const long double b =
        static_cast<long double>(rate) * static_cast<long double>(burst_ns_) / 1e9L;
    return static_cast<uint64_t>(
        std::clamp<long double>(b, 2048.0L, static_cast<long double>(1ull << 32)));
  };
  // Without a minimum the committed bucket holds one byte: no packet is ever green.
  rte_meter_trtcm_params params{cir, pir, spec.min_rate ? depth(cir) : 1, depth(pir)};
  BlockEntry& b = next->blocks[active->slot];
  if (int ret = rte_meter_trtcm_profile_config(&b.meter, &params); ret != 0) {
    return Error{"block '" + spec.id + "': meter refused its rates: " + rte_strerror(-ret)};
  }
  b.active = true;
  b.profile = profile;
  b.serial = active->serial;
  if (Status s = rebuild_lpm6(*next); !s) return Error{s.error()};

  // The slot and new entries are unused (freed only after a grace period), so their meters
  // and counters can be set before the snapshot that uses them is published.
  for (auto& l : lcores_) {
    rte_meter_trtcm_config(&l->meters[active->slot], &b.meter);
    for (int c = 0; c < 3; ++c) {
      l->blocks[active->slot].packets[c].reset();
      l->blocks[active->slot].bytes[c].reset();
    }
    l->dropped[active->slot].packets.reset();
    l->dropped[active->slot].bytes.reset();
    for (const auto& m : active->members) {
      for (int c = 0; c < 3; ++c) {
        l->members[m.counter].packets[c].reset();
        l->members[m.counter].bytes[c].reset();
      }
    }
  }
  // New IPv4 routes point at entries the published snapshot leaves empty, so readers that
  // find them before the new snapshot see no block.
  for (size_t i = 0; i < new_v4.size(); ++i) {
    uint32_t addr;
    std::memcpy(&addr, new_v4[i].first.address.bytes.data(), 4);
    if (int ret =
            rte_lpm_add(lpm4_, rte_be_to_cpu_32(addr), new_v4[i].first.length, new_v4[i].second);
        ret != 0) {
      for (size_t j = 0; j < i; ++j) {  // leave no route to an entry that stays free
        std::memcpy(&addr, new_v4[j].first.address.bytes.data(), 4);
        rte_lpm_delete(lpm4_, rte_be_to_cpu_32(addr), new_v4[j].first.length);
      }
      return Error{"cannot add " + config::format_prefix(new_v4[i].first) +
                   " to the IPv4 member table: " + rte_strerror(-ret)};
    }
  }
  // Nothing can fail from here: commit the control plane's bookkeeping.
  free_slots_.pop_back();
  free_members_.resize(free_members_.size() - new_members.size());
  for (const auto& [label, mid] : new_members)
    member_by_label_[label] = mid;
  const uint64_t serial = active->serial;
  Active& a = *active;
  active_[spec.id] = std::move(active);
  if (Status s = publish(std::move(next)); !s) return Error{s.error()};
  // Active from when every rx lcore can see it.
  a.start_ns = wall_clock_ns();
  return serial;
}

BlockUsage Metering::sum_usage(const Active& a) const {
  BlockUsage u;
  u.id = a.id;
  u.serial = a.serial;
  u.start_ns = a.start_ns;
  u.min_rate = a.min_rate;
  u.max_rate = a.max_rate;
  for (const auto& l : lcores_) {
    for (int c = 0; c < 3; ++c) {
      u.total.packets[c] += l->blocks[a.slot].packets[c].get();
      u.total.bytes[c] += l->blocks[a.slot].bytes[c].get();
    }
    u.dropped_packets += l->dropped[a.slot].packets.get();
    u.dropped_bytes += l->dropped[a.slot].bytes.get();
  }
  for (const auto& m : a.members) {
    ColourTotals t;
    for (const auto& l : lcores_) {
      for (int c = 0; c < 3; ++c) {
        t.packets[c] += l->members[m.counter].packets[c].get();
        t.bytes[c] += l->members[m.counter].bytes[c].get();
      }
    }
    u.members.emplace_back(m.label, t);
  }
  return u;
}

Result<BlockUsage> Metering::usage(const std::string& id) const {
  auto it = active_.find(id);
  if (it == active_.end()) return Error{"no active block '" + id + "'"};
  return sum_usage(*it->second);
}

std::vector<std::string> Metering::active() const {
  std::vector<std::string> out;
  for (const auto& [id, a] : active_)
    out.push_back(id);
  return out;
}

Result<BlockUsage> Metering::deactivate(const std::string& id) {
  auto it = active_.find(id);
  if (it == active_.end()) return Error{"no active block '" + id + "'"};
  const Active& a = *it->second;
  auto next = std::make_unique<MeterSnapshot>(*owned_);
  next->blocks[a.slot] = BlockEntry{};
  std::vector<uint32_t> freed;
  std::vector<config::IpPrefix> v4_removed;
  for (const auto& member : a.members) {
    const uint32_t mid = member.counter / refs_per_member;
    MemberEntry& e = next->members[mid];
    // Drop this block's reference, keeping the others in place.
    MemberEntry kept;
    for (uint8_t r = 0; r < e.count; ++r) {
      if (e.refs[r].slot != a.slot) kept.refs[kept.count++] = e.refs[r];
    }
    e = kept;
    if (e.count > 0) continue;
    freed.push_back(mid);
    member_by_label_.erase(member.label);
    next->macs.erase(std::remove_if(next->macs.begin(), next->macs.end(),
                                    [mid](const auto& p) { return p.second == mid; }),
                     next->macs.end());
    for (auto& v : next->vlans) {
      if (v == mid + 1) v = 0;
    }
    for (auto r = next->routes6.begin(); r != next->routes6.end();) {
      r = r->second == mid ? next->routes6.erase(r) : r + 1;
    }
    if (member.id.kind == MemberId::Kind::ip && member.id.ip.address.family == 4) {
      v4_removed.push_back(member.id.ip);
    }
  }
  if (Status s = rebuild_lpm6(*next); !s) return Error{s.error()};
  // A remaining stale IPv4 route can only point at an entry that no longer names this
  // block, so the route is deleted after the snapshot without the block is published.
  if (Status s = publish(std::move(next)); !s) return Error{s.error()};
  for (const auto& p : v4_removed) {
    uint32_t addr;
    std::memcpy(&addr, p.address.bytes.data(), 4);
    rte_lpm_delete(lpm4_, rte_be_to_cpu_32(addr), p.length);
  }
  // publish() waited for every rx lcore: the slot and entries are no longer touched.
  BlockUsage final_usage = sum_usage(a);
  final_usage.end_ns = wall_clock_ns();
  free_slots_.push_back(a.slot);
  for (uint32_t mid : freed)
    free_members_.push_back(mid);
  active_.erase(it);
  return final_usage;
}

MeterVerdict Metering::meter(unsigned rx, const MeterSnapshot& s, const PacketInfo& info,
                             const uint8_t* frame, uint32_t profile, uint32_t bytes, uint64_t now) {
  // Candidate members in a fixed order: source address, destination address, source MAC,
  // destination MAC, outer VLAN. The first with a block of this profile decides.
  uint32_t candidates[5];
  unsigned n = 0;
  uint32_t hop;
  if (info.family == 4) {
    uint32_t a;
    std::memcpy(&a, info.src.data(), 4);
    if (rte_lpm_lookup(lpm4_, rte_be_to_cpu_32(a), &hop) == 0) candidates[n++] = hop;
    std::memcpy(&a, info.dst.data(), 4);
    if (rte_lpm_lookup(lpm4_, rte_be_to_cpu_32(a), &hop) == 0) candidates[n++] = hop;
  } else if (info.family == 6 && s.lpm6 != nullptr) {
    if (rte_lpm6_lookup(s.lpm6, info.src.data(), &hop) == 0) candidates[n++] = hop;
    if (rte_lpm6_lookup(s.lpm6, info.dst.data(), &hop) == 0) candidates[n++] = hop;
  }
  if (!s.macs.empty()) {
    for (const uint8_t* mac : {frame + 6, frame}) {
      const uint64_t k = mac_key(mac);
      auto it = std::lower_bound(s.macs.begin(), s.macs.end(), std::make_pair(k, uint32_t(0)));
      if (it != s.macs.end() && it->first == k) candidates[n++] = it->second;
    }
  }
  if (info.vlan_count > 0 && s.vlans[info.outer_vlan & 0xfff] != 0) {
    candidates[n++] = s.vlans[info.outer_vlan & 0xfff] - 1;
  }
  for (unsigned i = 0; i < n; ++i) {
    if (candidates[i] >= s.members.size()) continue;  // an IPv4 route newer than this snapshot
    const MemberEntry& e = s.members[candidates[i]];
    for (uint8_t r = 0; r < e.count; ++r) {
      if (e.refs[r].profile != profile) continue;
      const uint16_t slot = e.refs[r].slot;
      const BlockEntry& b = s.blocks[slot];
      if (!b.active) continue;
      Lcore& l = *lcores_[rx];
      const auto colour = static_cast<uint8_t>(rte_meter_trtcm_color_blind_check(
          &l.meters[slot], const_cast<rte_meter_trtcm_profile*>(&b.meter), now, bytes));
      l.blocks[slot].packets[colour].add(1);
      l.blocks[slot].bytes[colour].add(bytes);
      ColourCounters& mc = l.members[candidates[i] * refs_per_member + r];
      mc.packets[colour].add(1);
      mc.bytes[colour].add(bytes);
      return {true, colour, slot, b.serial};
    }
  }
  return {};
}

void Metering::count_drop(unsigned rx, uint16_t slot, uint32_t bytes) {
  DropCounters& d = lcores_[rx]->dropped[slot];
  d.packets.add(1);
  d.bytes.add(bytes);
}

}  // namespace segx::dataplane
