// What each role may see of the durable state. A lease, group or block the viewer may not
// see answers not_found, exactly like one that does not exist, so ids reveal nothing.

#include <algorithm>

#include "market/market.hpp"

namespace segx::market {

namespace {

bool is_admin(const Actor& a) {
  return a.role == Role::admin;
}

bool is_provider_of(const Actor& a, const std::string& provider) {
  return a.role == Role::provider && a.id == provider;
}

bool sees_lease(const Actor& viewer, const Lease& l) {
  return is_admin(viewer) || is_provider_of(viewer, l.provider) || is_party(l, viewer.principal());
}

std::string bid_status(const State& st, const Lot& lot, uint64_t bid) {
  if (lot.state == LotState::open) return "pending";
  if (lot.state == LotState::cancelled) return "void";
  return st.lease_of_bid.count(bid) ? "won" : "lost";
}

RatingView rating_view(const Actor& viewer, const Rating& r) {
  RatingView v{r, true};
  const std::string& who = viewer.role == Role::provider ? viewer.id : viewer.principal();
  if (is_admin(viewer) || who == r.by || who == r.of) return v;
  // Others see the verdict, not which lease, device or (for a provider's rating of a
  // payer, whose comment may be a gateway's decline reason) the words.
  v.full = false;
  v.rating.lease = 0;
  v.rating.device.clear();
  if (r.kind == RatingKind::recipient) v.rating.comment.clear();
  return v;
}

}  // namespace

std::vector<LotView> Market::lots() const {
  std::shared_lock lock(state_mutex_);
  const State& st = *durable_;
  std::vector<LotView> out;
  out.reserve(st.lots.size());
  const int64_t since = clock_.now_ns() - options_.reputation_window_ns;
  // One reputation per provider, not per lot.
  std::map<std::string, ledger::Reputation> reputations;
  for (const auto& [id, lot] : st.lots) {
    auto r = reputations.find(lot.provider);
    if (r == reputations.end())
      r = reputations
              .emplace(lot.provider, reputation_in(st, lot.provider, RatingKind::provider, since))
              .first;
    out.push_back({lot, r->second, lot.bids.size()});
  }
  return out;
}

Result<LotView> Market::lot(uint64_t id) const {
  std::shared_lock lock(state_mutex_);
  auto it = durable_->lots.find(id);
  if (it == durable_->lots.end()) return not_found("no lot " + std::to_string(id));
  const int64_t since = clock_.now_ns() - options_.reputation_window_ns;
  return LotView{it->second,
                 reputation_in(*durable_, it->second.provider, RatingKind::provider, since),
                 it->second.bids.size()};
}

namespace {

BidView bid_view(const State& st, const Actor& viewer, const Lot& lot, const Bid& b,
                 int64_t since) {
  BidView v;
  v.bid = b;
  // Payment token fingerprints are for the ledger's auditors, not for anyone looking.
  v.bid.token_fp.clear();
  v.bidder_reputation = reputation_in(st, b.bidder, RatingKind::recipient, since);
  v.effective_price = effective_price(st, b);
  v.status = bid_status(st, lot, b.id);
  if (auto l = st.lease_of_bid.find(b.id); l != st.lease_of_bid.end()) v.lease = l->second;
  if (auto x = lot.excluded.find(b.id); x != lot.excluded.end()) v.reason = x->second;
  // Members are the bidder's traffic (telephone numbers, devices): only the bidder, the
  // lot's provider and admins see them, even on an open-outcry lot.
  if (!(is_admin(viewer) || is_provider_of(viewer, lot.provider) ||
        b.bidder == viewer.principal())) {
    v.bid.members.clear();
    v.bid.device.clear();
    v.members_shown = false;
    v.reason.clear();
    // A group's price is the most it will pay, a ceiling for its members to pledge up to:
    // shown to others it would tell rivals where to stop. Its bid is its effective price.
    if (b.group != 0) v.bid.price = v.effective_price;
  }
  return v;
}

}  // namespace

Result<std::vector<BidView>> Market::bids(const Actor& viewer, uint64_t lot_id) const {
  std::shared_lock lock(state_mutex_);
  const State& st = *durable_;
  auto it = st.lots.find(lot_id);
  if (it == st.lots.end()) return not_found("no lot " + std::to_string(lot_id));
  const Lot& lot = it->second;
  // Sealed bids stay sealed, before and after close, to all but the lot's provider and
  // admins; an ascending auction is open outcry (prices, not members).
  const bool all = is_admin(viewer) || is_provider_of(viewer, lot.provider) ||
                   lot.spec.format == Format::ascending;
  const int64_t since = clock_.now_ns() - options_.reputation_window_ns;
  std::vector<BidView> out;
  for (uint64_t id : lot.bids) {
    const Bid& b = st.bids.at(id);
    if (!all && b.bidder != viewer.principal()) continue;
    out.push_back(bid_view(st, viewer, lot, b, since));
  }
  return out;
}

std::vector<BidView> Market::bids_of(const Actor& viewer) const {
  std::shared_lock lock(state_mutex_);
  const State& st = *durable_;
  const int64_t since = clock_.now_ns() - options_.reputation_window_ns;
  std::vector<BidView> out;
  const auto add = [&](uint64_t id) {
    const Bid& b = st.bids.at(id);
    out.push_back(bid_view(st, viewer, st.lots.at(b.lot), b, since));
  };
  if (is_admin(viewer)) {
    for (const auto& [id, lot] : st.lots)
      for (uint64_t b : lot.bids)
        add(b);
  } else if (viewer.role == Role::provider) {
    if (auto it = st.lots_of.find(viewer.id); it != st.lots_of.end())
      for (uint64_t lot : it->second)
        for (uint64_t b : st.lots.at(lot).bids)
          add(b);
  } else if (auto it = st.bids_by.find(viewer.principal()); it != st.bids_by.end()) {
    for (uint64_t b : it->second)
      add(b);
  }
  return out;
}

Result<Group> Market::group(const Actor& viewer, uint64_t id) const {
  std::shared_lock lock(state_mutex_);
  auto it = durable_->groups.find(id);
  const auto missing = not_found("no group " + std::to_string(id));
  if (it == durable_->groups.end()) return missing;
  const Group& g = it->second;
  if (!g.has_member(viewer.principal()) && !is_admin(viewer) &&
      !is_provider_of(viewer, durable_->lots.at(g.lot).provider))
    return missing;
  Group copy = g;
  for (auto& [p, pl] : copy.pledges)
    pl.token_fp.clear();
  return copy;
}

std::vector<Lease> Market::leases(const Actor& viewer) const {
  std::shared_lock lock(state_mutex_);
  const State& st = *durable_;
  std::vector<Lease> out;
  if (is_admin(viewer)) {
    for (const auto& [id, l] : st.leases)
      out.push_back(l);
    return out;
  }
  const std::string& who = viewer.role == Role::provider ? viewer.id : viewer.principal();
  if (auto it = st.leases_of.find(who); it != st.leases_of.end())
    for (uint64_t id : it->second) {
      const Lease& l = st.leases.at(id);
      if (sees_lease(viewer, l)) out.push_back(l);
    }
  return out;
}

Result<Lease> Market::lease(const Actor& viewer, uint64_t id) const {
  std::shared_lock lock(state_mutex_);
  auto it = durable_->leases.find(id);
  if (it == durable_->leases.end() || !sees_lease(viewer, it->second))
    return not_found("no lease " + std::to_string(id));
  return it->second;
}

std::vector<Charge> Market::charges(const Actor& viewer, uint64_t lease_id) const {
  std::shared_lock lock(state_mutex_);
  std::vector<Charge> out;
  auto it = durable_->leases.find(lease_id);
  if (it == durable_->leases.end() || !sees_lease(viewer, it->second)) return out;
  for (uint64_t c : it->second.charges) {
    Charge ch = durable_->charges.at(c - 1);
    ch.token_ref.clear();
    ch.token_fp.clear();
    // The gateway's reason is the payer's business (and the provider's).
    if (is_admin(viewer) || is_provider_of(viewer, it->second.provider) ||
        ch.payer == viewer.principal())
      out.push_back(std::move(ch));
  }
  return out;
}

std::vector<RatingView> Market::ratings_of(const Actor& viewer,
                                           const std::string& principal) const {
  std::shared_lock lock(state_mutex_);
  std::vector<RatingView> out;
  if (auto it = durable_->ratings_of.find(principal); it != durable_->ratings_of.end())
    for (uint64_t id : it->second)
      out.push_back(rating_view(viewer, durable_->ratings.at(id)));
  return out;
}

std::vector<RatingView> Market::ratings_for_lease(const Actor& viewer, uint64_t lease) const {
  std::shared_lock lock(state_mutex_);
  std::vector<RatingView> out;
  auto l = durable_->leases.find(lease);
  if (l == durable_->leases.end() || !sees_lease(viewer, l->second)) return out;
  if (auto it = durable_->ratings_of_lease.find(lease); it != durable_->ratings_of_lease.end())
    for (uint64_t id : it->second)
      out.push_back(rating_view(viewer, durable_->ratings.at(id)));
  return out;
}

PrincipalReputation Market::reputation(const std::string& principal) const {
  std::shared_lock lock(state_mutex_);
  const int64_t since = clock_.now_ns() - options_.reputation_window_ns;
  return {principal, reputation_in(*durable_, principal, RatingKind::provider, since),
          reputation_in(*durable_, principal, RatingKind::recipient, since)};
}

State Market::snapshot() const {
  std::shared_lock lock(state_mutex_);
  return *durable_;
}

MarketStats Market::stats() const {
  std::shared_lock lock(state_mutex_);
  const State& st = *durable_;
  MarketStats s;
  s.lots = st.lots.size();
  s.open_lots = st.open_lots.size();
  s.bids = st.bids.size();
  s.groups = st.groups.size();
  s.leases = st.leases.size();
  for (uint64_t id : st.live_leases)
    s.active_leases += st.leases.at(id).state == LeaseState::active;
  for (const auto& [id, l] : st.leases)
    s.failed_leases += l.state == LeaseState::failed;
  for (const Charge& c : st.charges) {
    s.charges_accepted += c.result == ChargeResult::accepted;
    s.charges_declined += c.result == ChargeResult::declined;
    s.charges_error += c.result == ChargeResult::error;
    s.charges_pending += c.result == ChargeResult::pending;
    s.refunds_accepted += c.refund == RefundState::accepted;
    s.refunds_pending += c.refund == RefundState::pending;
    s.refunds_failed += c.refund == RefundState::declined || c.refund == RefundState::error;
  }
  s.ratings = st.ratings.size();
  s.replayed_events = replayed_;
  s.rolled_back = rolled_back_;
  return s;
}

}  // namespace segx::market
