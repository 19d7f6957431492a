#pragma once
// Configuration diagnostics: every problem found in a file is collected (not only the
// first), each with file, line, column and key path, and printed the way compilers do
// so editors can jump to it.

#include <string>
#include <vector>

namespace segx::config {

/// A position in a configuration file; 1-based. line 0 means "no position known".
struct Mark {
  int line = 0;
  int column = 0;
};

/// One problem found in a configuration file.
struct Diagnostic {
  enum class Severity { error, warning };
  Severity severity = Severity::error;
  std::string file;     ///< the file name as given by the user
  Mark mark;            ///< where in the file
  std::string path;     ///< key path, e.g. "profiles[2].segment.packets"; empty for the whole file
  std::string message;  ///< what is wrong and, where possible, what would be right
};

/// Formats a diagnostic as "file:line:column: error: path: message".
std::string format(const Diagnostic& d);

/// Collects diagnostics for one file.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

  /// Records an error at mark for the key path.
  void error(Mark mark, std::string path, std::string message);
  /// Records a warning: printed, but the file still loads.
  void warning(Mark mark, std::string path, std::string message);

  bool has_errors() const { return errors_ > 0; }
  int error_count() const { return errors_; }

  /// All diagnostics, in file order (line, then column), errors and warnings mixed.
  std::vector<Diagnostic> sorted() const;

 private:
  std::string file_;
  std::vector<Diagnostic> items_;
  int errors_ = 0;
};

}  // namespace segx::config
