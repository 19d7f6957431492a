// Time blocks: activation and deactivation (by the market or the configuration's blocks),
// and the control loop's poll that writes records, runs the block schedule and answers
// readers.

#include "dataplane/dataplane_impl.hpp"

namespace segx::dataplane {

namespace {

// A block's totals for the log line of its end, which outlives the statistics (keep_ended).
std::string usage_summary(const BlockUsage& u) {
  static constexpr const char* colours[] = {"green", "yellow", "red"};
  std::string s;
  for (size_t c = 0; c < 3; ++c) {
    s += std::string(c ? ", " : "") + colours[c] + " " + std::to_string(u.total.packets[c]) +
         " packets " + std::to_string(u.total.bytes[c]) + " bytes";
  }
  return s;
}

}  // namespace

Status Dataplane::activate_block(const config::BlockConfig& block) {
  Impl& d = *impl_;
  if (!d.metering) return Error{"no profile is metered, so blocks cannot be activated"};
  auto members = resolve_members(d.config, block.members);
  if (!members) return Error{"block '" + block.id + "': " + members.error()};
  const int profile = d.config.profile_index(block.profile);
  if (profile < 0) return Error{"block '" + block.id + "': no profile '" + block.profile + "'"};
  BlockSpec spec{block.id, d.meter_id(block.profile), block.min_rate, block.max_rate,
                 std::move(members).value()};
  auto serial = d.metering->activate(spec);
  if (!serial) return Error{serial.error()};
  d.block_ids[serial.value()] = block.id;
  return {};
}

Result<BlockUsage> Dataplane::deactivate_block(const std::string& id) {
  Impl& d = *impl_;
  if (!d.metering) return Error{"no profile is metered"};
  auto usage = d.metering->deactivate(id);
  if (usage) d.block_usage.push_back(usage.value());
  return usage;
}

Result<BlockUsage> Dataplane::block_usage(const std::string& id) const {
  if (!impl_->metering) return Error{"no profile is metered"};
  return impl_->metering->usage(id);
}

std::vector<BlockUsage> Dataplane::active_blocks() const {
  std::vector<BlockUsage> out;
  if (!impl_->metering) return out;
  for (const std::string& id : impl_->metering->active()) {
    if (auto u = impl_->metering->usage(id)) out.push_back(std::move(u).value());
  }
  return out;
}

std::vector<std::string> Dataplane::poll(int64_t elapsed_ns, int64_t now_ns) {
  Impl& d = *impl_;
  std::vector<std::string> log;
  d.write_records();
  d.retire();
  for (ScheduledBlock& sb : d.schedule) {
    const config::BlockConfig& b = sb.block;
    // Where the block is on its own clock: from segx's start, or from the wall clock.
    const int64_t since_start =
        b.start_at ? now_ns - *b.start_at : elapsed_ns - b.start_after.count();
    if (sb.state == ScheduledBlock::State::waiting && since_start >= 0) {
      if (since_start >= b.duration.count()) {
        sb.state = ScheduledBlock::State::done;
        log.push_back("block " + b.id + " ended before segx started; not activated");
      } else if (Status s = activate_block(b); s) {
        sb.state = ScheduledBlock::State::active;
        sb.active_since = std::chrono::steady_clock::now();
        log.push_back("block " + b.id + " active for " + config::format_duration(b.duration) +
                      " (profile " + b.profile + ")");
      } else {
        sb.state = ScheduledBlock::State::done;
        log.push_back("block " + b.id + " not activated: " + s.error());
      }
    } else if (sb.state == ScheduledBlock::State::active &&
               std::chrono::steady_clock::now() - sb.active_since >= b.duration) {
      sb.state = ScheduledBlock::State::done;
      auto usage = deactivate_block(b.id);
      log.push_back(
          "block " + b.id + " ended" +
          (usage ? ": " + usage_summary(usage.value()) : std::string(" (") + usage.error() + ")"));
    }
  }
  // Ended blocks stay in the statistics long enough for the last scrapes to see their final
  // counts, and no longer: a run that meters a block a minute for a year stays flat.
  const int64_t keep = std::chrono::nanoseconds(d.config.pipeline.metering.keep_ended).count();
  d.blocks_expired += std::erase_if(d.block_usage, [&](const BlockUsage& u) {
    return u.end_ns != 0 && now_ns - u.end_ns > keep;
  });
  for (std::string& line : d.poll_links())
    log.push_back(std::move(line));
  // Last, so that a reader sees the blocks this poll started or ended.
  if (uint64_t upto = 0; d.exchange->pending(upto))
    d.exchange->publish(std::make_shared<const Stats>(d.collect()), upto, false);
  return log;
}

}  // namespace segx::dataplane
