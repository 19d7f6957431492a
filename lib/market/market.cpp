#include "market/market.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "market/auction.hpp"

namespace segx::market {

using nlohmann::json;

int64_t SystemClock::now_ns() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

MarketOptions market_options(const config::Config& c) {
  MarketOptions o;
  o.role = c.market.role == "moderator"   ? MarketRole::moderator
           : c.market.role == "appliance" ? MarketRole::appliance
                                          : MarketRole::standalone;
  o.appliance = c.market.appliance;
  o.rate_share = c.market.rate_share;
  o.provider_id = c.providers.id;
  o.currency = c.market.currency;
  o.rating_window_ns = c.market.rating_window.count();
  o.bids_per_lot = c.market.bids_per_lot;
  o.charge_retries = c.market.gateway.retries;
  for (const auto& p : c.profiles)
    if (p.metered) o.profiles.insert(p.name);
  o.subscribers = c.subscribers;
  return o;
}

// ---- state ------------------------------------------------------------------------------

struct Market::State {
  std::map<uint64_t, Lot> lots;
  std::unordered_map<uint64_t, Bid> bids;
  std::map<uint64_t, Group> groups;
  std::map<uint64_t, Lease> leases;
  std::vector<Charge> charges;  // charge id = index + 1
  std::map<uint64_t, Rating> ratings;
  std::map<std::string, std::vector<uint64_t>> ratings_of;                // rated principal
  std::map<std::pair<uint64_t, std::string>, uint64_t> provider_rated;    // (lease, by)
  std::map<std::pair<uint64_t, std::string>, uint64_t> recipient_rating;  // (lease, of)
  std::set<uint64_t> noted;  // recipient ratings the provider has added its note to
  std::map<std::pair<uint64_t, std::string>, uint64_t> bid_of;  // (lot, bidder) -> latest bid
  uint64_t next_lease = 1;
  // Ids of lots, bids (and groups) and ratings, in the order the market took them: a bid's
  // id is its place in the tie-break. Kept in the events, so replay gives the same ids.
  uint64_t next_id = 1;
  uint64_t take_id() { return next_id++; }
  void saw_id(uint64_t id) { next_id = std::max(next_id, id + 1); }
  uint64_t replayed = 0;
  uint64_t applied_seq = 0;  // the last ledger event read back (open or catch_up)
};

namespace {

constexpr int64_t ns_per_s = 1'000'000'000;

// Appends `v` as a JSON string. The bid is the market's most frequent event, so its body is
// written directly rather than built as a json object first (most of a bid's cost).
void append_json_string(std::string& out, std::string_view v) {
  out += '"';
  for (const char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

json members_json(const std::vector<config::MemberConfig>& ms) {
  json a = json::array();
  for (const auto& m : ms)
    a.push_back(format_member(m));
  return a;
}

std::vector<config::MemberConfig> members_from(const json& a) {
  std::vector<config::MemberConfig> out;
  for (const auto& s : a) {
    auto m = parse_member(s.get<std::string>());
    if (m) out.push_back(m.value());
  }
  return out;
}

std::string time_text(int64_t ns) {
  const std::time_t t = static_cast<std::time_t>(ns / ns_per_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A group's bid counts at most what its members have pledged, per block.
Money effective_price(const Market::State& st, const Bid& b) {
  if (b.group == 0) return b.price;
  auto g = st.groups.find(b.group);
  if (g == st.groups.end()) return 0;
  return std::min(b.price, g->second.pledged() / std::max<uint32_t>(b.quantity, 1));
}

// Splits `total` over pledges pro rata, in whole minor units: floor shares, then the units
// left over one each to the largest remainders (ties: principal id order). Sums to total.
std::vector<std::pair<std::string, Money>> split_pro_rata(
    const std::map<std::string, Pledge>& pledges, Money total) {
  std::vector<std::pair<std::string, Money>> shares;
  Money sum = 0;
  for (const auto& [who, p] : pledges)
    sum += p.amount;
  if (sum <= 0 || total <= 0) return shares;
  std::vector<std::pair<__int128, size_t>> remainders;
  Money given = 0;
  for (const auto& [who, p] : pledges) {
    if (p.amount <= 0) continue;
    const __int128 num = static_cast<__int128>(total) * p.amount;
    const Money share = static_cast<Money>(num / sum);
    remainders.push_back({num % sum, shares.size()});
    shares.push_back({who, share});
    given += share;
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t i = 0; given < total && i < remainders.size(); ++i, ++given)
    shares[remainders[i].second].second += 1;
  return shares;
}

json usage_json(const Usage& u) {
  json members = json::object();
  for (const auto& [label, b] : u.member_bytes)
    members[label] = {b[0], b[1], b[2]};
  return {{"active_ns", u.active_ns},
          {"packets", {u.packets[0], u.packets[1], u.packets[2]}},
          {"bytes", {u.bytes[0], u.bytes[1], u.bytes[2]}},
          {"members", members}};
}

Usage usage_from(const json& j) {
  Usage u;
  u.active_ns = j.value("active_ns", int64_t{0});
  for (int i = 0; i < 3; ++i) {
    u.packets[i] = j.at("packets").at(static_cast<size_t>(i)).get<uint64_t>();
    u.bytes[i] = j.at("bytes").at(static_cast<size_t>(i)).get<uint64_t>();
  }
  for (const auto& [label, b] : j.at("members").items())
    u.member_bytes[label] = {b.at(0).get<uint64_t>(), b.at(1).get<uint64_t>(),
                             b.at(2).get<uint64_t>()};
  return u;
}

void add_usage(Usage& to, const Usage& u) {
  to.active_ns += u.active_ns;
  for (int i = 0; i < 3; ++i) {
    to.packets[i] += u.packets[i];
    to.bytes[i] += u.bytes[i];
  }
  for (const auto& [label, b] : u.member_bytes) {
    auto& t = to.member_bytes[label];
    for (int i = 0; i < 3; ++i)
      t[static_cast<size_t>(i)] += b[static_cast<size_t>(i)];
  }
}

// The evidence kept beside a provider rating: what the block carried against what its
// minimum rate promised over the time it was active.
json evidence_json(const Lease& l) {
  const uint64_t promised =
      static_cast<uint64_t>(static_cast<__int128>(l.min_rate) * l.usage.active_ns / 8 / ns_per_s);
  return {{"active_ns", l.usage.active_ns},   {"green_bytes", l.usage.bytes[0]},
          {"yellow_bytes", l.usage.bytes[1]}, {"red_bytes", l.usage.bytes[2]},
          {"min_rate", l.min_rate},           {"min_rate_bytes", promised}};
}

bool is_party(const Lease& l, const std::string& principal) {
  return std::find(l.recipients.begin(), l.recipients.end(), principal) != l.recipients.end();
}

}  // namespace

// ---- applying events: the one place state changes, live and at replay -------------------

namespace {

void apply_lot_created(Market::State& st, uint64_t id, int64_t time_ns, const std::string& provider,
                       const LotSpec& spec) {
  Lot lot;
  lot.id = id;
  lot.provider = provider;
  lot.spec = spec;
  lot.created_ns = time_ns;
  lot.closes_ns = spec.closes_ns;
  st.lots[id] = std::move(lot);
}

void apply_bid(Market::State& st, Bid bid, int64_t extends_to) {
  Lot& lot = st.lots.at(bid.lot);
  lot.bids.push_back(bid.id);
  if (extends_to > lot.closes_ns) lot.closes_ns = extends_to;
  st.bid_of[{bid.lot, bid.bidder}] = bid.id;
  const uint64_t id = bid.id;
  st.bids[id] = std::move(bid);
  if (lot.spec.format == Format::ascending) {
    const Bid& b = st.bids[id];
    const Money p = effective_price(st, b);
    if (lot.leader == 0 || p > lot.leading_price) {
      lot.leader = id;
      lot.leading_price = p;
    }
  }
}

// The leader of an ascending lot, after a pledge changed what a group's bid is worth.
void refresh_leader(Market::State& st, Lot& lot) {
  if (lot.spec.format != Format::ascending) return;
  lot.leader = 0;
  lot.leading_price = 0;
  for (uint64_t id : lot.bids) {
    const Money p = effective_price(st, st.bids.at(id));
    if (lot.leader == 0 || p > lot.leading_price) {
      lot.leader = id;
      lot.leading_price = p;
    }
  }
}

LotSpec lot_spec_from(const json& j) {
  LotSpec s;
  s.profile = j.at("profile");
  s.start_ns = j.at("start_ns");
  s.duration_ns = j.at("duration_ns");
  s.min_rate = j.at("min_rate");
  s.max_rate = j.at("max_rate");
  s.max_members = j.at("max_members");
  s.quantity = j.at("quantity");
  s.reserve = j.at("reserve");
  s.max_price = j.at("max_price");
  s.format = parse_format(j.at("format").get<std::string>()).value();
  s.closes_ns = j.at("closes_ns");
  s.soft_close_ns = j.at("soft_close_ns");
  s.max_extension_ns = j.at("max_extension_ns");
  s.increment = j.at("increment");
  s.min_recipient_wilson = j.at("min_recipient_wilson");
  s.min_recipient_ratings = j.at("min_recipient_ratings");
  return s;
}

json lot_spec_json(const LotSpec& s) {
  return {{"profile", s.profile},
          {"start_ns", s.start_ns},
          {"duration_ns", s.duration_ns},
          {"min_rate", s.min_rate},
          {"max_rate", s.max_rate},
          {"max_members", s.max_members},
          {"quantity", s.quantity},
          {"reserve", s.reserve},
          {"max_price", s.max_price},
          {"format", format_name(s.format)},
          {"closes_ns", s.closes_ns},
          {"soft_close_ns", s.soft_close_ns},
          {"max_extension_ns", s.max_extension_ns},
          {"increment", s.increment},
          {"min_recipient_wilson", s.min_recipient_wilson},
          {"min_recipient_ratings", s.min_recipient_ratings}};
}

// Closing a lot: the awards become leases and the leases' charges are due.
struct LeaseAward {
  uint64_t lease = 0;
  uint64_t bid = 0;
  uint32_t units = 0;
  Money unit_price = 0;
  std::vector<std::pair<std::string, Money>> payers;  // payer -> amount
};

void apply_lot_closed(Market::State& st, uint64_t lot_id, Outcome outcome, Money clearing,
                      const std::vector<LeaseAward>& awards) {
  Lot& lot = st.lots.at(lot_id);
  lot.state = LotState::closed;
  lot.outcome = outcome;
  lot.clearing_price = clearing;
  for (const LeaseAward& a : awards) {
    const Bid& bid = st.bids.at(a.bid);
    Lease l;
    l.id = a.lease;
    l.lot = lot_id;
    l.bid = a.bid;
    l.provider = lot.provider;
    l.bidder = bid.bidder;
    l.recipients.push_back(bid.bidder);
    l.units = a.units;
    l.unit_price = a.unit_price;
    l.profile = lot.spec.profile;
    l.start_ns = lot.spec.start_ns;
    l.end_ns = lot.spec.start_ns + lot.spec.duration_ns;
    l.min_rate = lot.spec.min_rate * a.units;
    l.max_rate = lot.spec.max_rate * a.units;
    if (bid.group != 0) {
      // Every member of the group is served, sponsored or not.
      const Group& g = st.groups.at(bid.group);
      for (const GroupMember& gm : g.members) {
        if (!is_party(l, gm.principal)) l.recipients.push_back(gm.principal);
        l.members.insert(l.members.end(), gm.members.begin(), gm.members.end());
      }
    } else {
      l.members = bid.members;
    }
    for (const auto& [payer, amount] : a.payers) {
      Charge c;
      c.id = st.charges.size() + 1;
      c.lease = l.id;
      c.payer = payer;
      c.amount = amount;
      if (bid.group != 0) {
        c.payment_token = st.groups.at(bid.group).pledges.at(payer).payment_token;
      } else {
        c.payment_token = bid.payment_token;
      }
      c.idempotency_key = "segx-lease-" + std::to_string(l.id) + "-" + payer;
      l.charges.push_back(c.id);
      st.charges.push_back(std::move(c));
    }
    st.next_lease = std::max(st.next_lease, l.id + 1);
    st.leases[l.id] = std::move(l);
  }
}

void apply_rating(Market::State& st, Rating r) {
  st.ratings_of[r.of].push_back(r.id);
  if (r.kind == RatingKind::provider) {
    st.provider_rated[{r.lease, r.by}] = r.id;
  } else {
    st.recipient_rating[{r.lease, r.of}] = r.id;
  }
  st.ratings[r.id] = std::move(r);
}

// A charge's final answer; settlement's answer is also the provider's rating of the payer.
void apply_charge(Market::State& st, uint64_t rating_id, int64_t time_ns, uint64_t charge_id,
                  ChargeResult result, const std::string& reference, const std::string& reason,
                  uint32_t attempts) {
  Charge& c = st.charges.at(charge_id - 1);
  c.result = result;
  c.reference = reference;
  c.reason = reason;
  c.attempts = attempts;
  Lease& l = st.leases.at(c.lease);
  if (result == ChargeResult::accepted || result == ChargeResult::declined) {
    Rating r;
    r.id = rating_id;
    r.lease = c.lease;
    r.kind = RatingKind::recipient;
    r.by = l.provider;
    r.of = c.payer;
    r.positive = result == ChargeResult::accepted;
    r.comment = result == ChargeResult::accepted ? "paid" : "charge declined: " + reason;
    r.time_ns = time_ns;
    apply_rating(st, std::move(r));
  }
  bool pending = false, paid = false;
  for (uint64_t id : l.charges) {
    pending |= st.charges[id - 1].result == ChargeResult::pending;
    paid |= st.charges[id - 1].result == ChargeResult::accepted;
  }
  if (!pending && !paid && l.state == LeaseState::awarded) l.state = LeaseState::unpaid;
}

}  // namespace

// ---- open and replay --------------------------------------------------------------------

// The market writes every id, count, time and amount as a JSON integer, and floating point
// only for fractions (min_recipient_wilson, 0 to 1). json's get<integer>() of a float is a
// plain cast, undefined once the value is out of the integer's range (1.8e25 into int64_t):
// a journal holding such a number is refused like any other event that cannot be read.
namespace {
void check_numbers(const json& j) {
  if (j.is_structured()) {
    for (const auto& v : j)
      check_numbers(v);
  } else if (j.is_number_float()) {
    const double d = j.get<double>();
    if (!(d >= 0 && d <= 1)) throw std::out_of_range("number " + j.dump() + " out of range");
  }
}
}  // namespace

Market::Market(MarketOptions options, ledger::Ledger& ledger, PaymentGateway& gateway,
               const Clock& clock)
    : options_(std::move(options)),
      ledger_(ledger),
      gateway_(gateway),
      clock_(clock),
      state_(std::make_unique<State>()) {}

Market::~Market() = default;

// Applies committed events from `from` on, in ledger order; at open every event, later
// (catch_up) only those another process wrote. Returns the first that cannot be read.
Status Market::apply_committed(uint64_t from, bool all) {
  State& st = *state_;
  std::string failure;
  Status s = ledger_.scan(from, [&](const ledger::Event& e) {
    st.applied_seq = e.seq;
    try {
      const json j = json::parse(e.body);
      check_numbers(j);
      // Activations and usage belong to the appliance that wrote them; everything else to
      // the market's moderator. What this process wrote it has applied already.
      const bool per_appliance = e.type == "activation" || e.type == "usage";
      const std::string writer = per_appliance ? j.value("appliance", std::string("local")) : "";
      const bool mine =
          per_appliance ? writer == options_.appliance : options_.role != MarketRole::appliance;
      if (!all && mine) return true;
      if (e.type == "lot_created") {
        const uint64_t id = j.at("id");
        st.saw_id(id);
        apply_lot_created(st, id, e.time_ns, j.at("provider"), lot_spec_from(j));
      } else if (e.type == "lot_cancelled") {
        Lot& lot = st.lots.at(j.at("lot").get<uint64_t>());
        lot.state = LotState::cancelled;
        lot.outcome = Outcome::cancelled;
      } else if (e.type == "bid") {
        Bid b;
        b.id = j.at("id");
        st.saw_id(b.id);
        b.lot = j.at("lot");
        b.bidder = j.at("bidder");
        b.device = j.value("device", "");
        b.price = j.at("price");
        b.quantity = j.at("quantity");
        b.members = members_from(j.at("members"));
        b.payment_token = j.at("payment_token");
        b.time_ns = e.time_ns;
        b.group = j.value("group", uint64_t{0});
        apply_bid(st, std::move(b), j.value("extends_to", int64_t{0}));
      } else if (e.type == "group_created") {
        Group g;
        g.id = j.at("id");
        st.saw_id(g.id);
        g.lot = j.at("lot");
        g.organizer = j.at("organizer");
        for (const auto& gm : j.at("members"))
          g.members.push_back({gm.at("principal"), members_from(gm.at("members"))});
        Bid b;
        b.id = g.id;
        b.lot = g.lot;
        b.bidder = g.organizer;
        b.price = j.at("price");
        b.quantity = j.at("quantity");
        b.time_ns = e.time_ns;
        b.group = g.id;
        st.groups[g.id] = std::move(g);
        apply_bid(st, std::move(b), j.value("extends_to", int64_t{0}));
      } else if (e.type == "pledge") {
        Group& g = st.groups.at(j.at("group").get<uint64_t>());
        g.pledges[j.at("principal")] = Pledge{j.at("amount"), j.at("payment_token")};
        refresh_leader(st, st.lots.at(g.lot));
      } else if (e.type == "pledge_withdrawn") {
        Group& g = st.groups.at(j.at("group").get<uint64_t>());
        g.pledges.erase(j.at("principal").get<std::string>());
        refresh_leader(st, st.lots.at(g.lot));
      } else if (e.type == "lot_closed") {
        std::vector<LeaseAward> awards;
        for (const auto& a : j.at("leases")) {
          LeaseAward la{a.at("lease").get<uint64_t>(),
                        a.at("bid").get<uint64_t>(),
                        a.at("units").get<uint32_t>(),
                        a.at("unit_price").get<Money>(),
                        {}};
          for (const auto& p : a.at("charges"))
            la.payers.push_back({p.at("payer").get<std::string>(), p.at("amount").get<Money>()});
          awards.push_back(std::move(la));
        }
        Outcome o = Outcome::none;
        for (Outcome c : {Outcome::awarded, Outcome::partially_awarded, Outcome::reserve_not_met,
                          Outcome::no_bids})
          if (outcome_name(c) == j.at("outcome").get<std::string>()) o = c;
        apply_lot_closed(st, j.at("lot"), o, j.at("clearing_price"), awards);
      } else if (e.type == "activation") {
        // Another appliance's block says nothing about this one's data plane.
        Lease& l = st.leases.at(j.at("lease").get<uint64_t>());
        if (mine && j.value("ok", true)) l.state = LeaseState::active;
      } else if (e.type == "usage") {
        // Usage adds up over every appliance that carried the block's members.
        Lease& l = st.leases.at(j.at("lease").get<uint64_t>());
        add_usage(l.usage, usage_from(j.at("usage")));
        if (mine)
          l.state = j.at("final").get<bool>() ? LeaseState::finished : LeaseState::suspended;
      } else if (e.type == "charge") {
        st.saw_id(j.at("rating").get<uint64_t>());
        apply_charge(st, j.at("rating"), e.time_ns, j.at("charge"),
                     j.at("result") == "accepted"   ? ChargeResult::accepted
                     : j.at("result") == "declined" ? ChargeResult::declined
                                                    : ChargeResult::error,
                     j.value("reference", ""), j.value("reason", ""), j.at("attempts"));
      } else if (e.type == "rating") {
        Rating r;
        r.id = j.at("id");
        st.saw_id(r.id);
        r.lease = j.at("lease");
        r.kind = RatingKind::provider;
        r.by = j.at("by");
        r.of = j.at("of");
        r.device = j.value("device", "");
        r.positive = j.at("positive");
        r.score = j.value("score", uint8_t{0});
        r.comment = j.value("comment", "");
        r.time_ns = e.time_ns;
        apply_rating(st, std::move(r));
      } else if (e.type == "rating_note") {
        const uint64_t id = j.at("rating");
        st.ratings.at(id).comment = j.at("note");
        st.noted.insert(id);
      } else if (e.type == "token_issued" || e.type == "token_revoked") {
        // The API's grants of access (lib/api) share the journal but are not market state.
      } else {
        failure = "event " + std::to_string(e.seq) + ": unknown type '" + e.type + "'";
        return false;
      }
    } catch (const std::exception& ex) {
      failure = "event " + std::to_string(e.seq) + " (" + e.type + ") cannot be read: " + ex.what();
      return false;
    }
    ++st.replayed;
    return true;
  });
  if (!s) return s;
  if (!failure.empty()) return Error{"ledger " + ledger_.describe() + ": " + failure};
  return {};
}

Result<std::unique_ptr<Market>> Market::open(MarketOptions options, ledger::Ledger& ledger,
                                             PaymentGateway& gateway, const Clock& clock) {
  std::unique_ptr<Market> m(new Market(std::move(options), ledger, gateway, clock));
  if (Status s = m->apply_committed(1, true); !s) return Error{s.error()};
  // A new process has a fresh data plane: leases that were active are not metered until
  // tick() activates them again.
  for (auto& [id, l] : m->state_->leases)
    if (l.state == LeaseState::active) l.state = LeaseState::suspended;
  return m;
}

Status Market::catch_up() {
  std::unique_lock lock(mutex_);
  return apply_committed(state_->applied_seq + 1, false);
}

Status Market::check_moderator() const {
  if (options_.role == MarketRole::appliance)
    return Error{
        "this segx is an appliance (market.role: appliance): it takes no market "
        "requests; send them to the moderator"};
  return {};
}

// ---- changes ------------------------------------------------------------------------------

namespace {

Status check_members(const MarketOptions& o, const std::vector<config::MemberConfig>& ms) {
  using K = config::MemberConfig::Kind;
  for (const auto& m : ms) {
    if (m.kind == K::device || m.kind == K::subscriber || m.kind == K::phone) {
      bool found = false;
      for (const auto& s : o.subscribers) {
        if (m.kind == K::subscriber && s.id == m.name) found = true;
        for (const auto& d : s.devices) {
          if (m.kind == K::device && d.id == m.name) found = true;
          if (m.kind == K::phone && !d.ips.empty() &&
              std::find(d.phones.begin(), d.phones.end(), m.name) != d.phones.end())
            found = true;
        }
      }
      if (!found)
        return Error{"member " + format_member(m) +
                     (m.kind == K::phone ? " belongs to no subscriber device with an address"
                                         : " is not a registered subscriber or device")};
    }
  }
  return {};
}

}  // namespace

Result<uint64_t> Market::create_lot(const Actor& actor, const LotSpec& s) {
  if (Status m = check_moderator(); !m) return Error{m.error()};
  if (actor.role != Role::provider && actor.role != Role::admin)
    return Error{"only a provider or an admin can put a lot up for sale"};
  const std::string provider = actor.role == Role::admin ? options_.provider_id : actor.id;
  const int64_t now = clock_.now_ns();
  if (!options_.profiles.count(s.profile)) {
    std::string known;
    for (const auto& p : options_.profiles)
      known += (known.empty() ? "" : ", ") + p;
    return Error{"profile '" + s.profile +
                 "' is not sold here (metered profiles: " + (known.empty() ? "none" : known) + ")"};
  }
  if (s.duration_ns <= 0) return Error{"duration must be positive"};
  if (s.closes_ns <= now) return Error{"closing time " + time_text(s.closes_ns) + " has passed"};
  const int64_t latest_close =
      s.closes_ns + (s.format == Format::ascending ? s.max_extension_ns : 0);
  if (s.start_ns < latest_close)
    return Error{"blocks must start after bidding can end (" + time_text(latest_close) + ")"};
  if (s.max_rate != 0 && s.max_rate < s.min_rate) return Error{"max_rate is below min_rate"};
  if (s.quantity < 1 || s.quantity > 100000) return Error{"quantity must be 1 to 100000"};
  if (s.format != Format::uniform && s.quantity != 1)
    return Error{std::string(format_name(s.format)) + " auctions sell one block; use uniform for " +
                 std::to_string(s.quantity)};
  if (s.max_members < 1) return Error{"max_members must be at least 1"};
  if (s.reserve < 0) return Error{"reserve must not be negative"};
  if (s.max_price < 0 || (s.max_price != 0 && s.max_price < s.reserve))
    return Error{"max_price must be at least the reserve"};
  if (s.increment < 1) return Error{"increment must be at least 1"};
  if (s.format != Format::ascending && (s.soft_close_ns != 0 || s.max_extension_ns != 0))
    return Error{"soft close applies to ascending auctions only"};
  if (s.soft_close_ns < 0 || s.max_extension_ns < 0)
    return Error{"soft close must not be negative"};
  if (!(s.min_recipient_wilson >= 0 && s.min_recipient_wilson <= 1))
    return Error{"min_recipient_wilson must be from 0 to 1"};

  json body = lot_spec_json(s);
  body["provider"] = provider;
  body["currency"] = options_.currency;
  std::unique_lock lock(mutex_);
  const uint64_t id = state_->next_id;
  body["id"] = id;
  auto ticket = ledger_.append("lot_created", body.dump(), now);
  if (!ticket) return Error{ticket.error()};
  state_->take_id();
  apply_lot_created(*state_, id, now, provider, s);
  lock.unlock();
  if (Status d = ledger_.wait_durable(ticket.value()); !d) return Error{d.error()};
  return id;
}

Status Market::cancel_lot(const Actor& actor, uint64_t lot_id) {
  if (Status m = check_moderator(); !m) return Error{m.error()};
  std::unique_lock lock(mutex_);
  auto it = state_->lots.find(lot_id);
  if (it == state_->lots.end()) return Error{"no lot " + std::to_string(lot_id)};
  Lot& lot = it->second;
  if (actor.role != Role::admin && !(actor.role == Role::provider && actor.id == lot.provider))
    return Error{"only the lot's provider or an admin can cancel it"};
  if (lot.state != LotState::open)
    return Error{"lot " + std::to_string(lot_id) + " is " + std::string(lot_state_name(lot.state))};
  const int64_t now = clock_.now_ns();
  auto ticket =
      ledger_.append("lot_cancelled", json{{"lot", lot_id}, {"by", actor.id}}.dump(), now);
  if (!ticket) return Error{ticket.error()};
  lot.state = LotState::cancelled;
  lot.outcome = Outcome::cancelled;
  lock.unlock();
  return ledger_.wait_durable(ticket.value());
}

Result<Bid> Market::place_bid(const Actor& actor, const BidSpec& spec) {
  auto pending = submit_bid(actor, spec);
  if (!pending) return Error{pending.error()};
  if (Status d = ledger_.wait_durable(pending.value().ticket); !d) return Error{d.error()};
  return std::move(pending).value().bid;
}

namespace {

// Rules every bid (and group) meets, checked under the market's lock. Returns the new close
// if a soft close extends it, 0 if not.
Result<int64_t> check_bid(const Market::State& st, const MarketOptions& o, const Actor& actor,
                          const Lot& lot, Money price, uint32_t quantity, size_t members,
                          int64_t now, const std::function<ledger::Reputation()>& reputation) {
  const std::string& who = actor.principal();
  if (actor.role != Role::recipient && actor.role != Role::device)
    return Error{"only recipients (or their devices) bid; a " + std::string(role_name(actor.role)) +
                 " cannot"};
  if (who == lot.provider || actor.owner == lot.provider)
    return Error{"a provider and its principals cannot bid on its own lot"};
  if (lot.state != LotState::open || now >= lot.closes_ns)
    return Error{"lot " + std::to_string(lot.id) + " is closed to bids (closed at " +
                 time_text(lot.closes_ns) + ")"};
  if (lot.bids.size() >= o.bids_per_lot)
    return Error{"lot " + std::to_string(lot.id) + " has reached its limit of " +
                 std::to_string(o.bids_per_lot) + " bids"};
  if (price < 0) return Error{"price must not be negative"};
  if (lot.spec.max_price != 0 && price > lot.spec.max_price)
    return Error{"price " + std::to_string(price) + " is above the lot's maximum of " +
                 std::to_string(lot.spec.max_price)};
  if (quantity < 1 || quantity > lot.spec.quantity)
    return Error{"quantity must be 1 to " + std::to_string(lot.spec.quantity)};
  if (members == 0) return Error{"a bid names at least one member to serve"};
  if (members > static_cast<size_t>(lot.spec.max_members) * quantity)
    return Error{std::to_string(members) + " members is more than the " +
                 std::to_string(lot.spec.max_members * quantity) + " this lot allows"};
  if (lot.spec.format != Format::ascending && st.bid_of.count({lot.id, who}))
    return Error{"already bid on sealed lot " + std::to_string(lot.id) + ": sealed bids are final"};
  if (lot.spec.format == Format::ascending && lot.leader != 0) {
    if (st.bids.at(lot.leader).bidder == who)
      return Error{"already leading lot " + std::to_string(lot.id)};
    if (price < lot.leading_price + lot.spec.increment)
      return Error{"price must be at least " +
                   std::to_string(lot.leading_price + lot.spec.increment) +
                   " (leading bid plus the increment)"};
  }
  if (lot.spec.min_recipient_wilson > 0 || lot.spec.min_recipient_ratings > 0) {
    const ledger::Reputation r = reputation();
    if (r.wilson_lower < lot.spec.min_recipient_wilson || r.count < lot.spec.min_recipient_ratings)
      return Error{"lot " + std::to_string(lot.id) +
                   " requires a recipient reputation of at least " +
                   std::to_string(lot.spec.min_recipient_wilson) + " (Wilson lower bound) over " +
                   std::to_string(lot.spec.min_recipient_ratings) + " ratings; " + who + " has " +
                   std::to_string(r.wilson_lower) + " over " + std::to_string(r.count)};
  }
  int64_t extends_to = 0;
  if (lot.spec.format == Format::ascending && lot.closes_ns - now < lot.spec.soft_close_ns) {
    const int64_t cap = lot.spec.closes_ns + lot.spec.max_extension_ns;
    extends_to = std::min(now + lot.spec.soft_close_ns, cap);
    if (extends_to <= lot.closes_ns) extends_to = 0;
  }
  return extends_to;
}

ledger::Reputation reputation_in(const Market::State& st, const std::string& principal,
                                 RatingKind kind, int64_t since) {
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

}  // namespace

Result<PendingBid> Market::submit_bid(const Actor& actor, const BidSpec& spec) {
  if (Status m = check_moderator(); !m) return Error{m.error()};
  if (Status s = check_members(options_, spec.members); !s) return Error{s.error()};
  if (spec.payment_token.empty() && spec.price > 0) return Error{"a bid needs a payment_token"};
  const int64_t now = clock_.now_ns();
  std::unique_lock lock(mutex_);
  State& st = *state_;
  auto it = st.lots.find(spec.lot);
  if (it == st.lots.end()) return Error{"no lot " + std::to_string(spec.lot)};
  const Lot& lot = it->second;
  auto ext =
      check_bid(st, options_, actor, lot, spec.price, spec.quantity, spec.members.size(), now, [&] {
        return reputation_in(st, actor.principal(), RatingKind::recipient,
                             now - options_.reputation_window_ns);
      });
  if (!ext) return Error{ext.error()};
  Bid b;
  b.lot = spec.lot;
  b.bidder = actor.principal();
  if (actor.role == Role::device) b.device = actor.id;
  b.price = spec.price;
  b.quantity = spec.quantity;
  b.members = spec.members;
  b.payment_token = spec.payment_token;
  b.time_ns = now;
  // Keys in sorted order, as json::dump() writes them, so every event reads the same way.
  std::string body;
  body.reserve(160 + 40 * b.members.size());
  b.id = st.next_id;
  body += "{\"bidder\":";
  append_json_string(body, b.bidder);
  if (!b.device.empty()) {
    body += ",\"device\":";
    append_json_string(body, b.device);
  }
  if (ext.value() != 0) body += ",\"extends_to\":" + std::to_string(ext.value());
  body += ",\"id\":" + std::to_string(b.id);
  body += ",\"lot\":" + std::to_string(b.lot) + ",\"members\":[";
  for (size_t i = 0; i < b.members.size(); ++i) {
    if (i) body += ',';
    append_json_string(body, format_member(b.members[i]));
  }
  body += "],\"payment_token\":";
  append_json_string(body, b.payment_token);
  body +=
      ",\"price\":" + std::to_string(b.price) + ",\"quantity\":" + std::to_string(b.quantity) + "}";
  auto ticket = ledger_.append("bid", std::move(body), now);
  if (!ticket) return Error{ticket.error()};
  st.take_id();
  apply_bid(st, b, ext.value());
  return PendingBid{std::move(b), ticket.value()};
}

Result<Group> Market::create_group(const Actor& actor, const GroupSpec& spec) {
  if (Status m = check_moderator(); !m) return Error{m.error()};
  size_t identifiers = 0;
  for (const GroupMember& gm : spec.members) {
    if (gm.principal.empty()) return Error{"every group member names its principal"};
    if (Status s = check_members(options_, gm.members); !s) return Error{s.error()};
    identifiers += gm.members.size();
  }
  const int64_t now = clock_.now_ns();
  std::unique_lock lock(mutex_);
  State& st = *state_;
  auto it = st.lots.find(spec.lot);
  if (it == st.lots.end()) return Error{"no lot " + std::to_string(spec.lot)};
  const Lot& lot = it->second;
  for (const GroupMember& gm : spec.members)
    if (gm.principal == lot.provider)
      return Error{"a provider cannot be a member of a group bidding on its own lot"};
  auto ext = check_bid(st, options_, actor, lot, spec.price, spec.quantity, identifiers, now, [&] {
    return reputation_in(st, actor.principal(), RatingKind::recipient,
                         now - options_.reputation_window_ns);
  });
  if (!ext) return Error{ext.error()};
  Group g;
  g.lot = spec.lot;
  g.organizer = actor.principal();
  g.members = spec.members;
  json members = json::array();
  for (const GroupMember& gm : g.members)
    members.push_back({{"principal", gm.principal}, {"members", members_json(gm.members)}});
  json body = {{"lot", g.lot},
               {"organizer", g.organizer},
               {"price", spec.price},
               {"quantity", spec.quantity},
               {"members", members}};
  if (ext.value() != 0) body["extends_to"] = ext.value();
  g.id = st.next_id;
  body["id"] = g.id;
  auto ticket = ledger_.append("group_created", body.dump(), now);
  if (!ticket) return Error{ticket.error()};
  st.take_id();
  Bid b;
  b.id = g.id;
  b.lot = g.lot;
  b.bidder = g.organizer;
  b.price = spec.price;
  b.quantity = spec.quantity;
  b.time_ns = now;
  b.group = g.id;
  st.groups[g.id] = g;
  apply_bid(st, std::move(b), ext.value());
  lock.unlock();
  if (Status d = ledger_.wait_durable(ticket.value()); !d) return Error{d.error()};
  return g;
}

Status Market::pledge(const Actor& actor, uint64_t group_id, Money amount,
                      const std::string& token) {
  if (Status m = check_moderator(); !m) return Error{m.error()};
  const int64_t now = clock_.now_ns();
  const std::string& who = actor.principal();
  std::unique_lock lock(mutex_);
  State& st = *state_;
  auto it = st.groups.find(group_id);
  if (it == st.groups.end()) return Error{"no group " + std::to_string(group_id)};
  Group& g = it->second;
  Lot& lot = st.lots.at(g.lot);
  const bool member = g.has_member(who);
  if (!member) return Error{who + " is not a member of group " + std::to_string(group_id)};
  if (lot.state != LotState::open || now >= lot.closes_ns)
    return Error{"lot " + std::to_string(lot.id) + " has closed: pledges are final"};
  if (amount <= 0)
    return Error{"a pledge is a positive amount (members who pay nothing are sponsored)"};
  if (token.empty()) return Error{"a pledge needs a payment_token"};
  if (lot.spec.min_recipient_wilson > 0 || lot.spec.min_recipient_ratings > 0) {
    const auto r =
        reputation_in(st, who, RatingKind::recipient, now - options_.reputation_window_ns);
    if (r.wilson_lower < lot.spec.min_recipient_wilson || r.count < lot.spec.min_recipient_ratings)
      return Error{"lot " + std::to_string(lot.id) +
                   " requires a higher recipient reputation than " + who + " has"};
  }
  auto seq = ledger_.append(
      "pledge",
      json{{"group", group_id}, {"principal", who}, {"amount", amount}, {"payment_token", token}}
          .dump(),
      now);
  if (!seq) return Error{seq.error()};
  g.pledges[who] = Pledge{amount, token};
  refresh_leader(st, lot);
  lock.unlock();
  return ledger_.wait_durable(seq.value());
}

Status Market::withdraw_pledge(const Actor& actor, uint64_t group_id) {
  if (Status m = check_moderator(); !m) return Error{m.error()};
  const int64_t now = clock_.now_ns();
  const std::string& who = actor.principal();
  std::unique_lock lock(mutex_);
  State& st = *state_;
  auto it = st.groups.find(group_id);
  if (it == st.groups.end()) return Error{"no group " + std::to_string(group_id)};
  Group& g = it->second;
  Lot& lot = st.lots.at(g.lot);
  if (!g.pledges.count(who))
    return Error{who + " has no pledge in group " + std::to_string(group_id)};
  if (lot.state != LotState::open || now >= lot.closes_ns)
    return Error{"lot " + std::to_string(lot.id) + " has closed: pledges are final"};
  auto seq =
      ledger_.append("pledge_withdrawn", json{{"group", group_id}, {"principal", who}}.dump(), now);
  if (!seq) return Error{seq.error()};
  g.pledges.erase(who);
  refresh_leader(st, lot);
  lock.unlock();
  return ledger_.wait_durable(seq.value());
}

Result<Rating> Market::rate_provider(const Actor& actor, uint64_t lease_id, bool satisfied,
                                     uint8_t score, const std::string& comment) {
  if (Status m = check_moderator(); !m) return Error{m.error()};
  const int64_t now = clock_.now_ns();
  const std::string& who = actor.principal();
  if (actor.role != Role::recipient && actor.role != Role::device)
    return Error{"only a lease's recipients (or their devices) rate its provider"};
  if (score > 5) return Error{"score is 1 to 5 (or absent)"};
  if (comment.size() > 2000) return Error{"comment is longer than 2000 bytes"};
  std::unique_lock lock(mutex_);
  State& st = *state_;
  auto it = st.leases.find(lease_id);
  if (it == st.leases.end()) return Error{"no lease " + std::to_string(lease_id)};
  const Lease& l = it->second;
  if (!is_party(l, who))
    return Error{"only the recipients of lease " + std::to_string(lease_id) +
                 " may rate its provider"};
  if (l.state != LeaseState::finished)
    return Error{"lease " + std::to_string(lease_id) + " has not finished (" +
                 std::string(lease_state_name(l.state)) + "): rate it after its block ends"};
  if (now > l.end_ns + options_.rating_window_ns)
    return Error{"the rating window for lease " + std::to_string(lease_id) + " closed at " +
                 time_text(l.end_ns + options_.rating_window_ns)};
  if (st.provider_rated.count({lease_id, who}))
    return Error{who + " has already rated lease " + std::to_string(lease_id)};
  Rating r;
  r.lease = lease_id;
  r.kind = RatingKind::provider;
  r.by = who;
  r.of = l.provider;
  if (actor.role == Role::device) r.device = actor.id;
  r.positive = satisfied;
  r.score = score;
  r.comment = comment;
  r.time_ns = now;
  json body = {{"lease", lease_id},  {"kind", "provider"},          {"by", r.by},
               {"of", r.of},         {"positive", satisfied},       {"score", score},
               {"comment", comment}, {"evidence", evidence_json(l)}};
  if (!r.device.empty()) body["device"] = r.device;
  r.id = st.next_id;
  body["id"] = r.id;
  auto ticket = ledger_.append("rating", body.dump(), now);
  if (!ticket) return Error{ticket.error()};
  st.take_id();
  apply_rating(st, r);
  lock.unlock();
  if (Status d = ledger_.wait_durable(ticket.value()); !d) return Error{d.error()};
  return r;
}

Result<Rating> Market::note_recipient(const Actor& actor, uint64_t lease_id,
                                      const std::string& recipient, const std::string& note) {
  if (Status m = check_moderator(); !m) return Error{m.error()};
  const int64_t now = clock_.now_ns();
  if (note.empty() || note.size() > 2000) return Error{"a note is 1 to 2000 bytes"};
  std::unique_lock lock(mutex_);
  State& st = *state_;
  auto it = st.leases.find(lease_id);
  if (it == st.leases.end()) return Error{"no lease " + std::to_string(lease_id)};
  const Lease& l = it->second;
  if (!(actor.role == Role::provider && actor.id == l.provider) && actor.role != Role::admin)
    return Error{"only the provider of lease " + std::to_string(lease_id) +
                 " rates its recipients"};
  if (l.state != LeaseState::finished && l.state != LeaseState::unpaid)
    return Error{"lease " + std::to_string(lease_id) + " has not finished"};
  if (now > l.end_ns + options_.rating_window_ns)
    return Error{"the rating window for lease " + std::to_string(lease_id) + " has closed"};
  auto r = st.recipient_rating.find({lease_id, recipient});
  if (r == st.recipient_rating.end())
    return Error{"settlement has not rated " + recipient + " on lease " + std::to_string(lease_id)};
  if (st.noted.count(r->second))
    return Error{"the provider has already rated " + recipient + " on lease " +
                 std::to_string(lease_id)};
  auto seq = ledger_.append(
      "rating_note", json{{"rating", r->second}, {"by", actor.id}, {"note", note}}.dump(), now);
  if (!seq) return Error{seq.error()};
  Rating& rating = st.ratings.at(r->second);
  rating.comment = note;
  st.noted.insert(r->second);
  Rating copy = rating;
  lock.unlock();
  if (Status d = ledger_.wait_durable(seq.value()); !d) return Error{d.error()};
  return copy;
}

// ---- time ---------------------------------------------------------------------------------

std::vector<std::string> Market::tick(Activator* activator) {
  std::vector<std::string> log;
  // Sharing the ledger: first what the moderator or the other appliances have written.
  if (options_.role != MarketRole::standalone) {
    if (Status c = catch_up(); !c) log.push_back("market: reading the shared ledger: " + c.error());
  }
  const int64_t now = clock_.now_ns();
  uint64_t last = 0;
  std::unique_lock lock(mutex_);
  State& st = *state_;
  const auto append = [&](const char* type, const json& body) -> bool {
    auto seq = ledger_.append(type, body.dump(), now);
    if (!seq) {
      log.push_back(std::string("market: ") + type + " not recorded: " + seq.error());
      return false;
    }
    last = seq.value();
    return true;
  };

  for (auto& [id, lot] : st.lots) {
    // Only the market's moderator closes lots; appliances learn the awards from the ledger.
    if (options_.role == MarketRole::appliance) break;
    if (lot.state != LotState::open || now < lot.closes_ns) continue;
    std::vector<Candidate> candidates;
    candidates.reserve(lot.bids.size());
    for (uint64_t b : lot.bids) {
      const Bid& bid = st.bids.at(b);
      candidates.push_back({b, effective_price(st, bid), bid.quantity});
    }
    const Determination d =
        determine(lot.spec.format, lot.spec.quantity, lot.spec.reserve, std::move(candidates));
    std::vector<LeaseAward> awards;
    json leases = json::array();
    for (const Award& a : d.awards) {
      const Bid& bid = st.bids.at(a.bid);
      LeaseAward la{st.next_lease + awards.size(), a.bid, a.units, a.unit_price, {}};
      const Money total = a.unit_price * a.units;
      if (bid.group != 0) {
        la.payers = split_pro_rata(st.groups.at(bid.group).pledges, total);
      } else if (total > 0) {
        la.payers.push_back({bid.bidder, total});
      }
      json charges = json::array();
      for (const auto& [payer, amount] : la.payers)
        charges.push_back({{"payer", payer}, {"amount", amount}});
      leases.push_back({{"lease", la.lease},
                        {"bid", la.bid},
                        {"units", la.units},
                        {"unit_price", la.unit_price},
                        {"charges", charges}});
      awards.push_back(std::move(la));
    }
    if (!append("lot_closed", {{"lot", id},
                               {"outcome", outcome_name(d.outcome)},
                               {"clearing_price", d.clearing_price},
                               {"leases", leases}}))
      break;
    apply_lot_closed(st, id, d.outcome, d.clearing_price, awards);
    log.push_back("lot " + std::to_string(id) + " closed: " + std::string(outcome_name(d.outcome)) +
                  (d.awards.empty() ? ""
                                    : ", " + std::to_string(d.awards.size()) + " lease(s) at " +
                                          std::to_string(d.clearing_price) + " " +
                                          options_.currency + " per block"));
  }

  for (auto& [id, l] : st.leases) {
    const std::string block = "lease-" + std::to_string(id);
    const bool ready = l.state == LeaseState::awarded || l.state == LeaseState::suspended;
    if (ready && now >= l.start_ns) {
      bool pending = false, paid = l.charges.empty();
      for (uint64_t c : l.charges) {
        pending |= st.charges[c - 1].result == ChargeResult::pending;
        paid |= st.charges[c - 1].result == ChargeResult::accepted;
      }
      if (now >= l.end_ns) {
        // Its time ran out before it could be (re)activated: it ends with what it had.
        if (l.state == LeaseState::awarded && !paid && !pending) continue;
        if (!append("usage", {{"lease", id},
                              {"appliance", options_.appliance},
                              {"final", true},
                              {"interrupted", l.state == LeaseState::suspended},
                              {"usage", usage_json(Usage{})}}))
          break;
        l.state = LeaseState::finished;
        log.push_back("lease " + std::to_string(id) + " ended without running to its end");
        continue;
      }
      if (!paid) continue;  // waiting for settlement (or unpaid)
      // With several appliances, each enforces its share of the block's rates (scale-out.md).
      const auto share = [&](uint64_t rate) {
        return static_cast<uint64_t>(static_cast<double>(rate) * options_.rate_share);
      };
      BlockRequest req{block,    l.profile, l.end_ns - now, share(l.min_rate), share(l.max_rate),
                       l.members};
      Status s = activator ? activator->activate(req) : Status{};
      const bool resumed = l.state == LeaseState::suspended;
      json body = {
          {"lease", id}, {"appliance", options_.appliance}, {"ok", s.ok()}, {"resumed", resumed}};
      if (!s) body["error"] = s.error();
      if (!append("activation", body)) break;
      if (s) {
        l.state = LeaseState::active;
        log.push_back("lease " + std::to_string(id) + (resumed ? " resumed" : " active") +
                      " as block " + block + " until " + time_text(l.end_ns));
      } else {
        // Not metered, but its time still runs: it finishes at its end like any other.
        l.state = LeaseState::suspended;
        log.push_back("lease " + std::to_string(id) + " not activated: " + s.error());
      }
    } else if (l.state == LeaseState::active && now >= l.end_ns) {
      Usage u;
      if (activator) {
        auto r = activator->deactivate(block);
        if (r) {
          u = r.value();
        } else {
          log.push_back("lease " + std::to_string(id) + ": usage unavailable: " + r.error());
        }
      } else {
        u.active_ns = l.end_ns - l.start_ns;
      }
      if (!append("usage", {{"lease", id},
                            {"appliance", options_.appliance},
                            {"final", true},
                            {"interrupted", false},
                            {"usage", usage_json(u)}}))
        break;
      add_usage(l.usage, u);
      l.state = LeaseState::finished;
      log.push_back("lease " + std::to_string(id) + " finished: " + std::to_string(u.bytes[0]) +
                    " green bytes, " + std::to_string(u.bytes[1]) + " yellow, " +
                    std::to_string(u.bytes[2]) + " red");
    }
  }
  lock.unlock();
  if (last != 0) {
    if (Status d = ledger_.wait_durable(last); !d)
      log.push_back("market: ledger failed: " + d.error());
  }
  return log;
}

std::vector<std::string> Market::suspend(Activator* activator) {
  std::vector<std::string> log;
  const int64_t now = clock_.now_ns();
  uint64_t last = 0;
  std::unique_lock lock(mutex_);
  for (auto& [id, l] : state_->leases) {
    if (l.state != LeaseState::active) continue;
    Usage u;
    if (activator) {
      auto r = activator->deactivate("lease-" + std::to_string(id));
      if (r) u = r.value();
    }
    auto seq = ledger_.append("usage",
                              json{{"lease", id},
                                   {"appliance", options_.appliance},
                                   {"final", false},
                                   {"interrupted", true},
                                   {"usage", usage_json(u)}}
                                  .dump(),
                              now);
    if (!seq) {
      log.push_back("market: usage of lease " + std::to_string(id) +
                    " not recorded: " + seq.error());
      continue;
    }
    last = seq.value();
    add_usage(l.usage, u);
    l.state = LeaseState::suspended;
    log.push_back("lease " + std::to_string(id) + " suspended at shutdown");
  }
  lock.unlock();
  if (last != 0) ledger_.wait_durable(last);
  return log;
}

size_t Market::settle() {
  std::lock_guard settling(settle_mutex_);
  std::vector<Charge> due;
  {
    std::shared_lock lock(mutex_);
    for (const Charge& c : state_->charges)
      if (c.result == ChargeResult::pending) due.push_back(c);
  }
  size_t settled = 0;
  for (const Charge& c : due) {
    ChargeRequest req{c.idempotency_key, c.lease,  c.payer,
                      c.payment_token,   c.amount, options_.currency};
    ChargeResponse resp;
    uint32_t attempts = 0;
    // Errors are retried with the same key: the gateway charges a key at most once.
    do {
      resp = gateway_.charge(req);
      ++attempts;
    } while (resp.result == ChargeResult::error && attempts <= options_.charge_retries);
    const int64_t now = clock_.now_ns();
    std::unique_lock lock(mutex_);
    const uint64_t rating_id = state_->next_id;
    auto seq = ledger_.append("charge",
                              json{{"charge", c.id},
                                   {"rating", rating_id},
                                   {"lease", c.lease},
                                   {"payer", c.payer},
                                   {"amount", c.amount},
                                   {"currency", options_.currency},
                                   {"result", charge_result_name(resp.result)},
                                   {"reference", resp.reference},
                                   {"reason", resp.reason},
                                   {"attempts", attempts},
                                   {"idempotency_key", c.idempotency_key}}
                                  .dump(),
                              now);
    if (!seq) break;
    state_->take_id();
    apply_charge(*state_, rating_id, now, c.id, resp.result, resp.reference, resp.reason, attempts);
    lock.unlock();
    if (!ledger_.wait_durable(seq.value())) break;
    ++settled;
  }
  return settled;
}

// ---- queries ------------------------------------------------------------------------------

std::vector<LotView> Market::lots() const {
  std::shared_lock lock(mutex_);
  std::vector<LotView> out;
  const int64_t since = clock_.now_ns() - options_.reputation_window_ns;
  for (const auto& [id, lot] : state_->lots)
    out.push_back(
        {lot, reputation_in(*state_, lot.provider, RatingKind::provider, since), lot.bids.size()});
  return out;
}

Result<LotView> Market::lot(uint64_t id) const {
  std::shared_lock lock(mutex_);
  auto it = state_->lots.find(id);
  if (it == state_->lots.end()) return Error{"no lot " + std::to_string(id)};
  const int64_t since = clock_.now_ns() - options_.reputation_window_ns;
  return LotView{it->second,
                 reputation_in(*state_, it->second.provider, RatingKind::provider, since),
                 it->second.bids.size()};
}

Result<std::vector<BidView>> Market::bids(const Actor& viewer, uint64_t lot_id) const {
  std::shared_lock lock(mutex_);
  const State& st = *state_;
  auto it = st.lots.find(lot_id);
  if (it == st.lots.end()) return Error{"no lot " + std::to_string(lot_id)};
  const Lot& lot = it->second;
  // Sealed bids stay sealed, before and after close, to all but the lot's provider and
  // admins; an ascending auction is open outcry.
  const bool all = viewer.role == Role::admin ||
                   (viewer.role == Role::provider && viewer.id == lot.provider) ||
                   lot.spec.format == Format::ascending;
  const int64_t since = clock_.now_ns() - options_.reputation_window_ns;
  std::vector<BidView> out;
  for (uint64_t id : lot.bids) {
    const Bid& b = st.bids.at(id);
    if (!all && b.bidder != viewer.principal()) continue;
    BidView v{b, reputation_in(st, b.bidder, RatingKind::recipient, since), effective_price(st, b)};
    // Payment tokens are for the gateway, not for anyone looking.
    v.bid.payment_token.clear();
    out.push_back(std::move(v));
  }
  return out;
}

Result<Group> Market::group(const Actor& viewer, uint64_t id) const {
  std::shared_lock lock(mutex_);
  auto it = state_->groups.find(id);
  if (it == state_->groups.end()) return Error{"no group " + std::to_string(id)};
  const Group& g = it->second;
  const std::string& who = viewer.principal();
  const bool member = g.has_member(who);
  if (!member && viewer.role != Role::admin &&
      !(viewer.role == Role::provider && state_->lots.at(g.lot).provider == viewer.id))
    return Error{"group " + std::to_string(id) + " is visible to its members only"};
  Group copy = g;
  for (auto& [p, pl] : copy.pledges)
    pl.payment_token.clear();
  return copy;
}

namespace {
bool sees_lease(const Actor& viewer, const Lease& l) {
  return viewer.role == Role::admin || (viewer.role == Role::provider && viewer.id == l.provider) ||
         is_party(l, viewer.principal());
}
}  // namespace

std::vector<Lease> Market::leases(const Actor& viewer) const {
  std::shared_lock lock(mutex_);
  std::vector<Lease> out;
  for (const auto& [id, l] : state_->leases)
    if (sees_lease(viewer, l)) out.push_back(l);
  return out;
}

Result<Lease> Market::lease(const Actor& viewer, uint64_t id) const {
  std::shared_lock lock(mutex_);
  auto it = state_->leases.find(id);
  if (it == state_->leases.end() || !sees_lease(viewer, it->second))
    return Error{"no lease " + std::to_string(id)};
  return it->second;
}

std::vector<Charge> Market::charges(const Actor& viewer, uint64_t lease_id) const {
  std::shared_lock lock(mutex_);
  std::vector<Charge> out;
  auto it = state_->leases.find(lease_id);
  if (it == state_->leases.end() || !sees_lease(viewer, it->second)) return out;
  for (uint64_t c : it->second.charges) {
    Charge ch = state_->charges[c - 1];
    ch.payment_token.clear();
    if (viewer.role == Role::admin || viewer.id == it->second.provider ||
        ch.payer == viewer.principal())
      out.push_back(std::move(ch));
  }
  return out;
}

std::vector<Rating> Market::ratings_of(const std::string& principal) const {
  std::shared_lock lock(mutex_);
  std::vector<Rating> out;
  if (auto it = state_->ratings_of.find(principal); it != state_->ratings_of.end())
    for (uint64_t id : it->second)
      out.push_back(state_->ratings.at(id));
  return out;
}

std::vector<Rating> Market::ratings_for_lease(uint64_t lease) const {
  std::shared_lock lock(mutex_);
  std::vector<Rating> out;
  for (const auto& [id, r] : state_->ratings)
    if (r.lease == lease) out.push_back(r);
  return out;
}

PrincipalReputation Market::reputation(const std::string& principal) const {
  std::shared_lock lock(mutex_);
  const int64_t since = clock_.now_ns() - options_.reputation_window_ns;
  return {principal, reputation_in(*state_, principal, RatingKind::provider, since),
          reputation_in(*state_, principal, RatingKind::recipient, since)};
}

MarketStats Market::stats() const {
  std::shared_lock lock(mutex_);
  const State& st = *state_;
  MarketStats s;
  s.lots = st.lots.size();
  for (const auto& [id, l] : st.lots)
    s.open_lots += l.state == LotState::open;
  s.bids = st.bids.size();
  s.groups = st.groups.size();
  s.leases = st.leases.size();
  for (const auto& [id, l] : st.leases)
    s.active_leases += l.state == LeaseState::active;
  for (const Charge& c : st.charges) {
    s.charges_accepted += c.result == ChargeResult::accepted;
    s.charges_declined += c.result == ChargeResult::declined;
    s.charges_error += c.result == ChargeResult::error;
    s.charges_pending += c.result == ChargeResult::pending;
  }
  s.ratings = st.ratings.size();
  s.replayed_events = st.replayed;
  return s;
}

}  // namespace segx::market
