#include "market/series.hpp"

#include <algorithm>
#include <limits>

namespace segx::market {

namespace {

// What the ring holds per point: the sequence number and the interval's length follow from
// the position and the previous point's time.
struct Stored {
  int64_t t_ms;
  std::array<uint64_t, 4> bytes;
  std::array<uint32_t, 4> packets;
};
static_assert(sizeof(Stored) == BlockSeries::point_bytes);

// Rings grow by this many points (five minutes) up to max_points, so a short block never
// holds a day's worth and a long one overshoots by at most one step.
constexpr size_t grow_step = 300;
// Rates over the last 10 s take the points of the last 10 intervals.
constexpr size_t rate_window = 10;

uint64_t minus(uint64_t now, uint64_t before) {
  // Counters only grow; a smaller one is a new activation that sample() restarts.
  return now >= before ? now - before : 0;
}

uint32_t saturate(uint64_t v) {
  return static_cast<uint32_t>(std::min<uint64_t>(v, std::numeric_limits<uint32_t>::max()));
}

double bps(uint64_t bytes, int64_t dt_ms) {
  return dt_ms <= 0 ? 0.0 : static_cast<double>(bytes) * 8.0 * 1000.0 / static_cast<double>(dt_ms);
}

}  // namespace

double SeriesPoint::offered_bps() const {
  return bps(bytes[0] + bytes[1] + bytes[2], dt_ms);
}

double SeriesPoint::delivered_bps() const {
  return bps(minus(bytes[0] + bytes[1], bytes[3]), dt_ms);
}

struct BlockSeries::Series {
  std::string id;
  uint64_t serial = 0;
  uint64_t min_rate = 0, max_rate = 0;
  bool active = true;
  int64_t ended_ns = 0;
  BlockSample last;             // cumulative counters at the newest point
  int64_t last_t_ms = 0;        // time of `last` (the activation before the first point)
  int64_t before_first_ms = 0;  // the end of the interval before the oldest point kept
  std::vector<Stored> ring;
  size_t head = 0;    // index of the oldest point once the ring is full
  uint64_t next = 0;  // sequence number of the next point
  Compliance compliance;
  // Per member: cumulative delivered bytes (green + yellow) at the last rate_window + 1
  // samples, oldest first, for its 1 s and 10 s rates.
  std::map<std::string, std::vector<std::pair<int64_t, uint64_t>>> member_history;

  size_t count() const { return ring.size(); }
  const Stored& at(size_t i) const {  // i-th oldest
    return ring[(head + i) % ring.size()];
  }
  uint64_t first() const { return next - ring.size(); }
  int64_t t_before(size_t i) const { return i == 0 ? before_first_ms : at(i - 1).t_ms; }

  // Adds the point from `last` to `s` at now_ms, with its compliance; nothing once ended.
  void take(const BlockSample& s, int64_t now_ms, size_t max_points);

