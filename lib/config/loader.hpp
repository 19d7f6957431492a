#pragma once
// Loading a segx configuration file: parse, validate every section and every reference
// between sections, and report all problems at once.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/diagnostics.hpp"

namespace segx::config {

/// The outcome of loading: a Config when there was no error, and every diagnostic
/// (errors and warnings) in file order.
struct LoadResult {
  std::optional<Config> config;
  std::vector<Diagnostic> diagnostics;
  bool ok() const { return config.has_value(); }
};

/// Loads and validates a file. A missing or unreadable file is an error diagnostic.
LoadResult load_file(const std::string& path);

/// Loads and validates YAML text; `name` stands for the file name in diagnostics.
LoadResult load_string(std::string_view text, const std::string& name);

}  // namespace segx::config
