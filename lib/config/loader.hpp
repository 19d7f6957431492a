#pragma once
// Loading a segx configuration file: parse, validate every section and every reference
// between sections, and report all problems at once.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/diagnostics.hpp"
#include "config/yaml_reader.hpp"

namespace segx::config {

/// The outcome of loading: a Config when there was no error, and every diagnostic
/// (errors and warnings) in file order.
struct LoadResult {
  std::optional<Config> config;
  std::vector<Diagnostic> diagnostics;
  bool ok() const { return config.has_value(); }
};

/// What the modules above the configuration know: which services this build has and how
/// to check their options. Without it, service names and options are not checked.
struct LoadOptions {
  /// True if this build can run the service.
  std::function<bool(std::string_view)> service_known;
  /// The services this build has, for messages ("count, pass").
  std::string services_available;
  /// Checks one chain entry (its name is known); `offered_here` is false when only a peer
  /// offers it. Reports through the entry's Value, so messages carry its position. `config`
  /// holds the sections read so far (ports, pipeline, providers), for references to them.
  std::function<void(const ServiceConfig&, bool offered_here, const Value& entry,
                     const Config& config)>
      check_service;
};

/// Loads and validates a file. A missing or unreadable file is an error diagnostic.
LoadResult load_file(const std::string& path, const LoadOptions& options = {});

/// Loads and validates YAML text; `name` stands for the file name in diagnostics.
LoadResult load_string(std::string_view text, const std::string& name,
                       const LoadOptions& options = {});

}  // namespace segx::config
