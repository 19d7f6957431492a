#pragma once
// Internal: one routine per service reads its options, used twice: by `validate` at load
// (on the chain entry, so every problem is reported with its position) and by `create` at
// start (on the stored options; the configuration was valid, so it only fails if the file
// and the build disagree).

#include <string>

#include "common/result.hpp"
#include "config/config.hpp"
#include "config/diagnostics.hpp"
#include "config/yaml_reader.hpp"

namespace segx::services {

/// Validates a chain entry: `read(MapReader&, const Config&)` reads every option; the entry's
/// `name` key is the chain's, not an option. A bare name is an entry without options.
template <class Read>
void validate_entry(const config::Value& entry, const config::Config& config, Read read) {
  if (!entry.is_map()) {
    config::MapReader none(
        config::Value(YAML::Node(), entry.path(), entry.mark(), entry.diagnostics()));
    read(none, config);
    return;
  }
  config::MapReader m(entry);
  if (!m.valid()) return;
  m.get("name");
  read(m, config);
}

/// Reads the stored options of a chain entry into what `read` returns.
template <class Read>
auto read_options(const config::ServiceConfig& s, const config::Config& config, Read read)
    -> Result<decltype(read(std::declval<config::MapReader&>(), config))> {
  config::Diagnostics diag(config.source);
  config::Value v(s.options, s.path, config::Mark{}, diag);
  decltype(read(std::declval<config::MapReader&>(), config)) options{};
  {
    config::MapReader m(v);
    options = read(m, config);
  }
  for (const config::Diagnostic& d : diag.sorted()) {
    if (d.severity == config::Diagnostic::Severity::error) return Error{d.path + ": " + d.message};
  }
  return options;
}

/// Whether `port` names a configured port that every tx lcore can send to; reports the
/// problem at `at` otherwise.
inline int output_port(const config::Value& at, const std::string& port,
                       const config::Config& config) {
  const int index = config.port_index(port);
  if (index < 0) {
    std::string names;
    for (const auto& p : config.ports)
      names += (names.empty() ? "" : ", ") + p.name;
    at.error("no port named '" + port + "' (ports: " + names + ")");
    return -1;
  }
  if (auto shortfall = config.tx_queue_shortfall(config.ports[static_cast<size_t>(index)])) {
    at.error(*shortfall + "; each needs its own queue on a port it sends to");
    return -1;
  }
  return index;
}

}  // namespace segx::services
