// The market's life over time: lots close, leases are activated and ended, charges and
// refunds are settled. Each step decides on the live state under the command lock,
// appends its event and waits for it like any command; what it does to the outside world
// (the data plane, the payment gateway) is undone or repeated safely when a commit fails.

#include <algorithm>

#include "market/auction.hpp"
#include "market/market.hpp"

namespace segx::market {

namespace {

// Splits `total` over pledges pro rata, in whole minor units: floor shares, then the units
// left over one each to the largest remainders (ties: principal id order). Sums to total.
std::vector<std::pair<std::string, Money>> split_pro_rata(
    const std::map<std::string, Pledge>& pledges, Money total) {
  std::vector<std::pair<std::string, Money>> shares;
  __int128 sum = 0;
  for (const auto& [who, p] : pledges)
    if (p.amount > 0) sum += p.amount;
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

std::vector<config::MemberConfig> members_of(const State& st, const Bid& b) {
  if (b.group == 0) return b.members;
  std::vector<config::MemberConfig> out;
  for (const GroupMember* gm : st.groups.at(b.group).served())
    out.insert(out.end(), gm->members.begin(), gm->members.end());
  return out;
}

int64_t backoff(int64_t first, uint32_t attempts, int64_t cap) {
  int64_t wait = first;
  for (uint32_t i = 1; i < attempts && wait < cap; ++i)
    wait = wait > cap / 2 ? cap : wait * 2;
  return std::min(wait, cap);
}

}  // namespace

void Market::close_lots_locked(int64_t now, std::vector<std::string>& log, uint64_t& last) {
  std::vector<uint64_t> due;
  for (uint64_t id : live_->open_lots)
    if (now >= live_->lots.at(id).closes_ns) due.push_back(id);
  for (uint64_t id : due) {
    const State& st = *live_;
    const Lot& lot = st.lots.at(id);
    std::vector<Candidate> candidates;
    candidates.reserve(lot.bids.size());
    for (uint64_t b : lot.bids) {
      const Bid& bid = st.bids.at(b);
      candidates.push_back({b, effective_price(st, bid), bid.quantity});
    }
    const int64_t start = lot.spec.start_ns, end = lot.spec.start_ns + lot.spec.duration_ns;
    // A winner whose identifiers overlap a lease at the same time (awarded since it bid, or
    // another winner of this lot) cannot win: it is set aside with the reason and the
    // auction is decided again without it.
    std::vector<ExcludedBid> excluded;
    Determination d;
    const std::shared_ptr<const Holdings> holdings = this->holdings();
    for (;;) {
      d = determine(lot.spec.format, lot.spec.quantity, lot.spec.reserve, candidates);
      std::vector<Ident> taken;
      std::optional<ExcludedBid> loser;
      for (const Award& a : d.awards) {
        const auto idents = holdings->expand(members_of(st, st.bids.at(a.bid)));
        // A group none of whose members joined (its organiser listed only others) would
        // buy a block that carries nobody's traffic.
        std::optional<std::string> why =
            idents.empty() ? std::optional<std::string>(
                                 "no member of group " + std::to_string(a.bid) +
                                 " joined it (a member joins by pledging, 0 to be sponsored)")
                           : lease_overlap(st, *holdings, start, end, idents);
        for (size_t i = 0; !why && i < idents.size(); ++i)
          for (const Ident& t : taken)
            if (overlaps(idents[i], t)) {
              why = idents[i].label() + " overlaps " + t.label() +
                    " of a bid that ranks higher on this lot";
              break;
            }
        if (why) {
          loser = ExcludedBid{a.bid, *why};
          break;
        }
        taken.insert(taken.end(), idents.begin(), idents.end());
      }
      if (!loser) break;
      excluded.push_back(*loser);
      std::erase_if(candidates, [&](const Candidate& c) { return c.bid == loser->bid; });
    }
    LotClosed e;
    e.lot = id;
    e.outcome = d.outcome;
    e.clearing_price = d.clearing_price;
    e.excluded = std::move(excluded);
    std::set<uint64_t> winners;
    std::vector<ledger::SecretOp> erase;
    for (const Award& a : d.awards) {
      const Bid& bid = st.bids.at(a.bid);
      winners.insert(a.bid);
      AwardedLease la{st.next_lease + e.leases.size(), a.bid, a.units, a.unit_price, {}};
      // Below the bid's own price times its quantity, which was checked to fit.
      const Money total = money_mul(a.unit_price, a.units).value_or(max_money);
      if (bid.group != 0) {
        const Group& g = st.groups.at(bid.group);
        la.charges = split_pro_rata(g.pledges, total);
        // Pledgers who owe nothing this time are not charged: their tokens go now.
        for (const auto& pledge : g.pledges) {
          const auto& who = pledge.first;  // a lambda may not capture a structured binding
          if (std::none_of(la.charges.begin(), la.charges.end(),
                           [&](const auto& c) { return c.first == who; }))
            erase.push_back({pledge_token_name(g.id, who), std::nullopt});
        }
        if (la.charges.empty()) la.charges.push_back({bid.bidder, 0});
      } else {
        la.charges.push_back({bid.bidder, total});
        if (total == 0) erase.push_back({bid_token_name(bid.id), std::nullopt});
      }
      e.leases.push_back(std::move(la));
    }
    // Bids that did not win will never be charged: their payment tokens go.
    for (uint64_t b : lot.bids) {
      if (winners.count(b)) continue;
      const Bid& bid = st.bids.at(b);
      if (bid.group == 0) {
        erase.push_back({bid_token_name(b), std::nullopt});
      } else {
        for (const auto& [who, p] : st.groups.at(bid.group).pledges)
          erase.push_back({pledge_token_name(bid.group, who), std::nullopt});
      }
    }
    const std::string line =
        "lot " + std::to_string(id) + " closed: " + std::string(outcome_name(d.outcome)) +
        (d.awards.empty()
             ? ""
             : ", " + std::to_string(d.awards.size()) + " lease(s) at " +
                   std::to_string(d.clearing_price) + " " + options_.currency + " per block") +
        (e.excluded.empty() ? ""
                            : ", " + std::to_string(e.excluded.size()) +
                                  " bid(s) set aside for overlapping members");
    auto t = commit_locked(e, now, std::move(erase));
    if (!t) {
      log.push_back("market: lot " + std::to_string(id) + " not closed: " + t.error());
      return;
    }
    last = t.value();
    log.push_back(line);
  }
}

std::vector<std::string> Market::tick(Activator* activator) {
  std::vector<std::string> log;
  // Sharing the ledger: first what the moderator or the other appliances have written.
  if (options_.role != MarketRole::standalone) {
    if (Status c = catch_up(); !c) log.push_back("market: reading the shared ledger: " + c.error());
  }
  const int64_t now = clock_.now_ns();
  const bool moderates = options_.role != MarketRole::appliance;
  uint64_t last = 0;
  std::vector<std::pair<uint64_t, std::string>> activated;  // lease, block: undone on failure
  std::vector<uint64_t> ended;
  std::unique_lock lock(command_mutex_);
  sync_locked();
  // Only the market's moderator closes lots; appliances learn the awards from the ledger.
  if (moderates) close_lots_locked(now, log, last);

  const auto commit = [&](const MarketEvent& e) -> bool {
    auto t = commit_locked(e, now);
    if (!t) {
      log.push_back("market: " + std::string(event_type(e)) + " not recorded: " + t.error());
      return false;
    }
    last = t.value();
    return true;
  };

  const std::vector<uint64_t> live(live_->live_leases.begin(), live_->live_leases.end());
  for (uint64_t id : live) {
    const Lease& l = live_->leases.at(id);
    const std::string block = "lease-" + std::to_string(id);
    const bool ready = l.state == LeaseState::awarded || l.state == LeaseState::suspended;
    if (ready && now >= l.start_ns) {
      bool pending = false, paid = l.charges.empty();
      for (uint64_t c : l.charges) {
        pending |= live_->charges.at(c - 1).result == ChargeResult::pending;
        paid |= live_->charges.at(c - 1).result == ChargeResult::accepted;
      }
      if (now >= l.end_ns) {
        activation_retries_.erase(id);
        if (l.state == LeaseState::suspended || l.ran) {
          // It ran, then its time ran out while it could not be resumed: it ends with what
          // it carried.
          if (!commit(UsageRecorded{id, options_.appliance, true, true, Usage{}})) break;
          log.push_back("lease " + std::to_string(id) + " ended without running to its end");
        } else if (moderates && (paid || pending)) {
          // Its block never ran: the lease fails and what was paid for it is returned.
          const std::string reason =
              l.activation_error.empty()
                  ? std::string(pending ? "its payment was not settled before its block ended"
                                        : "its block's time ran out before it could be activated")
                  : "its block was never activated: " + l.activation_error;
          if (!commit(LeaseFailed{id, reason, 0})) break;
          log.push_back("lease " + std::to_string(id) + " failed: " + reason);
        }
        continue;
      }
      if (!paid) continue;  // waiting for settlement (or unpaid)
      Retry& r = activation_retries_[id];
      if (now < r.next_ns) continue;
      // With several appliances, each enforces its share of the block's rates (scale-out.md).
      const auto share = [&](uint64_t rate) {
        return static_cast<uint64_t>(static_cast<double>(rate) * options_.rate_share);
      };
      BlockRequest req{block,    l.profile, l.end_ns - now, share(l.min_rate), share(l.max_rate),
                       l.members};
      const bool resumed = l.state == LeaseState::suspended;
      Status s = activator ? activator->activate(req) : Status{};
      if (s) {
        activation_retries_.erase(id);
        if (!commit(Activated{id, options_.appliance, true, resumed, {}})) {
          if (activator) (void)activator->deactivate(block);
          break;
        }
        activated.push_back({id, block});
        log.push_back("lease " + std::to_string(id) + (resumed ? " resumed" : " active") +
                      " as block " + block + " until " + time_text(l.end_ns));
        continue;
      }
      ++r.attempts;
      r.next_ns = now + backoff(options_.activation_backoff_ns, r.attempts,
                                std::max<int64_t>(options_.activation_backoff_ns, 60'000'000'000));
      // The journal records a change of state (the first failure, or a different one), not
      // every retry.
      const std::string error = s.error();
      if (l.activation_error != error) {
        if (!commit(Activated{id, options_.appliance, false, resumed, error})) break;
      }
      if (moderates && r.attempts >= options_.activation_attempts) {
        const std::string reason =
            "the data plane refused its block " + std::to_string(r.attempts) + " times: " + error;
        const uint32_t attempts = r.attempts;
        activation_retries_.erase(id);
        if (!commit(LeaseFailed{id, reason, attempts})) break;
        log.push_back("lease " + std::to_string(id) + " failed: " + reason);
      } else {
        log.push_back("lease " + std::to_string(id) + " not activated (attempt " +
                      std::to_string(r.attempts) + "): " + error);
      }
    } else if (l.state == LeaseState::active && now >= l.end_ns) {
      Usage& u = unrecorded_usage_[id];
      if (activator) {
        auto d = activator->deactivate(block);
        if (d) {
          u.add(d.value());
        } else if (u.active_ns == 0) {
          log.push_back("lease " + std::to_string(id) + ": usage unavailable: " + d.error());
        }
      } else {
        u.active_ns = l.end_ns - l.start_ns;
      }
      const Usage recorded = u;
      if (!commit(UsageRecorded{id, options_.appliance, true, false, recorded})) break;
      ended.push_back(id);
      log.push_back("lease " + std::to_string(id) +
                    " finished: " + std::to_string(recorded.bytes[0]) + " green bytes, " +
                    std::to_string(recorded.bytes[1]) + " yellow, " +
                    std::to_string(recorded.bytes[2]) + " red");
    }
  }
  lock.unlock();
  if (last == 0) return log;
  if (Status d = await(last); !d) {
    log.push_back("market: ledger failed: " + d.error() + "; the tick's changes are undone");
    // Blocks activated for events that did not commit are taken down again; their leases
    // are awarded (or suspended) as before and the next tick tries again.
    std::lock_guard again(command_mutex_);
    for (const auto& [id, block] : activated) {
      auto it = live_->leases.find(id);
      if ((it == live_->leases.end() || it->second.state != LeaseState::active) && activator)
        (void)activator->deactivate(block);
    }
    return log;
  }
  std::lock_guard again(command_mutex_);
  for (uint64_t id : ended) {
    auto it = live_->leases.find(id);
    if (it != live_->leases.end() && it->second.state == LeaseState::finished)
      unrecorded_usage_.erase(id);
  }
  return log;
}

std::vector<std::string> Market::suspend(Activator* activator) {
  std::vector<std::string> log;
  const int64_t now = clock_.now_ns();
  uint64_t last = 0;
  std::unique_lock lock(command_mutex_);
  sync_locked();
  const std::vector<uint64_t> live(live_->live_leases.begin(), live_->live_leases.end());
  for (uint64_t id : live) {
    if (live_->leases.at(id).state != LeaseState::active) continue;
    Usage u;
    if (activator) {
      auto r = activator->deactivate("lease-" + std::to_string(id));
      if (r) u = r.value();
    }
    auto t = commit_locked(UsageRecorded{id, options_.appliance, false, true, u}, now);
    if (!t) {
      log.push_back("market: usage of lease " + std::to_string(id) + " not recorded: " + t.error());
      continue;
    }
    last = t.value();
    log.push_back("lease " + std::to_string(id) + " suspended at shutdown");
  }
  lock.unlock();
  if (last != 0) (void)await(last);
  return log;
}

Result<std::string> Market::token_for(const Charge& c) {
  auto s = ledger_.secret(c.token_ref);
  if (!s) return s.failure();
  if (s.value()) return *s.value();
  std::shared_lock r(state_mutex_);
  if (auto it = durable_->legacy_tokens.find(c.token_ref); it != durable_->legacy_tokens.end())
    return it->second;
  return Error{"payment token no longer on file", ErrorKind::internal};
}

size_t Market::settle(const std::atomic<bool>* stop) {
  std::lock_guard settling(settle_mutex_);
  // A gateway error: the charge or refund stays pending and is asked again after a backoff.
  const auto retry_later = [this](Retry& r, const std::string& why) {
    r.error = why;
    r.next_ns = clock_.now_ns() + backoff(options_.settlement_backoff_ns, r.attempts,
                                          options_.settlement_max_backoff_ns);
  };
  const int64_t started = clock_.now_ns();
  std::vector<Charge> charges, refunds;
  std::string market;
  {
    // Only what is durable is charged: a charge whose lot_closed is still committing waits.
    std::shared_lock lock(state_mutex_);
    for (uint64_t id : durable_->due_charges) {
      auto r = charge_retries_.find(id);
      if (r == charge_retries_.end() || r->second.next_ns <= started)
        charges.push_back(durable_->charges.at(id - 1));
    }
    for (uint64_t id : durable_->due_refunds) {
      auto r = refund_retries_.find(id);
      if (r == refund_retries_.end() || r->second.next_ns <= started)
        refunds.push_back(durable_->charges.at(id - 1));
    }
  }
  const auto stopping = [&] { return stop && stop->load(std::memory_order_relaxed); };
  size_t settled = 0;

  // Records a final answer, like any command.
  const auto record = [&](const MarketEvent& e, const Charge& c, bool refund) -> bool {
    const int64_t now = clock_.now_ns();
    std::unique_lock lock(command_mutex_);
    sync_locked();
    const Charge& live = live_->charges.at(c.id - 1);
    if (refund ? live.refund != RefundState::pending : live.result != ChargeResult::pending)
      return true;  // answered meanwhile
    MarketEvent ev = e;
    if (auto* cs = std::get_if<ChargeSettled>(&ev)) cs->rating = live_->next_id;
    std::vector<ledger::SecretOp> erase;
    if (!refund && !c.token_ref.empty()) erase.push_back({c.token_ref, std::nullopt});
    auto t = commit_locked(ev, now, std::move(erase));
    if (!t) return false;
    lock.unlock();
    if (!await(t.value())) return false;
    (refund ? refund_retries_ : charge_retries_).erase(c.id);
    ++settled;
    return true;
  };

  for (const Charge& c : charges) {
    if (stopping()) return settled;
    Retry& r = charge_retries_[c.id];
    const int64_t now = clock_.now_ns();
    ChargeSettled e{
        c.id, 0,  c.lease,    c.payer,          c.amount, options_.currency, ChargeResult::error,
        {},   {}, r.attempts, c.idempotency_key};
    if (now - c.created_ns >= options_.settlement_deadline_ns) {
      e.reason = "no answer from the payment gateway before the settlement deadline" +
                 (r.error.empty() ? std::string() : ": " + r.error);
    } else {
      auto token = token_for(c);
      if (!token) {
        if (token.error_kind() == ErrorKind::unavailable) continue;  // the ledger: next pass
        e.reason = token.error();
      } else {
        ChargeRequest req{c.idempotency_key, c.lease,  c.payer,
                          token.value(),     c.amount, options_.currency};
        ChargeResponse resp;
        // An error means "unknown": the same key is tried again, now and in later passes,
        // and charged at most once.
        uint32_t tries = 0;
        do {
          resp = gateway_.charge(req);
          ++r.attempts;
        } while (resp.result == ChargeResult::error && ++tries <= options_.charge_retries &&
                 !stopping());
        if (resp.result == ChargeResult::error) {
          retry_later(r, resp.reason);
          continue;
        }
        e.result = resp.result;
        e.reference = resp.reference;
        e.reason = resp.reason;
        e.attempts = r.attempts;
      }
    }
    if (!record(e, c, false)) return settled;
  }

  for (const Charge& c : refunds) {
    if (stopping()) return settled;
    Retry& r = refund_retries_[c.id];
    const int64_t now = clock_.now_ns();
    RefundSettled e{c.id, ChargeResult::error, {}, {}, r.attempts};
    if (r.attempts > 0 && now - r.error_since >= options_.settlement_deadline_ns) {
      e.reason = "no answer from the payment gateway before the settlement deadline: " + r.error;
    } else {
      if (r.attempts == 0) r.error_since = now;
      RefundRequest req{c.idempotency_key + "-refund",
                        c.lease,
                        c.payer,
                        c.reference,
                        c.amount,
                        options_.currency};
      const ChargeResponse resp = gateway_.refund(req);
      ++r.attempts;
      if (resp.result == ChargeResult::error) {
        retry_later(r, resp.reason);
        continue;
      }
      e.result = resp.result;
      e.reference = resp.reference;
      e.reason = resp.reason;
      e.attempts = r.attempts;
    }
    if (!record(e, c, true)) return settled;
  }
  return settled;
}

}  // namespace segx::market
