#pragma once
// segx's Prometheus client: a registry of metric families, shaped like prometheus-cpp
// (not packaged for Debian 12), and the text exposition format 0.0.4.
//
// Two ways to publish a metric:
// - instruments owned by the registry (Counter, Gauge, Histogram in a Family, one per label
//   set), updated by control-plane code as things happen;
// - collectors: callbacks run at every scrape that return families built from state kept
//   elsewhere. The data plane uses one (its per-lcore counters are summed when scraped), and
//   later modules (market, ledger, API) register theirs the same way.
// Nothing here includes DPDK headers.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace segx::metrics {

/// Label names and values of one series, in the order they are written.
using Labels = std::vector<std::pair<std::string, std::string>>;

/// The metric types segx exposes.
enum class Type { counter, gauge, histogram };

/// A histogram's state: upper bounds (ascending, finite; +Inf is implied), observations per
/// bucket (bounds.size() + 1 entries, the last for above every bound; not cumulative), and
/// the sum of observed values.
struct HistogramValue {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;
  double sum = 0;
};

/// One series of a family: its labels and its value (histogram for Type::histogram).
struct Sample {
  Labels labels;
  double value = 0;
  HistogramValue histogram;
};

/// A metric family as a scrape sees it. Collectors build these.
struct FamilySnapshot {
  std::string name;  ///< [a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total
  std::string help;
  Type type = Type::gauge;
  std::vector<Sample> samples;

  /// Appends a counter or gauge series.
  FamilySnapshot& add(Labels labels, double value);
  /// Appends a histogram series.
  FamilySnapshot& add(Labels labels, HistogramValue histogram);
};

/// True for a valid metric name.
bool valid_metric_name(std::string_view name);
/// True for a valid label name (not reserved: no leading "__").
bool valid_label_name(std::string_view name);

/// Text exposition format 0.0.4 of the families: one HELP and TYPE per family, families with
/// the same name merged into one group, histograms as _bucket (cumulative, ending with
/// le="+Inf"), _sum and _count. Throws std::invalid_argument for an invalid metric or label
/// name, a type that differs between parts of one family, or histogram bounds not ascending.
std::string serialize(const std::vector<FamilySnapshot>& families);

/// HELP text escaping: backslash and newline.
std::string escape_help(std::string_view text);
/// Label value escaping: backslash, double quote and newline.
std::string escape_label_value(std::string_view text);
/// A sample value as the format wants it: integers without exponent or fraction, +Inf,
/// -Inf, NaN, otherwise the shortest text that reads back as the same double.
std::string format_value(double value);

/// A monotonically increasing value. Thread-safe; lock-free.
class Counter {
 public:
  /// Adds `v` (must not be negative; a negative amount is ignored).
  void increment(double v = 1);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

/// A value that goes up and down. Thread-safe; lock-free.
class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void increment(double v = 1);
  void decrement(double v = 1) { increment(-v); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

/// Observations counted in buckets by upper bound. Thread-safe; lock-free.
class Histogram {
 public:
  /// `bounds` ascending and finite; throws std::invalid_argument otherwise.
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  HistogramValue value() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

/// Instruments of one family, one per label set. Instruments never move, so a reference
/// returned by add() stays valid as long as the registry.
template <class T>
class Family {
 public:
  /// The instrument for these labels, created on first use. Throws std::invalid_argument
  /// for an invalid label name.
  T& add(const Labels& labels);

 private:
  friend class Registry;
  Family(std::string name, std::string help, Type type, std::vector<double> bounds = {})
      : name_(std::move(name)), help_(std::move(help)), type_(type), bounds_(std::move(bounds)) {}
  FamilySnapshot snapshot() const;

  std::string name_, help_;
  Type type_;
  std::vector<double> bounds_;  ///< histograms only
  mutable std::mutex mutex_;    ///< guards the list, not the instruments
  std::deque<std::pair<Labels, T>> instruments_;
};

/// All of segx's metrics. Register at start-up; collect() and expose() are thread-safe and
/// may run while instruments are updated.
class Registry {
 public:
  /// Builds families at scrape time; appends them to the vector it is given.
  using Collector = std::function<void(std::vector<FamilySnapshot>&)>;

  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  /// New families of instruments. Throw std::invalid_argument for an invalid or already
  /// registered name, or a counter whose name does not end in _total.
  Family<Counter>& add_counter(const std::string& name, const std::string& help);
  Family<Gauge>& add_gauge(const std::string& name, const std::string& help);
  Family<Histogram>& add_histogram(const std::string& name, const std::string& help,
                                   std::vector<double> bounds);
  /// Adds a collector; it runs on the scraping thread and must be thread-safe.
  void add_collector(Collector collector);

  /// Every family, in the order families and collectors were registered.
  std::vector<FamilySnapshot> collect() const;
  /// collect() in the text exposition format.
  std::string expose() const { return serialize(collect()); }

 private:
  void claim(const std::string& name, Type type);

  mutable std::mutex mutex_;
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<Family<Counter>>> counters_;
  std::vector<std::unique_ptr<Family<Gauge>>> gauges_;
  std::vector<std::unique_ptr<Family<Histogram>>> histograms_;
  std::vector<std::function<void(std::vector<FamilySnapshot>&)>> order_;  ///< snapshot makers
};

/// The content type of serialize()'s output.
inline constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

/// Registers segx_build_info{version, dpdk} (always 1) and segx_start_time_seconds (seconds
/// since the Unix epoch).
void add_process_info(Registry& registry, const std::string& version,
                      const std::string& dpdk_version, double start_time_seconds);

}  // namespace segx::metrics
