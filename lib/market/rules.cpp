#include "market/rules.hpp"

#include <algorithm>
#include <ctime>

#include "config/units.hpp"

namespace segx::market {

std::optional<Money> money_mul(Money a, uint64_t b) {
  if (a < 0) return std::nullopt;
  __int128 p = static_cast<__int128>(a) * b;
  if (p > max_money) return std::nullopt;
  return static_cast<Money>(p);
}

std::optional<Money> money_add(Money a, Money b) {
  if (a < 0 || b < 0 || a > max_money - b) return std::nullopt;
  return a + b;
}

std::optional<int64_t> time_add(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

std::string time_text(int64_t ns) {
  int64_t s = ns / 1'000'000'000;
  if (ns % 1'000'000'000 < 0) --s;
  const std::time_t t = static_cast<std::time_t>(s);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return std::to_string(ns) + " ns";
  char buf[48];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// ---- identifiers ---------------------------------------------------------------------------

std::string Ident::label() const {
  switch (kind) {
    case Kind::ip:
      return "ip " + config::format_prefix(ip);
    case Kind::mac:
      return "mac " + config::format_mac(mac);
    case Kind::vlan:
      return "vlan " + std::to_string(vlan);
  }
  return "?";
}

bool overlaps(const Ident& a, const Ident& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Ident::Kind::ip:
      return config::prefixes_overlap(a.ip, b.ip);
    case Ident::Kind::mac:
      return a.mac == b.mac;
    case Ident::Kind::vlan:
      return a.vlan == b.vlan;
  }
  return false;
}

Holdings::Holdings(std::vector<config::SubscriberConfig> subscribers)
    : subscribers_(std::move(subscribers)) {
  for (const auto& s : subscribers_) {
    by_id_[s.id] = &s;
    Holder& h = holders_[s.id];
    h.prefixes.insert(h.prefixes.end(), s.prefixes.begin(), s.prefixes.end());
    h.macs.insert(h.macs.end(), s.macs.begin(), s.macs.end());
    h.vlans.insert(h.vlans.end(), s.vlans.begin(), s.vlans.end());
    for (const auto& d : s.devices) {
      devices_[d.id] = &d;
      h.devices.push_back(d.id);
      h.prefixes.insert(h.prefixes.end(), d.ips.begin(), d.ips.end());
      h.macs.insert(h.macs.end(), d.macs.begin(), d.macs.end());
      h.vlans.insert(h.vlans.end(), d.vlans.begin(), d.vlans.end());
      for (const auto& p : d.phones) {
        h.phones.push_back(p);
        phones_[p].push_back(&d);
      }
    }
  }
}

Status Holdings::check_held(const std::string& principal,
                            const std::vector<config::MemberConfig>& members) const {
  using K = config::MemberConfig::Kind;
  auto it = holders_.find(principal);
  const Holder* h = it == holders_.end() ? nullptr : &it->second;
  const auto has = [](const auto& list, const auto& x) {
    return std::find(list.begin(), list.end(), x) != list.end();
  };
  for (const auto& m : members) {
    bool held = false;
    switch (m.kind) {
      case K::subscriber:
        held = m.name == principal && h != nullptr;
        break;
      case K::device:
        held = h && has(h->devices, m.name);
        break;
      case K::phone:
        held = h && has(h->phones, m.name);
        break;
      case K::ip:
        held = h && std::any_of(h->prefixes.begin(), h->prefixes.end(),
                                [&](const auto& p) { return config::prefix_contains(p, m.ip); });
        break;
      case K::mac:
        held = h && has(h->macs, m.mac);
        break;
      case K::vlan:
        held = h && has(h->vlans, m.vlan);
        break;
    }
    if (!held)
      return forbidden("member " + format_member(m) + " is not held by " + principal +
                       ": a bid names only its bidder's own subscriber entry, devices and "
                       "telephone numbers, and addresses, MACs and VLANs inside what the "
                       "configuration grants it (subscribers)");
    if (m.kind == K::phone) {
      const auto& devs = phones_.at(m.name);
      if (std::none_of(devs.begin(), devs.end(), [](auto* d) { return !d->ips.empty(); }))
        return invalid("member " + format_member(m) +
                       " belongs to no subscriber device with an address, so its traffic "
                       "cannot be metered");
    }
  }
  return {};
}

std::vector<Ident> Holdings::expand(const std::vector<config::MemberConfig>& members) const {
  using K = config::MemberConfig::Kind;
  std::vector<Ident> out;
  const auto add_device = [&](const config::DeviceConfig& d) {
    for (const auto& p : d.ips)
      out.push_back({Ident::Kind::ip, p, {}, 0});
    for (const auto& m : d.macs)
      out.push_back({Ident::Kind::mac, {}, m, 0});
    for (uint16_t v : d.vlans)
      out.push_back({Ident::Kind::vlan, {}, {}, v});
  };
  for (const auto& m : members) {
    switch (m.kind) {
      case K::ip:
        out.push_back({Ident::Kind::ip, m.ip, {}, 0});
        break;
      case K::mac:
        out.push_back({Ident::Kind::mac, {}, m.mac, 0});
        break;
      case K::vlan:
        out.push_back({Ident::Kind::vlan, {}, {}, m.vlan});
        break;
      case K::phone:
        if (auto it = phones_.find(m.name); it != phones_.end())
          for (const auto* d : it->second)
            for (const auto& p : d->ips)
              out.push_back({Ident::Kind::ip, p, {}, 0});
        break;
      case K::device:
        if (auto it = devices_.find(m.name); it != devices_.end()) add_device(*it->second);
        break;
      case K::subscriber:
        if (auto it = by_id_.find(m.name); it != by_id_.end())
          for (const auto& d : it->second->devices)
            add_device(d);
        break;
    }
  }
  return out;
}

std::optional<std::string> lease_overlap(const State& st, const Holdings& holdings, int64_t start,
                                         int64_t end, const std::vector<Ident>& idents) {
  for (uint64_t id : st.live_leases) {
    const Lease& l = st.leases.at(id);
    if (!(l.start_ns < end && start < l.end_ns)) continue;
    for (const Ident& theirs : holdings.expand(l.members)) {
      for (const Ident& mine : idents) {
        if (overlaps(mine, theirs))
          return mine.label() + " overlaps " + theirs.label() +
                 " of another lease whose block runs from " + time_text(l.start_ns) + " to " +
                 time_text(l.end_ns) + ": leases at the same time never share an identifier";
      }
    }
  }
  return std::nullopt;
}

// ---- lots, bids, pledges --------------------------------------------------------------------

Status check_lot_spec(const LotSpec& s, const MarketOptions& o, int64_t now) {
  if (!o.profiles.count(s.profile)) {
    std::string known;
    for (const auto& p : o.profiles)
      known += (known.empty() ? "" : ", ") + p;
    return invalid("profile '" + s.profile + "' is not sold here (metered profiles: " +
                   (known.empty() ? "none" : known) + ")");
  }
  if (s.duration_ns <= 0) return invalid("duration must be positive");
  if (s.closes_ns <= now) return invalid("closing time " + time_text(s.closes_ns) + " has passed");
  if (s.soft_close_ns < 0 || s.max_extension_ns < 0)
    return invalid("soft close must not be negative");
  if (s.format != Format::ascending && (s.soft_close_ns != 0 || s.max_extension_ns != 0))
    return invalid("soft close applies to ascending auctions only");
  const auto latest_close =
      time_add(s.closes_ns, s.format == Format::ascending ? s.max_extension_ns : 0);
  if (!latest_close) return invalid("closing time plus max_extension is out of range");
  if (s.start_ns < *latest_close)
    return invalid("blocks must start after bidding can end (" + time_text(*latest_close) + ")");
  if (!time_add(s.start_ns, s.duration_ns)) return invalid("start plus duration is out of range");
  if (s.quantity < 1 || s.quantity > 100000) return invalid("quantity must be 1 to 100000");
  if (s.format != Format::uniform && s.quantity != 1)
    return invalid(std::string(format_name(s.format)) +
                   " auctions sell one block; use uniform for " + std::to_string(s.quantity));
  if (s.max_rate != 0 && s.max_rate < s.min_rate) return invalid("max_rate is below min_rate");
  // A lease's rates are the lot's times the blocks it wins.
  if (s.max_rate > UINT64_MAX / s.quantity || s.min_rate > UINT64_MAX / s.quantity)
    return invalid("rates times quantity are out of range");
  if (s.max_members < 1) return invalid("max_members must be at least 1");
  if (s.reserve < 0 || s.reserve > max_money)
    return invalid("reserve must be 0 to " + std::to_string(max_money));
  if (s.max_price < 0 || s.max_price > max_money || (s.max_price != 0 && s.max_price < s.reserve))
    return invalid("max_price must be at least the reserve and at most " +
                   std::to_string(max_money));
  if (s.increment < 1 || s.increment > max_money)
    return invalid("increment must be 1 to " + std::to_string(max_money));
  if (!(s.min_recipient_wilson >= 0 && s.min_recipient_wilson <= 1))
    return invalid("min_recipient_wilson must be from 0 to 1");
  return {};
}

ledger::Reputation reputation_in(const State& st, const std::string& principal, RatingKind kind,
                                 int64_t since) {
  uint64_t count = 0, positive = 0;
  if (auto it = st.ratings_of.find(principal); it != st.ratings_of.end()) {
    for (uint64_t id : it->second) {
      const Rating& r = st.ratings.at(id);
      if (r.kind != kind || r.time_ns < since) continue;
      ++count;
      positive += r.positive ? 1 : 0;
    }
  }
  return ledger::make_reputation(positive, count);
}

int64_t soft_close_extension(const Lot& lot, int64_t now) {
  if (lot.spec.format != Format::ascending || lot.spec.soft_close_ns == 0) return 0;
  if (lot.closes_ns - now >= lot.spec.soft_close_ns) return 0;
  // Both sums were checked when the lot was created (closes + max_extension) or are below
  // that bound (now < closes).
  const int64_t cap = lot.spec.closes_ns + lot.spec.max_extension_ns;
  const int64_t to = std::min(time_add(now, lot.spec.soft_close_ns).value_or(cap), cap);
  return to > lot.closes_ns ? to : 0;
}

namespace {

Status check_reputation(const State& st, const MarketOptions& o, const Lot& lot,
                        const std::string& who, int64_t now) {
  if (lot.spec.min_recipient_wilson <= 0 && lot.spec.min_recipient_ratings == 0) return {};
  const ledger::Reputation r =
      reputation_in(st, who, RatingKind::recipient, now - o.reputation_window_ns);
  if (r.wilson_lower < lot.spec.min_recipient_wilson || r.count < lot.spec.min_recipient_ratings)
    return rule("lot " + std::to_string(lot.id) + " requires a recipient reputation of at least " +
                std::to_string(lot.spec.min_recipient_wilson) + " (Wilson lower bound) over " +
                std::to_string(lot.spec.min_recipient_ratings) + " ratings; " + who + " has " +
                std::to_string(r.wilson_lower) + " over " + std::to_string(r.count));
  return {};
}

Status check_open(const Lot& lot, int64_t now, const char* what) {
  if (lot.state != LotState::open || now >= lot.closes_ns)
    return conflict("lot " + std::to_string(lot.id) + " is closed to " + what + " (" +
                    std::string(lot.state == LotState::cancelled
                                    ? "cancelled"
                                    : "closed at " + time_text(lot.closes_ns)) +
                    ")");
  return {};
}

}  // namespace

Result<int64_t> check_bid(const State& st, const MarketOptions& o, const Actor& actor,
                          const Lot& lot, Money price, uint32_t quantity, size_t members,
                          int64_t now) {
  const std::string& who = actor.principal();
  if (actor.role != Role::recipient && actor.role != Role::device)
    return forbidden("only recipients (or their devices) bid; a " +
                     std::string(role_name(actor.role)) + " cannot");
  if (who == lot.provider || actor.owner == lot.provider)
    return forbidden("a provider and its principals cannot bid on its own lot");
  if (Status s = check_open(lot, now, "bids"); !s) return s.failure();
  if (price < 0 || price > max_money)
    return invalid("price must be 0 to " + std::to_string(max_money));
  if (quantity < 1 || quantity > lot.spec.quantity)
    return invalid("quantity must be 1 to " + std::to_string(lot.spec.quantity));
  if (!money_mul(price, quantity))
    return invalid("price " + std::to_string(price) + " times quantity " +
                   std::to_string(quantity) + " is more than the largest amount, " +
                   std::to_string(max_money));
  if (members == 0) return invalid("a bid names at least one member to serve");
  if (lot.spec.format != Format::ascending && has_bid(st, lot.id, who))
    return conflict("already bid on sealed lot " + std::to_string(lot.id) +
                    ": sealed bids are final");
  if (lot.bids.size() >= o.bids_per_lot)
    return rule("lot " + std::to_string(lot.id) + " has reached its limit of " +
                std::to_string(o.bids_per_lot) + " bids");
  if (lot.spec.max_price != 0 && price > lot.spec.max_price)
    return rule("price " + std::to_string(price) + " is above the lot's maximum of " +
                std::to_string(lot.spec.max_price));
  const uint64_t allowed = uint64_t{lot.spec.max_members} * quantity;
  if (members > allowed)
    return rule(std::to_string(members) + " members is more than the " + std::to_string(allowed) +
                " this lot allows");
  if (lot.spec.format == Format::ascending && lot.leader != 0) {
    if (st.bids.at(lot.leader).bidder == who)
      return rule("already leading lot " + std::to_string(lot.id));
    const auto least = money_add(lot.leading_price, lot.spec.increment);
    if (!least || price < *least)
      return rule("price must be at least " +
                  (least ? std::to_string(*least) : std::string("the largest amount")) +
                  " (leading bid plus the increment)");
  }
  if (Status s = check_reputation(st, o, lot, who, now); !s) return s.failure();
  return soft_close_extension(lot, now);
}

Result<int64_t> check_pledge(const State& st, const MarketOptions& o, const std::string& who,
                             const Group& g, const Lot& lot, Money amount, int64_t now,
                             bool withdrawal) {
  if (lot.state != LotState::open || now >= lot.closes_ns)
    return conflict("lot " + std::to_string(lot.id) + " has closed: pledges are final");
  auto mine = g.pledges.find(who);
  const Money before = mine == g.pledges.end() ? 0 : mine->second.amount;
  if (withdrawal && mine == g.pledges.end())
    return conflict(who + " has no pledge in group " + std::to_string(g.id));
  if (amount < 0 || amount > max_money)
    return invalid("amount must be 0 to " + std::to_string(max_money));
  // The group's total after the change must be an amount the market can hold.
  Money others = 0;
  for (const auto& [p, pl] : g.pledges) {
    if (p == who) continue;
    auto sum = money_add(others, pl.amount);
    if (!sum) return invalid("the group's pledges add up to more than the largest amount");
    others = *sum;
  }
  const auto total = money_add(others, amount);
  if (!total)
    return invalid("pledge " + std::to_string(amount) + " would take group " +
                   std::to_string(g.id) + "'s pledges past the largest amount, " +
                   std::to_string(max_money));
  // Joining as sponsored (0) is being served too: the lot's reputation minimum holds.
  if (!withdrawal)
    if (Status s = check_reputation(st, o, lot, who, now); !s) return s.failure();
  if (lot.spec.format != Format::ascending) return 0;

  // Ascending: the group's effective price is its bid.
  const Bid& bid = st.bids.at(g.id);
  const uint32_t q = std::max<uint32_t>(bid.quantity, 1);
  const Money now_price = effective_price(st, bid);
  const Money new_price = std::min(bid.price, *total / q);
  const bool leading = lot.leader == g.id;
  if (leading && amount < before)
    return rule("group " + std::to_string(g.id) + " leads lot " + std::to_string(lot.id) +
                ": its pledges cannot be lowered or withdrawn until another bid beats it");
  if (new_price <= now_price) return 0;
  // A raise is a bid: it must beat the leader by the increment (a group that leads already
  // only raises its own price) and it extends a soft close.
  if (!leading && lot.leader != 0) {
    const auto least = money_add(lot.leading_price, lot.spec.increment);
    if (!least || new_price < *least)
      return rule("this pledge raises group " + std::to_string(g.id) + "'s price to " +
                  std::to_string(new_price) + ", a bid, which must be at least " +
                  (least ? std::to_string(*least) : std::string("the largest amount")) +
                  " (leading bid plus the increment)");
  }
  return soft_close_extension(lot, now);
}

}  // namespace segx::market
