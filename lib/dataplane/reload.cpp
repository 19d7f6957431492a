// Dataplane::reload: a new configuration's profiles, default action, subscribers and blocks
// taken while every lcore keeps running.
//
// A profile version lives in a slot (lcore_plan.hpp, ProfileRuntime): its rules, its chain on
// every worker, its counters. A reload builds the changed and new profiles' versions in free
// slots and a classifier that answers the new slots, all here on the main lcore, and then
// publishes the classifier and a new generation number. Each rx lcore takes the generation
// at the top of a loop turn and walks its flow table once (rx.cpp, rx_reload_step): flows
// of a retired version have their open segment closed (reason reload), and every flow is
// classified again at its next packet. A retired slot is freed once every rx lcore finished
// that pass and every segment opened in it has reached the record writer; the old
// classifier once every pass is done. Only one reload is applied at a time, so a flow's
// 8-bit generation tag is never ambiguous.

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "config/reload_diff.hpp"
#include "dataplane/dataplane_impl.hpp"

namespace segx::dataplane {

namespace {

// A profile's version: what reload_diff compares, and its place in the list (the first
// match wins, so a move changes which flows it takes).
std::string profile_version(const config::Config& c, size_t index) {
  return std::to_string(index) + "|" + config::profile_text(c.profiles[index]);
}

void reset(ProfileCounters& c) {
  c.packets.reset();
  c.bytes.reset();
  c.opened.reset();
  c.finished.reset();
  for (Counter& s : c.segments)
    s.reset();
}

}  // namespace

uint16_t Dataplane::Impl::meter_id(const std::string& name) {
  auto it = std::find(meter_names.begin(), meter_names.end(), name);
  if (it != meter_names.end()) return static_cast<uint16_t>(it - meter_names.begin());
  meter_names.push_back(name);
  return static_cast<uint16_t>(meter_names.size() - 1);
}

void Dataplane::Impl::fill_slot(uint32_t slot, const config::ProfileConfig& p,
                                const config::Config& c) {
  ProfileRuntime& r = shared.profiles[slot];
  r.rules.packets = p.segment.packets;
  r.rules.bytes = p.segment.bytes;
  r.rules.time = ns_to_tsc(p.segment.time);
  r.rules.idle = ns_to_tsc(p.segment.idle);
  r.rules.tcp_close = p.segment.tcp_close;
  r.output = static_cast<uint16_t>(c.port_index(p.output));
  r.metered = p.metered;
  r.unmetered_drop = p.unmetered == config::Unmetered::drop;
  r.meter_id = meter_id(p.name);
  __atomic_store_n(&r.retired, 0, __ATOMIC_RELAXED);
  ProfileSlot& s = slots[slot];
  s.state = ProfileSlot::State::live;
  s.name = p.name;
  s.version = profile_version(c, static_cast<size_t>(c.profile_index(p.name)));
  s.services.clear();
  for (const auto& e : p.services)
    s.services.push_back(e.name);
  s.retired_in = 0;
}

void Dataplane::Impl::apply_defaults() {
  for (size_t i = 0; i < config.ports.size(); ++i)
    shared.default_output[i].store(config.default_output_index(i), std::memory_order_relaxed);
  // A close comes at most a quarter of its limit late (plus scheduling).
  uint64_t shortest = shared.flow_idle_tsc;
  for (uint32_t slot : live_slots) {
    const SegmentRules& r = shared.profiles[slot].rules;
    if (r.time != 0) shortest = std::min(shortest, r.time);
    if (r.idle != 0) shortest = std::min(shortest, r.idle);
  }
  shared.scan_period_tsc.store(std::max<uint64_t>(shortest / 4, 1), std::memory_order_relaxed);
}

uint64_t Dataplane::Impl::settled() const {
  uint64_t done = generation;
  for (const LcorePlan* r : shared.rx_lcores)
    done = std::min(done, r->rx.pass_done.load(std::memory_order_acquire));
  return done;
}

void Dataplane::Impl::retire() {
  const uint64_t done = settled();
  std::erase_if(old_classifiers, [&](const auto& e) { return e.first <= done; });
  for (uint32_t slot = 0; slot < slots.size(); ++slot) {
    ProfileSlot& s = slots[slot];
    if (s.state != ProfileSlot::State::retiring || s.retired_in > done) continue;
    uint64_t opened = 0, finished = 0;
    for (const auto& plan : plans) {
      opened += plan->counters.profiles[slot].opened.get();
      finished += plan->counters.profiles[slot].finished.get();
    }
    if (opened != finished) continue;  // segments of it still in rings or held for a peer
    std::atomic_thread_fence(std::memory_order_acquire);
    write_records();  // its last records name it
    ProfileReport& carry = profile_carry[s.name];
    carry.name = s.name;
    for (auto& plan : plans) {
      ProfileCounters& pc = plan->counters.profiles[slot];
      add_counters(carry, pc);
      reset(pc);
    }
    for (LcorePlan* w : shared.worker_lcores) {
      for (size_t i = 0; i < s.services.size() && i < w->counters.services[slot].size(); ++i) {
        const ServiceCounters& sc = w->counters.services[slot][i];
        ServiceStats& ss = service_carry[{s.name, s.services[i]}];
        ss.profile = s.name;
        ss.service = s.services[i];
        ss.calls += sc.calls.get();
        ss.packets += sc.packets.get();
        ss.segments += sc.segments.get();
      }
      install_chain(*w, slot, ChainBuild{});
    }
    s = ProfileSlot{};
  }
}

uint64_t Dataplane::generation() const {
  return impl_->generation;
}

Result<ReloadChanges> Dataplane::reload(const config::Config& next) {
  Impl& d = *impl_;
  if (!d.launched || d.stopped) return Error{"the data plane is not running"};
  // One reload at a time: the previous one's passes take milliseconds.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (d.settled() < d.generation) {
    if (std::chrono::steady_clock::now() > deadline)
      return Error{"the previous reload is still being applied by the rx lcores; try again"};
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  d.retire();
  const config::Config& cur = d.config;
  if (next.ports.size() != cur.ports.size())
    return Error{"ports changed: restart segx to apply a change of ports"};

  ReloadChanges ch;
  std::vector<uint32_t> next_slots(next.profiles.size(), 0);
  std::vector<size_t> fresh;  // profiles of `next` that need a new slot
  for (size_t i = 0; i < next.profiles.size(); ++i) {
    const std::string& name = next.profiles[i].name;
    const int j = cur.profile_index(name);
    if (j >= 0 &&
        d.slots[d.live_slots[static_cast<size_t>(j)]].version == profile_version(next, i)) {
      next_slots[i] = d.live_slots[static_cast<size_t>(j)];
      continue;
    }
    fresh.push_back(i);
    (j >= 0 ? ch.profiles_changed : ch.profiles_added).push_back(name);
  }
  // Running versions no profile of `next` keeps.
  std::set<uint32_t> kept;
  for (size_t i = 0; i < next.profiles.size(); ++i) {
    if (std::find(fresh.begin(), fresh.end(), i) == fresh.end()) kept.insert(next_slots[i]);
  }
  std::vector<uint32_t> retiring;
  for (size_t j = 0; j < cur.profiles.size(); ++j) {
    if (next.profile_index(cur.profiles[j].name) < 0)
      ch.profiles_removed.push_back(cur.profiles[j].name);
    if (!kept.count(d.live_slots[j])) retiring.push_back(d.live_slots[j]);
  }
  for (size_t port = 0; port < cur.ports.size(); ++port)
    ch.default_action =
        ch.default_action || cur.default_output_index(port) != next.default_output_index(port);
  ch.subscribers =
      config::subscribers_text(cur.subscribers) != config::subscribers_text(next.subscribers);
  for (const auto& b : next.blocks) {
    auto it = std::find_if(cur.blocks.begin(), cur.blocks.end(),
                           [&](const config::BlockConfig& x) { return x.id == b.id; });
    if (it == cur.blocks.end()) {
      ch.blocks_added.push_back(b.id);
    } else if (config::block_text(*it) != config::block_text(b)) {
      ch.blocks_changed.push_back(b.id);
    }
  }
  for (const auto& b : cur.blocks) {
    if (std::none_of(next.blocks.begin(), next.blocks.end(),
                     [&](const config::BlockConfig& x) { return x.id == b.id; }))
      ch.blocks_removed.push_back(b.id);
  }
  ch.generation = d.generation;
  if (ch.empty()) {
    d.config = next;  // what differs (log level, say) is not the data plane's
    return ch;
  }

  // Everything that can fail, before anything changes.
  std::vector<uint32_t> free_slots;
  for (uint32_t s = 0; s < d.slots.size() && free_slots.size() < fresh.size(); ++s) {
    if (d.slots[s].state == ProfileSlot::State::free) free_slots.push_back(s);
  }
  if (free_slots.size() < fresh.size()) {
    return Error{
        "no free profile slot: earlier versions of changed profiles still have segments "
        "in flight; try again in a moment"};
  }
  for (size_t i : fresh) {
    const config::ProfileConfig& p = next.profiles[i];
    if (p.metered && !d.metering) {
      return Error{"profile '" + p.name +
                   "' is metered, but no profile was metered at start (metering's tables are "
                   "made at start): restart segx to add the first metered profile"};
    }
  }
  // chains[k][w]: fresh profile k's chain on worker w.
  std::vector<std::vector<ChainBuild>> chains(fresh.size());
  for (size_t k = 0; k < fresh.size(); ++k) {
    for (const LcorePlan* w : d.shared.worker_lcores) {
      auto b = d.build_chain(*w, next, next.profiles[fresh[k]]);
      if (!b) return Error{b.error()};
      if (b.value().mirrors && !d.shared.mirroring) {
        return Error{"profile '" + next.profiles[fresh[k]].name +
                     "': a service that mirrors packets, and none did at start (the tx stage is "
                     "built without mirroring): restart segx to add it"};
      }
      chains[k].push_back(std::move(b).value());
    }
  }
  for (size_t k = 0; k < fresh.size(); ++k)
    next_slots[fresh[k]] = free_slots[k];
  const uint64_t gen = d.generation + 1;
  auto cls = Classifier::build(next, "segx_acl_g" + std::to_string(gen), next_slots);
  if (!cls) return Error{cls.error()};

  // Commit: nothing below fails. New slots first (no lcore reads a free slot), then the
  // classifier that answers them, then the generation that makes rx lcores take it.
  for (size_t k = 0; k < fresh.size(); ++k) {
    const uint32_t slot = free_slots[k];
    d.fill_slot(slot, next.profiles[fresh[k]], next);
    for (size_t w = 0; w < d.shared.worker_lcores.size(); ++w)
      d.install_chain(*d.shared.worker_lcores[w], slot, std::move(chains[k][w]));
  }
  for (uint32_t slot : retiring) {
    d.slots[slot].state = ProfileSlot::State::retiring;
    d.slots[slot].retired_in = gen;
    __atomic_store_n(&d.shared.profiles[slot].retired, 1, __ATOMIC_RELEASE);
  }
  d.old_classifiers.emplace_back(gen, std::move(d.classifier));
  d.classifier = std::move(cls).value();
  d.shared.classifier.store(d.classifier.get(), std::memory_order_release);
  d.live_slots = next_slots;

  // Blocks: unchanged ones run on; a changed or removed one that is active ends now (its
  // usage recorded), and a changed one starts again as configured.
  std::vector<ScheduledBlock> schedule;
  for (const auto& b : next.blocks) {
    auto it = std::find_if(d.schedule.begin(), d.schedule.end(),
                           [&](const ScheduledBlock& sb) { return sb.block.id == b.id; });
    if (it != d.schedule.end() && config::block_text(it->block) == config::block_text(b)) {
      schedule.push_back(std::move(*it));
      d.schedule.erase(it);
    } else {
      schedule.push_back(ScheduledBlock{b, ScheduledBlock::State::waiting, {}});
    }
  }
  for (ScheduledBlock& sb : d.schedule) {
    if (sb.state == ScheduledBlock::State::active) {
      if (auto u = d.metering->deactivate(sb.block.id)) d.block_usage.push_back(u.value());
    }
  }
  d.schedule = std::move(schedule);
  if (d.metering) {
    for (const auto& p : cur.profiles)
      d.metering->set_profile(d.meter_id(p.name), p.name, false);
    for (const auto& p : next.profiles)
      d.metering->set_profile(d.meter_id(p.name), p.name, p.metered);
  }
  d.config = next;
  d.apply_defaults();
  d.generation = gen;
  d.shared.generation.store(gen, std::memory_order_release);
  ch.generation = gen;

  telemetry_profiles(profile_infos(next));
  return ch;
}

}  // namespace segx::dataplane
