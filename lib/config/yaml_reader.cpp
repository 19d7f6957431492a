#include "config/yaml_reader.hpp"

#include <algorithm>
#include <charconv>

namespace segx::config {

Mark to_mark(const YAML::Mark& m) {
  if (m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

std::string Value::kind() const {
  if (is_null()) return "nothing";
  if (is_map()) return "a mapping";
  if (is_list()) return "a list";
  return "a value";
}

std::optional<std::string> Value::as_string() const {
  if (!is_scalar()) {
    error("expected a value, got " + kind());
    return std::nullopt;
  }
  return node_.Scalar();
}

std::optional<bool> Value::as_bool() const {
  auto s = as_string();
  if (!s) return std::nullopt;
  if (*s == "true") return true;
  if (*s == "false") return false;
  error("expected true or false, got '" + *s + "'");
  return std::nullopt;
}

std::optional<int64_t> Value::as_int(int64_t min, int64_t max) const {
  auto s = as_string();
  if (!s) return std::nullopt;
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), n);
  if (s->empty() || ec != std::errc() || ptr != s->data() + s->size()) {
    error("expected an integer, got '" + *s + "'");
    return std::nullopt;
  }
  if (n < min || n > max) {
    error("must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + *s);
    return std::nullopt;
  }
  return n;
}

std::optional<Duration> Value::as_duration(Duration min, Duration max) const {
  auto d = as_parsed<Duration>(parse_duration);
  if (!d) return std::nullopt;
  if (*d < min || *d > max) {
    error("must be between " + format_duration(min) + " and " + format_duration(max) + ", got " +
          node_.Scalar());
    return std::nullopt;
  }
  return d;
}

std::optional<uint64_t> Value::as_size(uint64_t min, uint64_t max) const {
  auto n = as_parsed<uint64_t>(parse_size);
  if (!n) return std::nullopt;
  if (*n < min || *n > max) {
    error("must be between " + std::to_string(min) + " and " + std::to_string(max) +
          " bytes, got " + node_.Scalar());
    return std::nullopt;
  }
  return n;
}

std::optional<std::string> Value::as_name() const {
  auto s = as_string();
  if (!s) return std::nullopt;
  const auto ok_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  };
  if (s->empty() || s->size() > 63 || !std::isalnum(static_cast<unsigned char>((*s)[0])) ||
      !std::all_of(s->begin(), s->end(), ok_char)) {
    error(
        "expected a name (1-63 letters, digits, '_', '-' or '.', starting with a letter or "
        "digit), got '" +
        *s + "'");
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> Value::as_choice(const std::vector<std::string_view>& choices) const {
  auto s = as_string();
  if (!s) return std::nullopt;
  if (std::find(choices.begin(), choices.end(), *s) != choices.end()) return s;
  std::string list;
  for (auto c : choices)
    list += (list.empty() ? "" : ", ") + std::string(c);
  error("expected one of " + list + "; got '" + *s + "'");
  return std::nullopt;
}

std::optional<std::vector<Value>> Value::items(bool allow_scalar) const {
  std::vector<Value> out;
  if (is_null()) return out;
  if (is_scalar() && allow_scalar) {
    out.push_back(*this);
    return out;
  }
  if (!is_list()) {
    error("expected a list, got " + kind());
    return std::nullopt;
  }
  for (size_t i = 0; i < node_.size(); ++i) {
    const YAML::Node item = node_[i];
    Mark m = to_mark(item.Mark());
    if (m.line == 0) m = mark_;
    out.emplace_back(item, path_ + "[" + std::to_string(i) + "]", m, *diag_);
  }
  return out;
}

MapReader::MapReader(const Value& map) : map_(map) {
  if (map.is_null()) {
    valid_ = true;
    return;
  }
  if (!map.is_map()) {
    map.error("expected a mapping (key: value lines), got " + map.kind());
    return;
  }
  valid_ = true;
  for (auto it = map.yaml().begin(); it != map.yaml().end(); ++it) {
    Entry e;
    e.key_mark = to_mark(it->first.Mark());
    e.value = it->second;
    if (!it->first.IsScalar()) {
      map.diagnostics().error(e.key_mark, map.path(), "keys must be plain words");
      e.used = true;  // reported already
    } else {
      e.key = it->first.Scalar();
    }
    entries_.push_back(std::move(e));
  }
}

MapReader::~MapReader() {
  if (!valid_) return;
  const auto child_path = [&](const std::string& key) {
    return map_.path().empty() ? key : map_.path() + "." + key;
  };
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (e.key.empty() && e.used) continue;
    for (size_t j = 0; j < i; ++j) {
      if (entries_[j].key == e.key) {
        map_.diagnostics().error(
            e.key_mark, child_path(e.key),
            "key given twice (first at line " + std::to_string(entries_[j].key_mark.line) + ")");
        break;
      }
    }
    if (e.used) continue;
    std::string message = "unknown key '" + e.key + "'";
    const std::string* best = nullptr;
    size_t best_distance = 0;
    for (const std::string& k : known_) {
      const size_t d = edit_distance(e.key, k);
      if (best == nullptr || d < best_distance) {
        best = &k;
        best_distance = d;
      }
    }
    if (best != nullptr && best_distance <= std::max<size_t>(2, best->size() / 3)) {
      message += "; did you mean '" + *best + "'?";
    } else if (!known_.empty()) {
      std::string list;
      for (const auto& k : known_)
        list += (list.empty() ? "" : ", ") + k;
      message += "; expected one of: " + list;
    }
    map_.diagnostics().error(e.key_mark, child_path(e.key), message);
  }
}

std::optional<Value> MapReader::get(std::string_view key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.emplace_back(key);
  if (!valid_) return std::nullopt;
  for (Entry& e : entries_) {
    if (e.key != key) continue;
    // Every occurrence counts as read; the destructor reports the duplicate itself.
    for (Entry& other : entries_) {
      if (other.key == key) other.used = true;
    }
    Mark m = to_mark(e.value.Mark());
    if (m.line == 0 || e.value.IsNull()) m = e.key_mark;
    const std::string path = map_.path().empty() ? e.key : map_.path() + "." + e.key;
    return Value(e.value, path, m, map_.diagnostics());
  }
  return std::nullopt;
}

std::optional<Value> MapReader::require(std::string_view key) {
  auto v = get(key);
  if (!v && valid_) {
    map_.diagnostics().error(map_.mark(), map_.path(),
                             "missing required key '" + std::string(key) + "'");
  }
  return v;
}

void MapReader::read(std::string_view key, std::string& out, bool required) {
  auto v = required ? require(key) : get(key);
  if (!v) return;
  if (auto s = v->as_string()) out = *s;
}

void MapReader::read_name(std::string_view key, std::string& out, bool required) {
  auto v = required ? require(key) : get(key);
  if (!v) return;
  if (auto s = v->as_name()) out = *s;
}

void MapReader::read(std::string_view key, bool& out) {
  if (auto v = get(key)) {
    if (auto b = v->as_bool()) out = *b;
  }
}

void MapReader::read(std::string_view key, Duration& out, Duration min, Duration max) {
  if (auto v = get(key)) {
    if (auto d = v->as_duration(min, max)) out = *d;
  }
}

void MapReader::read_size(std::string_view key, uint64_t& out, uint64_t min, uint64_t max) {
  if (auto v = get(key)) {
    if (auto n = v->as_size(min, max)) out = *n;
  }
}

void MapReader::read_choice(std::string_view key, std::string& out,
                            const std::vector<std::string_view>& choices) {
  if (auto v = get(key)) {
    if (auto s = v->as_choice(choices)) out = *s;
  }
}

void MapReader::read_names(std::string_view key, std::vector<std::string>& out) {
  auto v = get(key);
  if (!v) return;
  auto items = v->items(/*allow_scalar=*/true);
  if (!items) return;
  out.clear();
  for (const Value& item : *items) {
    auto name = item.as_name();
    if (!name) continue;
    if (std::find(out.begin(), out.end(), *name) != out.end()) {
      item.error("'" + *name + "' is listed twice");
      continue;
    }
    out.push_back(*name);
  }
}

}  // namespace segx::config
