#include "config/diagnostics.hpp"

#include <algorithm>

namespace segx::config {

std::string format(const Diagnostic& d) {
  std::string out = d.file;
  if (d.mark.line > 0) {
    out += ':' + std::to_string(d.mark.line) + ':' + std::to_string(d.mark.column);
  }
  out += d.severity == Diagnostic::Severity::error ? ": error: " : ": warning: ";
  if (!d.path.empty()) out += d.path + ": ";
  out += d.message;
  return out;
}

void Diagnostics::error(Mark mark, std::string path, std::string message) {
  items_.push_back({Diagnostic::Severity::error, file_, mark, std::move(path), std::move(message)});
  ++errors_;
}

void Diagnostics::warning(Mark mark, std::string path, std::string message) {
  items_.push_back(
      {Diagnostic::Severity::warning, file_, mark, std::move(path), std::move(message)});
}

std::vector<Diagnostic> Diagnostics::sorted() const {
  std::vector<Diagnostic> out = items_;
  // Sections are read in dependency order, not file order; users read top to bottom.
  std::stable_sort(out.begin(), out.end(), [](const Diagnostic& a, const Diagnostic& b) {
    if (a.mark.line != b.mark.line) return a.mark.line < b.mark.line;
    return a.mark.column < b.mark.column;
  });
  return out;
}

}  // namespace segx::config
