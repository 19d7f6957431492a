#pragma once
// What a block delivers, second by second (issue 18): the control plane reads each active
// block's cumulative counters from the data plane once a second and keeps the differences in
// a bounded ring per block, with the compliance summary (types.hpp, Compliance) and per-member
// rates. The API reads it for GET /v1/blocks/{id}, .../series and .../stream; /metrics for
// the per-block rate gauges; the lease's usage event takes the compliance summary when the
// block ends. Plain C++: the data plane's figures arrive as BlockSample.

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "market/types.hpp"

namespace segx::market {

/// Cumulative counters of one block, as the data plane reports them. Colours: [0] green,
/// [1] yellow, [2] red (dropped by the meter).
struct BlockSample {
  std::string id;
  uint64_t serial = 0;    ///< the data plane's activation: a new serial starts a new series
  uint64_t min_rate = 0;  ///< bits per second, 0 for none
  uint64_t max_rate = 0;
  std::array<uint64_t, 3> packets{};
  std::array<uint64_t, 3> bytes{};
  uint64_t dropped_packets = 0;  ///< passed by the meter, dropped afterwards (a full ring)
  uint64_t dropped_bytes = 0;
  std::vector<std::pair<std::string, std::array<uint64_t, 3>>> members;  ///< bytes by label
};

/// One point: what a block carried in about one second, ending at `t_ms`.
struct SeriesPoint {
  uint64_t seq = 0;    ///< from 0 at the block's activation
  int64_t t_ms = 0;    ///< wall clock at the end of the interval, ms since the Unix epoch
  uint32_t dt_ms = 0;  ///< length of the interval
  std::array<uint64_t, 4> bytes{};    ///< green, yellow, red, dropped
  std::array<uint32_t, 4> packets{};  ///< green, yellow, red, dropped (saturated)
  /// Bits per second offered (green + yellow + red) and delivered (green + yellow - dropped).
  double offered_bps() const;
  double delivered_bps() const;
};

/// A member's figures now.
struct MemberLive {
  std::string label;
  std::array<uint64_t, 3> bytes{};  ///< cumulative, by colour
  double delivered_bps_1s = 0, delivered_bps_10s = 0;
};

/// A block's series as a reader sees it.
struct SeriesView {
  std::string id;
  uint64_t min_rate = 0, max_rate = 0;
  bool active = false;
  uint64_t first = 0;               ///< oldest point still kept
  uint64_t next = 0;                ///< the next point's sequence number
  std::vector<SeriesPoint> points;  ///< those asked for, oldest first
  Compliance compliance;
  // Totals and rates, for the block's live figures.
  std::array<uint64_t, 4> total_bytes{}, total_packets{};  ///< green, yellow, red, dropped
  double delivered_bps_1s = 0, delivered_bps_10s = 0, offered_bps_1s = 0, offered_bps_10s = 0;
  std::vector<MemberLive> members;
};

/// Limits of the store.
struct SeriesOptions {
  size_t max_points = 86'400;  ///< per block: a day at 1 s; older points are overwritten
  int64_t keep_ended_ns = 15LL * 60 * 1'000'000'000;  ///< an ended block's series is kept this long
};

/// Per-block series. Thread-safe: one thread samples, any thread reads.
class BlockSeries {
 public:
  explicit BlockSeries(SeriesOptions options = {});
  ~BlockSeries();
  BlockSeries(const BlockSeries&) = delete;
  BlockSeries& operator=(const BlockSeries&) = delete;

  /// Bytes one point takes in the ring: memory is at most about this times max_points per
  /// block kept.
  static constexpr size_t point_bytes = 56;

  /// Takes the cumulative counters of the blocks active at `now_ns` (wall clock): each adds a
  /// point with what changed since its previous sample (the first from zero at activation,
  /// `start_ns`). Blocks not sampled keep their series until end() or their expiry.
  void sample(const BlockSample& s, int64_t start_ns, int64_t now_ns);
  /// The block ended at `now_ns` with these final counters: a last point, then the series is
  /// kept for keep_ended_ns. Returns its compliance (zeros when it has no series).
  Compliance end(const BlockSample& s, int64_t now_ns);
  /// Ends the active series whose id is not in `active` (a block the data plane ended on its
  /// own, such as a configured one), without a last point.
  void end_missing(const std::vector<std::string>& active, int64_t now_ns);
  /// Forgets ended series older than keep_ended_ns. Returns how many.
  size_t expire(int64_t now_ns);

  /// The oldest `max_points` points from `since` (a sequence number; older ones are gone when
  /// the ring is full) on; nullopt when no series is kept for `id`.
  std::optional<SeriesView> view(const std::string& id, uint64_t since,
                                 size_t max_points = SIZE_MAX) const;
  /// Every active block's figures without points (for /metrics).
  std::vector<SeriesView> active() const;
  /// Series kept now (active and ended).
  size_t size() const;
  /// Bytes the points take (the rings' capacity).
  size_t memory_bytes() const;

 private:
  struct Series;
  static void fill(const Series& s, SeriesView& v);
  SeriesOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Series>> series_;
};

}  // namespace segx::market
