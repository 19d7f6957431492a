#include "metrics/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <stdexcept>

namespace segx::metrics {

namespace {

bool name_char(char c, bool first, bool colon) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return alpha || (colon && c == ':') || (!first && c >= '0' && c <= '9');
}

bool valid_name(std::string_view name, bool colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!name_char(name[i], i == 0, colon)) return false;
  }
  return true;
}

// std::atomic<double>::fetch_add is C++20 but not lock-free everywhere; a CAS loop is.
void atomic_add(std::atomic<double>& a, double v) {
  double old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, old + v, std::memory_order_relaxed)) {
  }
}

std::string_view type_name(Type t) {
  switch (t) {
    case Type::counter:
      return "counter";
    case Type::gauge:
      return "gauge";
    case Type::histogram:
      return "histogram";
  }
  return "untyped";
}

void check_bounds(const std::vector<double>& bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i - 1] < bounds[i]))) {
      throw std::invalid_argument("histogram bounds must be finite and strictly ascending");
    }
  }
}

void write_labels(std::string& out, const Labels& labels, const char* extra_name = nullptr,
                  const std::string& extra_value = {}) {
  if (labels.empty() && extra_name == nullptr) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!valid_label_name(k) || k == "le") {
      throw std::invalid_argument("invalid label name '" + k + "'");
    }
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    out += escape_label_value(v);
    out += '"';
  }
  if (extra_name != nullptr) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

