#include "market/state.hpp"

#include <algorithm>

namespace segx::market {

std::string bid_token_name(uint64_t bid) {
  return "token/bid/" + std::to_string(bid);
}

std::string pledge_token_name(uint64_t group, const std::string& principal) {
  return "token/pledge/" + std::to_string(group) + "/" + principal;
}

std::string idempotency_key(const std::string& market_id, uint64_t lease,
                            const std::string& payer) {
  // Journals older than the market id keep the keys their charges were made with.
  if (market_id.empty()) return "segx-lease-" + std::to_string(lease) + "-" + payer;
  return "segx-" + market_id + "-lease-" + std::to_string(lease) + "-" + payer;
}

Money effective_price(const State& st, const Bid& b) {
  if (b.group == 0) return b.price;
  auto g = st.groups.find(b.group);
  if (g == st.groups.end()) return 0;
  return std::min(b.price, g->second.pledged() / std::max<uint32_t>(b.quantity, 1));
}

bool has_bid(const State& st, uint64_t lot, const std::string& bidder) {
  if (auto open = st.open_lot_bidders.find(lot); open != st.open_lot_bidders.end())
    return open->second.contains(bidder);
  // Not an open lot: off the bidding path, so a scan of the bidder's bids will do.
  auto it = st.bids_by.find(bidder);
  if (it == st.bids_by.end()) return false;
  for (auto b = it->second.rbegin(); b != it->second.rend(); ++b)
    if (st.bids.at(*b).lot == lot) return true;
  return false;
}

bool is_party(const Lease& l, const std::string& principal) {
  return std::find(l.recipients.begin(), l.recipients.end(), principal) != l.recipients.end();
}

namespace {

void saw_id(State& st, uint64_t id) {
  st.next_id = std::max(st.next_id, id + 1);
}

// The leader of an ascending lot: the highest effective price, the earlier bid on a tie.
void refresh_leader(State& st, Lot& lot) {
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

void add_bid(State& st, Bid bid, int64_t extends_to) {
  Lot& lot = st.lots.at(bid.lot);
  saw_id(st, bid.id);
  lot.bids.push_back(bid.id);
  if (extends_to > lot.closes_ns) lot.closes_ns = extends_to;
  st.bids_by[bid.bidder].push_back(bid.id);
  if (auto open = st.open_lot_bidders.find(bid.lot); open != st.open_lot_bidders.end())
    open->second.insert(bid.bidder);
  const uint64_t id = bid.id;
  auto [it, fresh] = st.bids.insert_or_assign(id, std::move(bid));
  if (lot.spec.format == Format::ascending) {
    const Money p = effective_price(st, it->second);
    if (lot.leader == 0 || p > lot.leading_price) {
      lot.leader = id;
      lot.leading_price = p;
    }
  }
}

void add_rating(State& st, Rating r) {
  saw_id(st, r.id);
  st.ratings_of[r.of].push_back(r.id);
  st.ratings_of_lease[r.lease].push_back(r.id);
  if (r.kind == RatingKind::provider) {
    st.provider_rated[{r.lease, r.by}] = r.id;
  } else {
    st.recipient_rating[{r.lease, r.of}] = r.id;
  }
  st.ratings[r.id] = std::move(r);
}

void end_lease(State& st, Lease& l, LeaseState to) {
  l.state = to;
  st.live_leases.erase(l.id);
}

// A lease that ended failed returns what was paid for it.
void ask_refund(State& st, Charge& c) {
  if (c.result != ChargeResult::accepted || c.amount == 0 || c.refund != RefundState::none) return;
  c.refund = RefundState::pending;
  st.due_refunds.insert(c.id);
}

struct Applier {
  State& st;
  const ApplyContext& ctx;

  void operator()(const MarketCreated& e) { st.market_id = e.market_id; }

  void operator()(const LotCreated& e) {
    Lot lot;
    lot.id = e.id;
    lot.provider = e.provider;
    lot.spec = e.spec;
    lot.created_ns = ctx.time_ns;
    lot.closes_ns = e.spec.closes_ns;
    saw_id(st, e.id);
    st.lots[e.id] = std::move(lot);
    st.open_lots.insert(e.id);
    st.open_lot_bidders[e.id];
    st.lots_of[e.provider].push_back(e.id);
  }

  void operator()(const LotCancelled& e) {
    Lot& lot = st.lots.at(e.lot);
    lot.state = LotState::cancelled;
    lot.outcome = Outcome::cancelled;
    st.open_lots.erase(e.lot);
    st.open_lot_bidders.erase(e.lot);
  }

  void operator()(const BidPlaced& e) {
    if (!e.legacy_token.empty()) st.legacy_tokens[bid_token_name(e.bid.id)] = e.legacy_token;
    Bid b = e.bid;
    b.time_ns = ctx.time_ns;
    add_bid(st, std::move(b), e.extends_to);
  }
  // The event's last use (the durable state takes it after the live one): its bid moves in.
  void operator()(BidPlaced& e) {
    if (!e.legacy_token.empty()) st.legacy_tokens[bid_token_name(e.bid.id)] = e.legacy_token;
    e.bid.time_ns = ctx.time_ns;
    add_bid(st, std::move(e.bid), e.extends_to);
  }
  template <class E>
  void operator()(E& e) {
    (*this)(static_cast<const E&>(e));
  }

  void operator()(const GroupCreated& e) {
    st.lots.at(e.lot);  // the lot must exist before anything changes
    Group g;
    g.id = e.id;
    g.lot = e.lot;
    g.organizer = e.organizer;
    g.members = e.members;
    g.consent = e.consent;
    st.groups[e.id] = std::move(g);
    Bid b;
    b.id = e.id;
    b.lot = e.lot;
    b.bidder = e.organizer;
    b.price = e.price;
    b.quantity = e.quantity;
    b.time_ns = ctx.time_ns;
    b.group = e.id;
    add_bid(st, std::move(b), e.extends_to);
  }

  void operator()(const Pledged& e) {
    Group& g = st.groups.at(e.group);
    Lot& lot = st.lots.at(g.lot);
    g.pledges[e.principal] = Pledge{e.amount, e.token_fp};
    const std::string name = pledge_token_name(e.group, e.principal);
    if (!e.legacy_token.empty())
      st.legacy_tokens[name] = e.legacy_token;
    else
      st.legacy_tokens.erase(name);
    if (e.extends_to > lot.closes_ns) lot.closes_ns = e.extends_to;
    refresh_leader(st, lot);
  }

  void operator()(const PledgeWithdrawn& e) {
    Group& g = st.groups.at(e.group);
    g.pledges.erase(e.principal);
    st.legacy_tokens.erase(pledge_token_name(e.group, e.principal));
    refresh_leader(st, st.lots.at(g.lot));
  }

  void operator()(const LotClosed& e) {
    Lot& lot = st.lots.at(e.lot);
    for (const AwardedLease& a : e.leases)
      st.bids.at(a.bid);  // every award names a bid of the market before anything changes
    lot.state = LotState::closed;
    lot.outcome = e.outcome;
    lot.clearing_price = e.clearing_price;
    for (const ExcludedBid& x : e.excluded)
      lot.excluded[x.bid] = x.reason;
    st.open_lots.erase(e.lot);
    st.open_lot_bidders.erase(e.lot);
    for (const AwardedLease& a : e.leases) {
      const Bid& bid = st.bids.at(a.bid);
      Lease l;
      l.id = a.lease;
      l.lot = e.lot;
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
      l.awarded_ns = ctx.time_ns;
      const Group* group = nullptr;
      if (bid.group != 0) {
        // Every member that joined is served, sponsored or not; one that never joined
        // is no party to the lease.
        group = &st.groups.at(bid.group);
        for (const GroupMember* gm : group->served()) {
          if (!is_party(l, gm->principal)) l.recipients.push_back(gm->principal);
          l.members.insert(l.members.end(), gm->members.begin(), gm->members.end());
        }
      } else {
        l.members = bid.members;
      }
      for (const auto& [payer, amount] : a.charges) {
        Charge c;
        c.id = st.charges.size() + 1;
        c.lease = l.id;
        c.payer = payer;
        c.amount = amount;
        c.created_ns = ctx.time_ns;
        if (group) {
          c.token_ref = pledge_token_name(group->id, payer);
          if (auto p = group->pledges.find(payer); p != group->pledges.end())
            c.token_fp = p->second.token_fp;
        } else {
          c.token_ref = bid_token_name(bid.id);
          c.token_fp = bid.token_fp;
        }
        c.idempotency_key = idempotency_key(st.market_id, l.id, payer);
        if (amount == 0) {
          // A block won at no price is free: nothing to charge, nobody rated for it.
          c.result = ChargeResult::accepted;
          c.reference = "free";
        } else {
          st.due_charges.insert(c.id);
        }
        l.charges.push_back(c.id);
        st.charges.push_back(std::move(c));
      }
      st.next_lease = std::max(st.next_lease, l.id + 1);
      st.lease_of_bid[a.bid] = l.id;
      for (const std::string& r : l.recipients)
        st.leases_of[r].insert(l.id);
      st.leases_of[l.provider].insert(l.id);
      st.live_leases.insert(l.id);
      st.leases[l.id] = std::move(l);
    }
  }

  void operator()(const Activated& e) {
    Lease& l = st.leases.at(e.lease);
    // Another appliance's block says nothing about this one's data plane.
    if (e.appliance != ctx.appliance) return;
    if (e.ok) {
      if (l.state == LeaseState::awarded || l.state == LeaseState::suspended) {
        l.state = LeaseState::active;
        l.ran = true;
      }
      l.activation_error.clear();
    } else {
      l.activation_error = e.error;
    }
  }

  void operator()(const LeaseFailed& e) {
    Lease& l = st.leases.at(e.lease);
    l.failure = e.reason;
    end_lease(st, l, LeaseState::failed);
    for (uint64_t c : l.charges)
      ask_refund(st, st.charges.at(c - 1));
  }

  void operator()(const UsageRecorded& e) {
    // Usage adds up over every appliance that carried the block's members.
    Lease& l = st.leases.at(e.lease);
    l.usage.add(e.usage);
    if (e.appliance != ctx.appliance) return;
    if (e.final) {
      end_lease(st, l, LeaseState::finished);
    } else {
      l.state = LeaseState::suspended;
    }
  }

  void operator()(const ChargeSettled& e) {
    Charge& c = st.charges.at(e.charge - 1);
    Lease& l = st.leases.at(c.lease);
    saw_id(st, e.rating);
    c.result = e.result;
    c.reference = e.reference;
    c.reason = e.reason;
    c.attempts = e.attempts;
    st.due_charges.erase(c.id);
    if (e.result == ChargeResult::accepted || e.result == ChargeResult::declined) {
      // Settlement's answer is the provider's rating of the payer (claim 5).
      Rating r;
      r.id = e.rating;
      r.lease = c.lease;
      r.kind = RatingKind::recipient;
      r.by = l.provider;
      r.of = c.payer;
      r.positive = e.result == ChargeResult::accepted;
      r.comment = e.result == ChargeResult::accepted ? "paid" : "charge declined: " + e.reason;
      r.time_ns = ctx.time_ns;
      add_rating(st, std::move(r));
    }
    if (l.state == LeaseState::failed) ask_refund(st, c);
    bool pending = false, paid = false;
    for (uint64_t id : l.charges) {
      pending |= st.charges.at(id - 1).result == ChargeResult::pending;
      paid |= st.charges.at(id - 1).result == ChargeResult::accepted;
    }
    if (!pending && !paid && l.state == LeaseState::awarded) end_lease(st, l, LeaseState::unpaid);
  }

  void operator()(const RefundSettled& e) {
    Charge& c = st.charges.at(e.charge - 1);
    c.refund = e.result == ChargeResult::accepted   ? RefundState::accepted
               : e.result == ChargeResult::declined ? RefundState::declined
                                                    : RefundState::error;
    c.refund_reference = e.reference;
    c.refund_reason = e.reason;
    st.due_refunds.erase(c.id);
  }

  void operator()(const RatingGiven& e) {
    st.leases.at(e.rating.lease);
    add_rating(st, e.rating);
  }

  void operator()(const RatingNoted& e) {
    Rating& r = st.ratings.at(e.rating);
    r.comment = e.note;
    st.noted.insert(e.rating);
  }
};

}  // namespace

void apply(State& st, const MarketEvent& e, const ApplyContext& ctx) {
  std::visit(Applier{st, ctx}, e);
  ++st.applied;
}

void apply(State& st, MarketEvent&& e, const ApplyContext& ctx) {
  std::visit(Applier{st, ctx}, e);
  ++st.applied;
}

}  // namespace segx::market
