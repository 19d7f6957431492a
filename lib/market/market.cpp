#include "market/market.hpp"

#include "ledger/hash.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <chrono>

namespace segx::market {

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
  o.settlement_deadline_ns = c.market.settlement.deadline.count();
  o.settlement_backoff_ns = c.market.settlement.backoff.count();
  o.settlement_max_backoff_ns = c.market.settlement.max_backoff.count();
  o.activation_attempts = c.market.activation.attempts;
  o.activation_backoff_ns = c.market.activation.backoff.count();
  for (const auto& p : c.profiles)
    if (p.metered) o.profiles.insert(p.name);
  o.subscribers = c.subscribers;
  return o;
}

namespace {

constexpr const char* fingerprint_key_name = "market/fingerprint-key";

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
    return {};
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

Error ledger_failure(const Error& e) {
  return Error{e.message, ErrorKind::unavailable};
}

}  // namespace

Market::Market(MarketOptions options, ledger::Ledger& ledger, PaymentGateway& gateway,
               const Clock& clock)
    : options_(std::move(options)),
      holdings_(std::make_shared<const Holdings>(options_.subscribers)),
      ledger_(ledger),
      gateway_(gateway),
      clock_(clock),
      live_(std::make_unique<State>()),
      durable_(std::make_unique<State>()) {}

Market::~Market() = default;

std::shared_ptr<const Holdings> Market::holdings() const {
  std::lock_guard lock(rules_mutex_);
  return holdings_;
}

bool Market::is_subscriber(const std::string& id) const {
  return holdings()->has_subscriber(id);
}