void write_sample(std::string& out, const std::string& name, const char* suffix,
                  const Labels& labels, const std::string& value, const char* extra_name = nullptr,
                  const std::string& extra_value = {}) {
  out += name;
  out += suffix;
  write_labels(out, labels, extra_name, extra_value);
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace

FamilySnapshot& FamilySnapshot::add(Labels labels, double value) {
  samples.push_back(Sample{std::move(labels), value, {}});
  return *this;
}

FamilySnapshot& FamilySnapshot::add(Labels labels, HistogramValue histogram) {
  samples.push_back(Sample{std::move(labels), 0, std::move(histogram)});
  return *this;
}

bool valid_metric_name(std::string_view name) {
  return valid_name(name, true);
}

bool valid_label_name(std::string_view name) {
  return valid_name(name, false) && !name.starts_with("__");
}

std::string escape_help(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_label_value(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Counters of packets and bytes are integers: print them as such (exact up to 2^53).
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    return std::to_string(static_cast<int64_t>(value));
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  (void)ec;
  return std::string(buf, end);
}

std::string serialize(const std::vector<FamilySnapshot>& families) {
  // Group parts of one family (say, two collectors contributing to one name) so that each
  // family is written once, in the order of its first appearance.
  std::vector<std::vector<const FamilySnapshot*>> groups;
  std::map<std::string_view, size_t> index;
  for (const FamilySnapshot& f : families) {
    if (!valid_metric_name(f.name))
      throw std::invalid_argument("invalid metric name '" + f.name + "'");
    auto [it, inserted] = index.try_emplace(f.name, groups.size());
    if (inserted) {
      groups.emplace_back();
    } else if (groups[it->second].front()->type != f.type) {
      throw std::invalid_argument("metric '" + f.name + "' has two types");
    }
    groups[it->second].push_back(&f);
  }
  std::string out;
  for (const auto& parts : groups) {
    const FamilySnapshot& head = *parts.front();
    std::string help = head.help;
    for (const FamilySnapshot* p : parts) {
      if (help.empty()) help = p->help;
    }
    out += "# HELP " + head.name + " " + escape_help(help) + "\n";
    out += "# TYPE " + head.name + " " + std::string(type_name(head.type)) + "\n";
    for (const FamilySnapshot* p : parts) {
      for (const Sample& s : p->samples) {
        if (head.type != Type::histogram) {
          write_sample(out, head.name, "", s.labels, format_value(s.value));
          continue;
        }
        const HistogramValue& h = s.histogram;
        check_bounds(h.bounds);
        uint64_t cumulative = 0;
        for (size_t b = 0; b <= h.bounds.size(); ++b) {
          cumulative += b < h.counts.size() ? h.counts[b] : 0;
          const std::string le = b < h.bounds.size() ? format_value(h.bounds[b]) : "+Inf";
          write_sample(out, head.name, "_bucket", s.labels,
                       format_value(static_cast<double>(cumulative)), "le", le);
        }
        write_sample(out, head.name, "_sum", s.labels, format_value(h.sum));
        write_sample(out, head.name, "_count", s.labels,
                     format_value(static_cast<double>(cumulative)));
      }
    }
  }
  return out;
}

void Counter::increment(double v) {
  if (v > 0) atomic_add(value_, v);
}

void Gauge::increment(double v) {
  atomic_add(value_, v);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  check_bounds(bounds_);
  for (size_t i = 0; i <= bounds_.size(); ++i)
    counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  const size_t b =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[b].fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, v);
}

HistogramValue Histogram::value() const {
  HistogramValue h;
  h.bounds = bounds_;
  for (size_t i = 0; i <= bounds_.size(); ++i)
    h.counts.push_back(counts_[i].load(std::memory_order_relaxed));
  h.sum = sum_.load(std::memory_order_relaxed);
  return h;
}

template <class T>
T& Family<T>::add(const Labels& labels) {
  for (const auto& [k, v] : labels) {
    if (!valid_label_name(k) || (type_ == Type::histogram && k == "le")) {
      throw std::invalid_argument(name_ + ": invalid label name '" + k + "'");
    }
  }
  std::lock_guard lock(mutex_);
  for (auto& [l, instrument] : instruments_) {
    if (l == labels) return instrument;
  }
  if constexpr (std::is_same_v<T, Histogram>) {
    return instruments_
        .emplace_back(std::piecewise_construct, std::forward_as_tuple(labels),
                      std::forward_as_tuple(bounds_))
        .second;
  } else {
    return instruments_
        .emplace_back(std::piecewise_construct, std::forward_as_tuple(labels),
                      std::forward_as_tuple())
        .second;
  }
}

template <class T>
FamilySnapshot Family<T>::snapshot() const {
  FamilySnapshot f{name_, help_, type_, {}};
  std::lock_guard lock(mutex_);
  for (const auto& [labels, instrument] : instruments_) {
    if constexpr (std::is_same_v<T, Histogram>) {
      f.add(labels, instrument.value());
    } else {
      f.add(labels, instrument.value());
    }
  }
  return f;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

void Registry::claim(const std::string& name, Type type) {
  if (!valid_metric_name(name)) throw std::invalid_argument("invalid metric name '" + name + "'");
  if (type == Type::counter && !name.ends_with("_total")) {
    throw std::invalid_argument("counter '" + name + "' must end in _total");
  }
  if (std::find(names_.begin(), names_.end(), name) != names_.end()) {
    throw std::invalid_argument("metric '" + name + "' is already registered");
  }
  names_.push_back(name);
}

Family<Counter>& Registry::add_counter(const std::string& name, const std::string& help) {
  std::lock_guard lock(mutex_);
  claim(name, Type::counter);
  auto& f = *counters_.emplace_back(new Family<Counter>(name, help, Type::counter));
  order_.push_back([&f](std::vector<FamilySnapshot>& out) { out.push_back(f.snapshot()); });
  return f;
}

Family<Gauge>& Registry::add_gauge(const std::string& name, const std::string& help) {
  std::lock_guard lock(mutex_);
  claim(name, Type::gauge);
  auto& f = *gauges_.emplace_back(new Family<Gauge>(name, help, Type::gauge));
  order_.push_back([&f](std::vector<FamilySnapshot>& out) { out.push_back(f.snapshot()); });
  return f;
}

Family<Histogram>& Registry::add_histogram(const std::string& name, const std::string& help,
                                           std::vector<double> bounds) {
  check_bounds(bounds);
  std::lock_guard lock(mutex_);
  claim(name, Type::histogram);
  auto& f = *histograms_.emplace_back(new Family<Histogram>(name, help, Type::histogram, bounds));
  order_.push_back([&f](std::vector<FamilySnapshot>& out) { out.push_back(f.snapshot()); });
  return f;
}

void Registry::add_collector(Collector collector) {
  std::lock_guard lock(mutex_);
  order_.push_back(std::move(collector));
}

std::vector<FamilySnapshot> Registry::collect() const {
  std::vector<std::function<void(std::vector<FamilySnapshot>&)>> makers;
  {
    std::lock_guard lock(mutex_);
    makers = order_;
  }
  std::vector<FamilySnapshot> out;
  for (const auto& make : makers)
    make(out);
  return out;
}

void add_process_info(Registry& registry, const std::string& version,
                      const std::string& dpdk_version, double start_time_seconds) {
  registry.add_gauge("segx_build_info", "segx's version and the DPDK it runs on; always 1")
      .add({{"version", version}, {"dpdk", dpdk_version}})
      .set(1);
  registry.add_gauge("segx_start_time_seconds", "When segx started, seconds since the Unix epoch")
      .add({})
      .set(start_time_seconds);
}

}  // namespace segx::metrics
