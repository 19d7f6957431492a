#pragma once
// Typed, path-tracking reading of YAML for configuration. Every read that fails records a
// diagnostic (file, line, column, key path) and goes on, so one pass reports all errors.
// Later modules validate their own option blocks (a service's options, say) with the
// same classes, so their errors look like everyone else's.

#include <yaml-cpp/yaml.h>

#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostics.hpp"
#include "config/units.hpp"

namespace segx::config {

/// A YAML value with its key path and position, bound to the diagnostics it reports to.
class Value {
 public:
  Value(YAML::Node node, std::string path, Mark mark, Diagnostics& diag)
      : node_(std::move(node)), path_(std::move(path)), mark_(mark), diag_(&diag) {}

  const YAML::Node& yaml() const { return node_; }
  /// Key path such as "profiles[2].segment.packets".
  const std::string& path() const { return path_; }
  /// Position of the value (of its key when the value is empty).
  Mark mark() const { return mark_; }
  Diagnostics& diagnostics() const { return *diag_; }

  void error(std::string message) const { diag_->error(mark_, path_, std::move(message)); }
  void warning(std::string message) const { diag_->warning(mark_, path_, std::move(message)); }

  bool is_null() const { return !node_.IsDefined() || node_.IsNull(); }
  bool is_map() const { return node_.IsMap(); }
  bool is_list() const { return node_.IsSequence(); }
  bool is_scalar() const { return node_.IsScalar(); }
  /// The node's kind for messages: "a mapping", "a list", "a value", "nothing".
  std::string kind() const;

  /// A scalar's text; error if the node is a list or mapping.
  std::optional<std::string> as_string() const;
  /// true or false (YAML 1.2 core schema; "yes"/"on" are refused to avoid surprises).
  std::optional<bool> as_bool() const;
  /// A decimal integer within [min, max].
  std::optional<int64_t> as_int(int64_t min, int64_t max) const;
  /// A duration ("250ms") within [min, max].
  std::optional<Duration> as_duration(Duration min, Duration max) const;
  /// A byte size ("64KiB", "1500") within [min, max] bytes.
  std::optional<uint64_t> as_size(uint64_t min, uint64_t max) const;
  /// A name: 1-63 characters of [A-Za-z0-9_.-], starting with a letter or digit.
  std::optional<std::string> as_name() const;
  /// One of the given words.
  std::optional<std::string> as_choice(const std::vector<std::string_view>& choices) const;
  /// A scalar passed through a unit parser; its error message is reported as is.
  template <class T>
  std::optional<T> as_parsed(const std::function<Result<T>(std::string_view)>& parse) const {
    auto text = as_string();
    if (!text) return std::nullopt;
    auto r = parse(*text);
    if (!r) {
      error(r.error());
      return std::nullopt;
    }
    return std::move(r).value();
  }

  /// The items of a list, with paths "path[i]". With allow_scalar, a single scalar reads
  /// as a one-item list ("ports: in" as "ports: [in]"). Empty value: an empty list.
  std::optional<std::vector<Value>> items(bool allow_scalar = false) const;
  /// Like items(), but an empty list after reporting a value that is not a list.
  std::vector<Value> list(bool allow_scalar = false) const {
    auto v = items(allow_scalar);
    return v ? std::move(*v) : std::vector<Value>{};
  }

 private:
  YAML::Node node_;
  std::string path_;
  Mark mark_;
  Diagnostics* diag_;
};

/// Reads a mapping key by key. When it goes out of scope it reports every key nobody
/// asked for (with the nearest known key as a suggestion) and every key given twice.
class MapReader {
 public:
  /// Reports an error if the value is neither a mapping nor empty (empty reads as {}).
  explicit MapReader(const Value& map);
  ~MapReader();
  MapReader(const MapReader&) = delete;
  MapReader& operator=(const MapReader&) = delete;

  /// False when the value was not a mapping; reads then return nothing.
  bool valid() const { return valid_; }
  const Value& value() const { return map_; }

  /// The value under key, if present (an empty value counts as present).
  std::optional<Value> get(std::string_view key);
  /// Like get(), but reports "missing required key" when absent.
  std::optional<Value> require(std::string_view key);

  // Typed fields: when the key is present and valid, out is set; otherwise out keeps its
  // default and a diagnostic says why. `required` reports a missing key.
  void read(std::string_view key, std::string& out, bool required = false);
  void read_name(std::string_view key, std::string& out, bool required = false);
  void read(std::string_view key, bool& out);
  template <std::integral T>
  void read(std::string_view key, T& out, int64_t min, int64_t max, bool required = false) {
    auto v = required ? require(key) : get(key);
    if (!v) return;
    if (auto n = v->as_int(min, max)) out = static_cast<T>(*n);
  }
  void read(std::string_view key, Duration& out, Duration min, Duration max);
  void read_size(std::string_view key, uint64_t& out, uint64_t min, uint64_t max);
  void read_choice(std::string_view key, std::string& out,
                   const std::vector<std::string_view>& choices);
  /// A list of names (a single name is accepted as a one-item list); duplicates reported.
  void read_names(std::string_view key, std::vector<std::string>& out);
  /// Each item of the list under key (a single value is accepted as a one-item list) read
  /// with a unit parser; add(item, value) is called for each valid one, the others reported.
  template <class T>
  void read_each(std::string_view key, const std::function<Result<T>(std::string_view)>& parse,
                 const std::function<void(const Value&, T)>& add) {
    auto v = get(key);
    if (!v) return;
    for (const Value& item : v->list(/*allow_scalar=*/true)) {
      if (auto x = item.as_parsed<T>(parse)) add(item, std::move(*x));
    }
  }

 private:
  struct Entry {
    std::string key;
    Mark key_mark;
    YAML::Node value;
    bool used = false;
  };
  Value map_;
  bool valid_ = false;
  std::vector<Entry> entries_;
  std::vector<std::string> known_;
};

/// Converts a yaml-cpp mark (0-based, -1 when unknown) to a 1-based Mark.
Mark to_mark(const YAML::Mark& m);

}  // namespace segx::config