namespace {

std::vector<std::string> labels(const std::vector<Ident>& idents) {
  std::vector<std::string> out;
  for (const Ident& i : idents)
    out.push_back(i.label());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// Under command_mutex_, so that no lease is awarded between the check and the change.
Status Market::check_rules_locked(const Holdings& next) const {
  const std::shared_ptr<const Holdings> now = holdings();
  for (uint64_t id : live_->live_leases) {
    const Lease& l = live_->leases.at(id);
    if (labels(now->expand(l.members)) != labels(next.expand(l.members)))
      return conflict("lease " + std::to_string(id) + " (until " + time_text(l.end_ns) +
                      ") names members whose identifiers the new subscribers change or remove; "
                      "change them after it has ended");
  }
  return {};
}

Status Market::check_rules(const std::vector<config::SubscriberConfig>& subscribers) const {
  const Holdings next(subscribers);
  std::lock_guard lock(command_mutex_);
  return check_rules_locked(next);
}

Status Market::set_rules(std::set<std::string> profiles,
                         std::vector<config::SubscriberConfig> subscribers) {
  auto next = std::make_shared<const Holdings>(subscribers);
  std::lock_guard lock(command_mutex_);
  sync_locked();
  if (Status s = check_rules_locked(*next); !s) return s;
  options_.profiles = std::move(profiles);
  options_.subscribers = std::move(subscribers);
  std::lock_guard rules(rules_mutex_);
  holdings_ = std::move(next);
  return {};
}

// ---- open and replay ----------------------------------------------------------------------

// Applies committed events from `from` on, in ledger order: at open every event (to durable_,
// then live_ becomes a copy), later (catch_up) only those another process wrote, to both.
// Types another module registered are skipped; a type nobody registered, or an event that
// cannot be read, stops replay with the event's number.
Status Market::replay(uint64_t from, bool all) {
  std::string failure;
  Status s = ledger_.scan(from, [&](const ledger::Event& e) {
    applied_seq_ = e.seq;
    const auto owner = ledger_.event_owner(e.type);
    if (!owner) {
      failure = "event " + std::to_string(e.seq) + ": unknown type '" + e.type + "'";
      return false;
    }
    if (*owner != "market") return true;
    auto ev = decode(e.type, e.body, e.time_ns);
    if (!ev) {
      failure =
          "event " + std::to_string(e.seq) + " (" + e.type + ") cannot be read: " + ev.error();
      return false;
    }
    // Activations and usage belong to the appliance that wrote them; everything else to
    // the market's moderator. What this process wrote it has applied already.
    if (!all) {
      const MarketEvent& m = ev.value();
      bool mine = options_.role != MarketRole::appliance;
      if (auto* a = std::get_if<Activated>(&m)) mine = a->appliance == options_.appliance;
      if (auto* u = std::get_if<UsageRecorded>(&m)) mine = u->appliance == options_.appliance;
      if (mine) return true;
    }
    try {
      apply(*durable_, ev.value(), context(e.time_ns));
      if (!all) apply(*live_, ev.value(), context(e.time_ns));
    } catch (const std::exception& ex) {
      failure = "event " + std::to_string(e.seq) + " (" + e.type + ") cannot be read: " + ex.what();
      return false;
    }
    ++replayed_;
    return true;
  });
  if (!s) return Error{s.error(), ErrorKind::unavailable};
  if (!failure.empty()) return Error{"ledger " + ledger_.describe() + ": " + failure};
  return {};
}

Result<std::unique_ptr<Market>> Market::open(MarketOptions options, ledger::Ledger& ledger,
                                             PaymentGateway& gateway, const Clock& clock) {
  if (Status r = ledger.register_event_types("market", market_event_types()); !r)
    return r.failure();
  std::unique_ptr<Market> m(new Market(std::move(options), ledger, gateway, clock));
  m->live_generation_ = ledger.progress().generation;
  if (Status s = m->replay(1, true); !s) return s.failure();
  *m->live_ = *m->durable_;

  const int64_t now = clock.now_ns();
  std::unique_lock lock(m->command_mutex_);
  uint64_t last = 0;
  auto key = ledger.secret(fingerprint_key_name);
  if (key && key.value()) m->set_fingerprint_key(*key.value());
  if (m->live_->market_id.empty() && m->options_.role != MarketRole::appliance) {
    // A new journal (or one older than the market id) gets the market's identity, and the
    // key its payment-token fingerprints are made with, kept outside the chain.
    const std::string new_key = random_hex(32);
    const std::string id = random_hex(8);
    if (id.empty() || new_key.empty())
      return Error{"no randomness for the market's id (OpenSSL)", ErrorKind::internal};
    m->set_fingerprint_key(new_key);
    auto t =
        m->commit_locked(MarketCreated{id}, now, {ledger::SecretOp{fingerprint_key_name, new_key}});
    if (!t) return t.failure();
    last = t.value();
  }
  if (m->fingerprint_key_.empty()) m->set_fingerprint_key(random_hex(32));
  // A process that stopped without suspending (a crash) left leases active that no data
  // plane meters now: record them as interrupted, so the tick activates them again.
  std::vector<uint64_t> interrupted;
  for (uint64_t id : m->live_->live_leases)
    if (m->live_->leases.at(id).state == LeaseState::active) interrupted.push_back(id);
  for (uint64_t id : interrupted) {
    auto t = m->commit_locked(UsageRecorded{id, m->options_.appliance, false, true, Usage{}}, now);
    if (!t) return t.failure();
    last = t.value();
  }
  lock.unlock();
  if (last != 0)
    if (Status d = m->await(last); !d) return d.failure();
  return m;
}

Status Market::catch_up() {
  std::lock_guard lock(command_mutex_);
  sync_locked();
  std::unique_lock w(state_mutex_);
  return replay(applied_seq_ + 1, false);
}

Status Market::check_moderator() const {
  if (options_.role == MarketRole::appliance)
    return forbidden(
        "this segx is an appliance (market.role: appliance): it takes no market requests; "
        "send them to the moderator");
  return {};
}

// ---- commit -------------------------------------------------------------------------------

Result<uint64_t> Market::commit_locked(MarketEvent e, int64_t time_ns,
                                       std::vector<ledger::SecretOp> secrets) {
  ledger::Event le = encode(e, time_ns);
  le.secrets = std::move(secrets);
  auto ticket = ledger_.append_in(live_generation_, std::move(le));
  if (!ticket) {
    // The ledger moved to a new generation (an earlier event failed) since live_ was last
    // brought in line: undo, and let the caller try again on the true state.
    sync_locked();
    return ledger_failure(ticket.failure());
  }
  apply(*live_, e, context(time_ns));
  pending_.push_back({ticket.value(), time_ns, std::move(e)});
  return ticket;
}

void Market::sync_locked() {
  const ledger::Progress p = ledger_.progress();
  if (p.generation != live_generation_) {
    recover_locked();
    return;
  }
  if (pending_.empty() || pending_.front().ticket > p.resolved) return;
  std::unique_lock w(state_mutex_);
  while (!pending_.empty() && pending_.front().ticket <= p.resolved) {
    apply(*durable_, std::move(pending_.front().event), context(pending_.front().time_ns));
    pending_.pop_front();
  }
}

void Market::recover_locked() {
  // Events appended in the live generation: those before its failed range are durable, the
  // range and everything after it never happened.
  const auto failed = ledger_.failed_in(live_generation_);
  std::unique_lock w(state_mutex_);
  if (!failed) {
    // The record of that failure is gone (thousands of failures since): rebuild both states
    // from the journal itself.
    rolled_back_ += pending_.size();
    pending_.clear();
    durable_ = std::make_unique<State>();
    live_generation_ = ledger_.progress().generation;
    if (Status s = replay(1, true); !s) return;
    *live_ = *durable_;
    return;
  }
  bool dropped = false;
  while (!pending_.empty()) {
    PendingEvent& pe = pending_.front();
    if (pe.ticket < failed->first) {
      apply(*durable_, std::move(pe.event), context(pe.time_ns));
    } else {
      dropped = true;
      ++rolled_back_;
    }
    pending_.pop_front();
  }
  if (dropped) *live_ = *durable_;
  live_generation_ = ledger_.progress().generation;
}

Status Market::await(uint64_t ticket) {
  Status d = ledger_.wait_durable(ticket);
  std::lock_guard lock(command_mutex_);
  sync_locked();
  if (!d) return ledger_failure(d.failure());
  return {};
}

Status Market::wait(uint64_t ticket) {
  return await(ticket);
}

void Market::when_durable(uint64_t ticket, std::function<void(Status)> fn) {
  ledger_.when_durable(ticket, std::move(fn));
}

Status Market::complete(Status d) {
  std::lock_guard lock(command_mutex_);
  sync_locked();
  if (!d) return ledger_failure(d.failure());
  return {};
}

// HMAC-SHA256 (RFC 2104) over the per-thread SHA-256 of the ledger, truncated to 128 bits.
// One-shot HMAC() of OpenSSL 3 fetches the digest and builds a context per call, which cost
// more than the rest of a bid together.
std::string Market::fingerprint(const std::string& token) const {
  if (token.empty()) return {};
  thread_local ledger::Sha256 h;
  h.update(ipad_);
  h.update(token);
  const ledger::Digest inner = h.finish();
  h.update(opad_);
  h.update(inner.data(), inner.size());
  const ledger::Digest mac = h.finish();
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex(32, '0');
  for (size_t i = 0; i < 16; ++i) {
    hex[2 * i] = digits[mac[i] >> 4];
    hex[2 * i + 1] = digits[mac[i] & 15];
  }
  return hex;
}

void Market::set_fingerprint_key(const std::string& key) {
  fingerprint_key_ = key;
  std::string k = key;
  if (k.size() > 64) {
    ledger::Sha256 h;
    h.update(k);
    const ledger::Digest d = h.finish();
    k.assign(reinterpret_cast<const char*>(d.data()), d.size());
  }
  k.resize(64, '\0');
  ipad_ = opad_ = k;
  for (size_t i = 0; i < 64; ++i) {
    ipad_[i] = static_cast<char>(ipad_[i] ^ 0x36);
    opad_[i] = static_cast<char>(opad_[i] ^ 0x5c);
  }
}

std::string Market::market_id() const {
  std::shared_lock r(state_mutex_);
  return durable_->market_id;
}

// ---- changes ------------------------------------------------------------------------------

Result<uint64_t> Market::create_lot(const Actor& actor, const LotSpec& s) {
  if (Status m = check_moderator(); !m) return m.failure();
  if (actor.role != Role::provider && actor.role != Role::admin)
    return forbidden("only a provider or an admin can put a lot up for sale");
  const std::string provider = actor.role == Role::admin ? options_.provider_id : actor.id;
  const int64_t now = clock_.now_ns();
  // Under the lock: a reload (set_rules) replaces the profiles sold.
  std::unique_lock lock(command_mutex_);
  if (Status c = check_lot_spec(s, options_, now); !c) return c.failure();
  sync_locked();
  const uint64_t id = live_->next_id;
  auto t = commit_locked(LotCreated{id, provider, s, options_.currency}, now);
  if (!t) return t.failure();
  lock.unlock();
  if (Status d = await(t.value()); !d) return d.failure();
  return id;
}

Status Market::cancel_lot(const Actor& actor, uint64_t lot_id) {
  if (Status m = check_moderator(); !m) return m;
  const int64_t now = clock_.now_ns();
  std::unique_lock lock(command_mutex_);
  sync_locked();
  auto it = live_->lots.find(lot_id);
  if (it == live_->lots.end()) return not_found("no lot " + std::to_string(lot_id));
  const Lot& lot = it->second;
  if (actor.role != Role::admin && !(actor.role == Role::provider && actor.id == lot.provider))
    return forbidden("only the lot's provider or an admin can cancel it");
  if (lot.state != LotState::open)
    return conflict("lot " + std::to_string(lot_id) + " is " +
                    std::string(lot_state_name(lot.state)));
  // Its bids are void: their payment tokens go.
  std::vector<ledger::SecretOp> erase;
  for (uint64_t b : lot.bids) {
    const Bid& bid = live_->bids.at(b);
    if (bid.group == 0) {
      erase.push_back({bid_token_name(b), std::nullopt});
    } else {
      for (const auto& [who, p] : live_->groups.at(bid.group).pledges)
        erase.push_back({pledge_token_name(bid.group, who), std::nullopt});
    }
  }
  auto t = commit_locked(LotCancelled{lot_id, actor.id}, now, std::move(erase));
  if (!t) return t.failure();
  lock.unlock();
  return await(t.value());
}

Result<Bid> Market::place_bid(const Actor& actor, const BidSpec& spec) {
  auto pending = submit_bid(actor, spec);
  if (!pending) return pending.failure();
  if (Status d = await(pending.value().ticket); !d) return d.failure();
  return std::move(pending).value().bid;
}

Result<PendingBid> Market::submit_bid(const Actor& actor, const BidSpec& spec) {
  if (Status m = check_moderator(); !m) return m.failure();
  if (spec.payment_token.empty() && spec.price > 0) return invalid("a bid needs a payment_token");
  if (spec.payment_token.size() > 512) return invalid("payment_token is longer than 512 bytes");
  // Checked before the lock, on one copy of the holdings (a reload may replace them).
  const std::shared_ptr<const Holdings> holdings = this->holdings();
  if (actor.role == Role::recipient || actor.role == Role::device) {
    if (Status h = holdings->check_held(actor.principal(), spec.members); !h) return h.failure();
  }
  const std::vector<Ident> idents = holdings->expand(spec.members);
  const int64_t now = clock_.now_ns();
  std::unique_lock lock(command_mutex_);
  sync_locked();
  State& st = *live_;
  auto it = st.lots.find(spec.lot);
  if (it == st.lots.end()) return not_found("no lot " + std::to_string(spec.lot));
  const Lot& lot = it->second;
  auto ext =
      check_bid(st, options_, actor, lot, spec.price, spec.quantity, spec.members.size(), now);
  if (!ext) return ext.failure();
  if (idents.empty())
    return invalid("the members select no traffic (a device without identifiers?)");
  if (auto why = lease_overlap(st, *holdings, lot.spec.start_ns,
                               lot.spec.start_ns + lot.spec.duration_ns, idents))
    return rule(*why);
  BidPlaced e;
  Bid& b = e.bid;
  b.id = st.next_id;
  b.lot = spec.lot;
  b.bidder = actor.principal();
  if (actor.role == Role::device) b.device = actor.id;
  b.price = spec.price;
  b.quantity = spec.quantity;
  b.members = spec.members;
  b.token_fp = fingerprint(spec.payment_token);
  b.time_ns = now;
  e.extends_to = ext.value();
  std::vector<ledger::SecretOp> secrets;
  if (!spec.payment_token.empty()) secrets.push_back({bid_token_name(b.id), spec.payment_token});
  PendingBid out{b, 0};
  auto t = commit_locked(std::move(e), now, std::move(secrets));
  if (!t) return t.failure();
  out.ticket = t.value();
  return out;
}

Result<Group> Market::create_group(const Actor& actor, const GroupSpec& spec) {
  if (Status m = check_moderator(); !m) return m.failure();
  size_t identifiers = 0;
  std::vector<Ident> idents;
  std::set<std::string> seen;
  const std::shared_ptr<const Holdings> holdings = this->holdings();
  for (const GroupMember& gm : spec.members) {
    if (gm.principal.empty()) return invalid("every group member names its principal");
    if (!seen.insert(gm.principal).second)
      return invalid("member " + gm.principal + " is listed twice");
    // Each member names only what it holds; the organiser cannot claim others' traffic.
    if (Status s = holdings->check_held(gm.principal, gm.members); !s) return s.failure();
    auto x = holdings->expand(gm.members);
    idents.insert(idents.end(), x.begin(), x.end());
    identifiers += gm.members.size();
  }
  const int64_t now = clock_.now_ns();
  std::unique_lock lock(command_mutex_);
  sync_locked();
  State& st = *live_;
  auto it = st.lots.find(spec.lot);
  if (it == st.lots.end()) return not_found("no lot " + std::to_string(spec.lot));
  const Lot& lot = it->second;
  for (const GroupMember& gm : spec.members)
    if (gm.principal == lot.provider)
      return forbidden("a provider cannot be a member of a group bidding on its own lot");
  auto ext = check_bid(st, options_, actor, lot, spec.price, spec.quantity, identifiers, now);
  if (!ext) return ext.failure();
  if (idents.empty()) return invalid("the members select no traffic");
  if (auto why = lease_overlap(st, *holdings, lot.spec.start_ns,
                               lot.spec.start_ns + lot.spec.duration_ns, idents))
    return rule(*why);
  GroupCreated e;
  e.id = st.next_id;
  e.lot = spec.lot;
  e.organizer = actor.principal();
  e.price = spec.price;
  e.quantity = spec.quantity;
  e.members = spec.members;
  e.extends_to = ext.value();
  // Members other than the organiser take part once they pledge (0: sponsored): nobody is
  // put into a block, and kept out of other bids at that time, without saying so.
  e.consent = true;
  auto t = commit_locked(e, now);
  if (!t) return t.failure();
  lock.unlock();
  if (Status d = await(t.value()); !d) return d.failure();
  Group g;
  g.id = e.id;
  g.lot = e.lot;
  g.organizer = e.organizer;
  g.members = e.members;
  g.consent = e.consent;
  return g;
}

Status Market::pledge(const Actor& actor, uint64_t group_id, Money amount,
                      const std::string& token) {
  if (Status m = check_moderator(); !m) return m;
  if (actor.role != Role::recipient && actor.role != Role::device)
    return forbidden("only a group's members (or their devices) pledge");
  if (amount < 0) return invalid("a pledge is 0 (to join, sponsored) or a positive amount");
  if (amount > 0 && token.empty()) return invalid("a pledge needs a payment_token");
  if (token.size() > 512) return invalid("payment_token is longer than 512 bytes");
  const int64_t now = clock_.now_ns();
  const std::string& who = actor.principal();
  std::unique_lock lock(command_mutex_);
  sync_locked();
  State& st = *live_;
  auto it = st.groups.find(group_id);
  // A group is visible to its members only: to anyone else it does not exist.
  if (it == st.groups.end() || !it->second.has_member(who))
    return not_found("no group " + std::to_string(group_id));
  const Group& g = it->second;
  auto ext = check_pledge(st, options_, who, g, st.lots.at(g.lot), amount, now);
  if (!ext) return ext.failure();
  // A sponsored member pays nothing: no token is kept (and one from an earlier pledge goes).
  Pledged e{group_id,    who, amount, amount > 0 ? fingerprint(token) : std::string(),
            ext.value(), {}};
  auto t = commit_locked(
      e, now,
      {ledger::SecretOp{pledge_token_name(group_id, who),
                        amount > 0 ? std::optional<std::string>(token) : std::nullopt}});
  if (!t) return t.failure();
  lock.unlock();
  return await(t.value());
}

Status Market::withdraw_pledge(const Actor& actor, uint64_t group_id) {
  if (Status m = check_moderator(); !m) return m;
  const int64_t now = clock_.now_ns();
  const std::string& who = actor.principal();
  std::unique_lock lock(command_mutex_);
  sync_locked();
  State& st = *live_;
  auto it = st.groups.find(group_id);
  if (it == st.groups.end() || !it->second.has_member(who))
    return not_found("no group " + std::to_string(group_id));
  const Group& g = it->second;
  auto ext = check_pledge(st, options_, who, g, st.lots.at(g.lot), 0, now, true);
  if (!ext) return ext.failure();
  auto t = commit_locked(PledgeWithdrawn{group_id, who}, now,
                         {ledger::SecretOp{pledge_token_name(group_id, who), std::nullopt}});
  if (!t) return t.failure();
  lock.unlock();
  return await(t.value());
}

namespace {

// The evidence kept beside a provider rating: what the block carried against what its
// minimum rate promised over the time it was active.
Evidence evidence_of(const Lease& l) {
  Evidence e;
  e.active_ns = l.usage.active_ns;
  e.green_bytes = l.usage.bytes[0];
  e.yellow_bytes = l.usage.bytes[1];
  e.red_bytes = l.usage.bytes[2];
  e.min_rate = l.min_rate;
  const __int128 promised = static_cast<__int128>(l.min_rate) *
                            std::max<int64_t>(0, l.usage.active_ns) / 8 / 1'000'000'000;
  e.min_rate_bytes = promised > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(promised);
  return e;
}

}  // namespace

Result<Rating> Market::rate_provider(const Actor& actor, uint64_t lease_id, bool satisfied,
                                     uint8_t score, const std::string& comment) {
  if (Status m = check_moderator(); !m) return m.failure();
  const int64_t now = clock_.now_ns();
  const std::string& who = actor.principal();
  if (actor.role != Role::recipient && actor.role != Role::device)
    return forbidden("only a lease's recipients (or their devices) rate its provider");
  if (score > 5) return invalid("score is 1 to 5 (or absent)");
  if (comment.size() > 2000) return invalid("comment is longer than 2000 bytes");
  std::unique_lock lock(command_mutex_);
  sync_locked();
  State& st = *live_;
  auto it = st.leases.find(lease_id);
  // A stranger cannot tell a lease it may not see from one that does not exist.
  if (it == st.leases.end() || !is_party(it->second, who))
    return not_found("no lease " + std::to_string(lease_id));
  const Lease& l = it->second;
  if (l.state != LeaseState::finished)
    return conflict("lease " + std::to_string(lease_id) + " has not finished (" +
                    std::string(lease_state_name(l.state)) + "): rate it after its block ends");
  if (now > l.end_ns + options_.rating_window_ns)
    return conflict("the rating window for lease " + std::to_string(lease_id) + " closed at " +
                    time_text(l.end_ns + options_.rating_window_ns));
  if (st.provider_rated.count({lease_id, who}))
    return conflict(who + " has already rated lease " + std::to_string(lease_id));
  RatingGiven e;
  Rating& r = e.rating;
  r.id = st.next_id;
  r.lease = lease_id;
  r.kind = RatingKind::provider;
  r.by = who;
  r.of = l.provider;
  if (actor.role == Role::device) r.device = actor.id;
  r.positive = satisfied;
  r.score = score;
  r.comment = comment;
  r.time_ns = now;
  r.delivery = l.usage.compliance;
  e.evidence = evidence_of(l);
  auto t = commit_locked(e, now);
  if (!t) return t.failure();
  lock.unlock();
  if (Status d = await(t.value()); !d) return d.failure();
  return r;
}

Result<Rating> Market::note_recipient(const Actor& actor, uint64_t lease_id,
                                      const std::string& recipient, const std::string& note) {
  if (Status m = check_moderator(); !m) return m.failure();
  const int64_t now = clock_.now_ns();
  if (actor.role != Role::provider && actor.role != Role::admin)
    return forbidden("only a lease's provider rates its recipients");
  if (note.empty() || note.size() > 2000) return invalid("a note is 1 to 2000 bytes");
  std::unique_lock lock(command_mutex_);
  sync_locked();
  State& st = *live_;
  auto it = st.leases.find(lease_id);
  if (it == st.leases.end() || !(actor.role == Role::admin ||
                                 (actor.role == Role::provider && actor.id == it->second.provider)))
    return not_found("no lease " + std::to_string(lease_id));
  const Lease& l = it->second;
  if (l.state != LeaseState::finished && l.state != LeaseState::unpaid &&
      l.state != LeaseState::failed)
    return conflict("lease " + std::to_string(lease_id) + " has not finished");
  if (now > l.end_ns + options_.rating_window_ns)
    return conflict("the rating window for lease " + std::to_string(lease_id) + " has closed");
  auto r = st.recipient_rating.find({lease_id, recipient});
  if (r == st.recipient_rating.end())
    return not_found("settlement has not rated " + recipient + " on lease " +
                     std::to_string(lease_id));
  if (st.noted.count(r->second))
    return conflict("the provider has already rated " + recipient + " on lease " +
                    std::to_string(lease_id));
  const uint64_t rating_id = r->second;
  auto t = commit_locked(RatingNoted{rating_id, actor.id, note}, now);
  if (!t) return t.failure();
  lock.unlock();
  if (Status d = await(t.value()); !d) return d.failure();
  std::shared_lock read(state_mutex_);
  return durable_->ratings.at(rating_id);
}

}  // namespace segx::market