  void push(const Stored& p, size_t max_points) {
    if (ring.size() < max_points) {
      if (ring.size() == ring.capacity())
        ring.reserve(std::min(max_points, ring.capacity() + grow_step));
      ring.push_back(p);
    } else {
      // Full: the oldest goes; its end is where the new oldest starts.
      before_first_ms = ring[head].t_ms;
      ring[head] = p;
      head = (head + 1) % ring.size();
    }
    ++next;
  }
};

BlockSeries::BlockSeries(SeriesOptions options) : options_(options) {
  options_.max_points = std::max<size_t>(options_.max_points, 1);
}

BlockSeries::~BlockSeries() = default;

void BlockSeries::sample(const BlockSample& s, int64_t start_ns, int64_t now_ns) {
  const int64_t now_ms = now_ns / 1'000'000;
  std::lock_guard lock(mutex_);
  auto& slot = series_[s.id];
  if (!slot || slot->serial != s.serial) {
    // A new activation (or the same id activated again after it ended): a new series.
    slot = std::make_unique<Series>();
    slot->id = s.id;
    slot->serial = s.serial;
    slot->last_t_ms = std::min(start_ns / 1'000'000, now_ms);
    slot->before_first_ms = slot->last_t_ms;
  }
  slot->take(s, now_ms, options_.max_points);
}

void BlockSeries::Series::take(const BlockSample& s, int64_t now_ms, size_t max_points) {
  Series& r = *this;
  if (!r.active) return;  // ended: end() took the last figures
  r.min_rate = s.min_rate;
  r.max_rate = s.max_rate;
  const int64_t dt = now_ms - r.last_t_ms;
  if (dt <= 0) return;  // within the same millisecond: the next sample takes it
  Stored p{};
  p.t_ms = now_ms;
  for (size_t c = 0; c < 3; ++c) {
    p.bytes[c] = minus(s.bytes[c], r.last.bytes[c]);
    p.packets[c] = saturate(minus(s.packets[c], r.last.packets[c]));
  }
  p.bytes[3] = minus(s.dropped_bytes, r.last.dropped_bytes);
  p.packets[3] = saturate(minus(s.dropped_packets, r.last.dropped_packets));

  // Compliance counts whole seconds: an interval shorter than half a second (the first,
  // after an activation between two samples, or the last at the end) is drawn, not judged.
  if (dt * 2 >= 1000) {
    SeriesPoint q;
    q.dt_ms = static_cast<uint32_t>(dt);
    q.bytes = p.bytes;
    ++r.compliance.seconds;
    if (r.min_rate > 0 && q.offered_bps() >= static_cast<double>(r.min_rate)) {
      ++r.compliance.owed_seconds;
      if (q.delivered_bps() < static_cast<double>(r.min_rate)) ++r.compliance.shortfall_seconds;
    }
    if (p.bytes[2] > 0) ++r.compliance.at_max_seconds;
  }
  r.push(p, max_points);
  for (const auto& [label, b] : s.members) {
    auto& h = r.member_history[label];
    h.emplace_back(now_ms, b[0] + b[1]);
    if (h.size() > rate_window + 1) h.erase(h.begin());
  }
  r.last = s;
  r.last_t_ms = now_ms;
}

Compliance BlockSeries::end(const BlockSample& s, int64_t now_ns) {
  std::lock_guard lock(mutex_);
  auto it = series_.find(s.id);
  if (it == series_.end() || it->second->serial != s.serial || !it->second->active) return {};
  Series& r = *it->second;
  r.take(s, now_ns / 1'000'000, options_.max_points);
  r.active = false;
  r.ended_ns = now_ns;
  return r.compliance;
}

void BlockSeries::end_missing(const std::vector<std::string>& active, int64_t now_ns) {
  std::lock_guard lock(mutex_);
  for (auto& [id, r] : series_) {
    if (r->active && std::find(active.begin(), active.end(), id) == active.end()) {
      r->active = false;
      r->ended_ns = now_ns;
    }
  }
}

size_t BlockSeries::expire(int64_t now_ns) {
  std::lock_guard lock(mutex_);
  size_t n = 0;
  for (auto it = series_.begin(); it != series_.end();) {
    const Series& r = *it->second;
    if (!r.active && now_ns - r.ended_ns >= options_.keep_ended_ns) {
      it = series_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

void BlockSeries::fill(const Series& r, SeriesView& v) {
  v.id = r.id;
  v.min_rate = r.min_rate;
  v.max_rate = r.max_rate;
  v.active = r.active;
  v.first = r.first();
  v.next = r.next;
  v.compliance = r.compliance;
  // The totals are the counters of the newest sample.
  for (size_t c = 0; c < 3; ++c) {
    v.total_bytes[c] = r.last.bytes[c];
    v.total_packets[c] = r.last.packets[c];
  }
  v.total_bytes[3] = r.last.dropped_bytes;
  v.total_packets[3] = r.last.dropped_packets;
  // Rates from the newest points: the last interval, and the last ten.
  const size_t n = r.count();
  uint64_t offered = 0, delivered = 0;
  int64_t span = 0;
  for (size_t k = 0; k < std::min(n, rate_window); ++k) {
    const size_t i = n - 1 - k;
    const Stored& p = r.at(i);
    const uint64_t o = p.bytes[0] + p.bytes[1] + p.bytes[2];
    const uint64_t d = minus(p.bytes[0] + p.bytes[1], p.bytes[3]);
    const int64_t dt = p.t_ms - r.t_before(i);
    if (k == 0) {
      v.offered_bps_1s = bps(o, dt);
      v.delivered_bps_1s = bps(d, dt);
    }
    offered += o;
    delivered += d;
    span += dt;
  }
  v.offered_bps_10s = bps(offered, span);
  v.delivered_bps_10s = bps(delivered, span);
  v.members.clear();
  for (const auto& [label, b] : r.last.members) {
    MemberLive m;
    m.label = label;
    m.bytes = b;
    auto h = r.member_history.find(label);
    if (h != r.member_history.end() && h->second.size() >= 2) {
      const auto& hist = h->second;
      const auto& newest = hist.back();
      const auto& prev = hist[hist.size() - 2];
      m.delivered_bps_1s = bps(minus(newest.second, prev.second), newest.first - prev.first);
      m.delivered_bps_10s =
          bps(minus(newest.second, hist.front().second), newest.first - hist.front().first);
    }
    v.members.push_back(std::move(m));
  }
}

std::optional<SeriesView> BlockSeries::view(const std::string& id, uint64_t since,
                                            size_t max_points) const {
  std::lock_guard lock(mutex_);
  auto it = series_.find(id);
  if (it == series_.end()) return std::nullopt;
  const Series& r = *it->second;
  SeriesView v;
  fill(r, v);
  const uint64_t from = std::max(since, r.first());
  if (from < r.next) {
    const uint64_t end = from + std::min<uint64_t>(r.next - from, max_points);
    v.points.reserve(end - from);
    for (uint64_t seq = from; seq < end; ++seq) {
      const size_t i = seq - r.first();
      const Stored& s = r.at(i);
      SeriesPoint p;
      p.seq = seq;
      p.t_ms = s.t_ms;
      p.dt_ms = static_cast<uint32_t>(std::max<int64_t>(0, s.t_ms - r.t_before(i)));
      p.bytes = s.bytes;
      p.packets = s.packets;
      v.points.push_back(p);
    }
  }
  return v;
}

std::vector<SeriesView> BlockSeries::active() const {
  std::lock_guard lock(mutex_);
  std::vector<SeriesView> out;
  for (const auto& [id, r] : series_) {
    if (!r->active) continue;
    out.emplace_back();
    fill(*r, out.back());
  }
  return out;
}

size_t BlockSeries::size() const {
  std::lock_guard lock(mutex_);
  return series_.size();
}

size_t BlockSeries::memory_bytes() const {
  std::lock_guard lock(mutex_);
  size_t n = 0;
  for (const auto& [id, r] : series_)
    n += r->ring.capacity() * sizeof(Stored);
  return n;
}

}  // namespace segx::market
