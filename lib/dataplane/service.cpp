#include "dataplane/service.hpp"

#include <rte_cycles.h>

#include <charconv>
#include <cstring>

#include "config/yaml_reader.hpp"

namespace segx::dataplane {

void ResultWriter::begin(std::string_view service) {
  if (seg_.result_len > 0) append(", ");
  append("\"");
  append(service);
  append("\": {");
  first_field_ = true;
}

void ResultWriter::field(std::string_view key, uint64_t value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  (void)ec;
  if (!first_field_) append(", ");
  first_field_ = false;
  append("\"");
  append(key);
  append("\": ");
  append(std::string_view(digits, static_cast<size_t>(end - digits)));
}

void ResultWriter::field(std::string_view key, std::string_view value) {
  if (!first_field_) append(", ");
  first_field_ = false;
  append("\"");
  append(key);
  append("\": \"");
  append(value);
  append("\"");
}

void ResultWriter::field(std::string_view key, double value) {
  char digits[32];
  auto [end, ec] =
      std::to_chars(digits, digits + sizeof digits, value, std::chars_format::fixed, 3);
  if (ec != std::errc()) end = digits;
  if (!first_field_) append(", ");
  first_field_ = false;
  append("\"");
  append(key);
  append("\": ");
  append(std::string_view(digits, static_cast<size_t>(end - digits)));
}

void ResultWriter::flag(std::string_view key, bool value) {
  if (!first_field_) append(", ");
  first_field_ = false;
  append("\"");
  append(key);
  append(value ? "\": true" : "\": false");
}

void ResultWriter::begin_object(std::string_view key) {
  if (!first_field_) append(", ");
  append("\"");
  append(key);
  append("\": {");
  first_field_ = true;
}

void ResultWriter::end_object() {
  append("}");
  first_field_ = false;
}

void ResultWriter::end() {
  append("}");
}

bool ResultWriter::append(std::string_view text) {
  if (seg_.result_len + text.size() > segment_result_bytes) {
    seg_.result_len = segment_result_bytes;  // the record writer reports it as truncated
    return false;
  }
  std::memcpy(seg_.result + seg_.result_len, text.data(), text.size());
  seg_.result_len = static_cast<uint16_t>(seg_.result_len + text.size());
  return true;
}

namespace {

// Forwards packets untouched: the chain's neutral element.
class PassService final : public Service {};

// Counts what the worker saw of each segment: packets, frame bytes, and the time between
// the segment's first and last packet at rx.
class CountService final : public Service {
 public:
  struct State {
    uint64_t packets;
    uint64_t bytes;
  };
  uint32_t state_size() const override { return sizeof(State); }
  void open(const Segment&, void* state) override { *static_cast<State*>(state) = {}; }
  void process(const Segment&, void* state, rte_mbuf* const* pkts, uint16_t n, uint8_t*) override {
    auto& s = *static_cast<State*>(state);
    for (uint16_t i = 0; i < n; ++i)
      s.bytes += rte_pktmbuf_pkt_len(pkts[i]);
    s.packets += n;
  }
  void close(const Segment& seg, void* state, ResultWriter& out) override {
    const auto& s = *static_cast<const State*>(state);
    const uint64_t hz = rte_get_tsc_hz();
    const uint64_t ticks = seg.last_tsc - seg.first_tsc;
    out.begin("count");
    out.field("packets", s.packets);
    out.field("bytes", s.bytes);
    out.field("duration_ns",
              hz == 0 ? 0 : static_cast<uint64_t>(static_cast<long double>(ticks) * 1e9L / hz));
    out.end();
  }
};

// Built-in services take no options: every key but `name` is an error.
void no_options(const config::ServiceConfig& s, const config::Value& entry, const config::Config&) {
  if (!entry.is_map()) return;
  for (auto it = entry.yaml().begin(); it != entry.yaml().end(); ++it) {
    const std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
    if (key == "name") continue;
    config::Value(it->first, entry.path() + "." + key, config::to_mark(it->first.Mark()),
                  entry.diagnostics())
        .error("unknown key '" + key + "': service '" + s.name + "' takes no options");
  }
}

}  // namespace

ServiceRegistry::ServiceRegistry() {
  add("pass",
      {no_options,
       [](const config::ServiceConfig&, const config::Config&) -> Result<std::unique_ptr<Service>> {
         return std::unique_ptr<Service>(new PassService);
       }});
  add("count",
      {no_options,
       [](const config::ServiceConfig&, const config::Config&) -> Result<std::unique_ptr<Service>> {
         return std::unique_ptr<Service>(new CountService);
       }});
}

ServiceRegistry& ServiceRegistry::instance() {
  static ServiceRegistry registry;
  return registry;
}

void ServiceRegistry::add(std::string name, ServiceFactory factory) {
  factories_[std::move(name)] = std::move(factory);
}

const ServiceFactory* ServiceRegistry::find(std::string_view name) const {
  auto it = factories_.find(name);
  return it == factories_.end() ? nullptr : &it->second;
}

std::vector<std::string> ServiceRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, f] : factories_)
    out.push_back(name);
  return out;
}

config::LoadOptions load_options() {
  config::LoadOptions options;
  const ServiceRegistry& reg = ServiceRegistry::instance();
  for (const auto& n : reg.names()) {
    options.services_available += (options.services_available.empty() ? "" : ", ") + n;
  }
  options.service_known = [](std::string_view name) {
    return ServiceRegistry::instance().find(name) != nullptr;
  };
  options.check_service = [](const config::ServiceConfig& s, bool offered_here,
                             const config::Value& entry, const config::Config& config) {
    if (!offered_here) {
      // Subcontracted: the peer runs the service with its own options (its providers.serve),
      // so options here would be silently ignored; refuse them instead.
      if (s.options.IsMap() && s.options.size() > 0) {
        entry.error("service '" + s.name +
                    "' is offered only by peers, which run it with their own options "
                    "(providers.serve on the peer); a subcontracted entry takes none");
      }
      return;
    }
    if (const ServiceFactory* f = ServiceRegistry::instance().find(s.name))
      f->validate(s, entry, config);
  };
  return options;
}

}  // namespace segx::dataplane
