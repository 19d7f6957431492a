#pragma once
// Control-plane errors as values: a Result holds either a value or a message a user can
// act on, with the kind of failure set where it was made (LevelDB's Status::NotFound,
// Corruption, ...), so callers decide a status code or a retry from the kind, never from
// the wording. Nothing here is used on the per-packet path.

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace segx {

/// What kind of failure an Error is. The API maps kinds to HTTP statuses (docs/api.md).
enum class ErrorKind {
  invalid,      ///< a field or value is malformed or out of range (the caller's input)
  rule,         ///< well formed, but a rule refuses it (a price below the increment)
  conflict,     ///< the object is in the wrong state for it (a lot closed, already rated)
  forbidden,    ///< the caller may not do it (role, ownership)
  not_found,    ///< no such object, or one the caller may not see
  unavailable,  ///< a dependency failed (the ledger's store): try again later
  internal,     ///< a bug or an unexpected failure
};

/// The kind's name: "invalid", "rule", "conflict", ...
constexpr std::string_view error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::invalid:
      return "invalid";
    case ErrorKind::rule:
      return "rule";
    case ErrorKind::conflict:
      return "conflict";
    case ErrorKind::forbidden:
      return "forbidden";
    case ErrorKind::not_found:
      return "not_found";
    case ErrorKind::unavailable:
      return "unavailable";
    case ErrorKind::internal:
      return "internal";
  }
  return "internal";
}

/// A failure with a message meant for the operator ("port 'in': device 'net_pcap9' not found")
/// and its kind (invalid unless the maker says otherwise).
struct Error {
  std::string message;
  ErrorKind kind = ErrorKind::invalid;
};

/// Either a T or an Error. Check ok() before value(); value() on an error is a bug.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design, like std::expected
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const T& value() const& { return std::get<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const std::string& error() const { return std::get<Error>(v_).message; }
  /// The failure with its kind, to pass on unchanged.
  const Error& failure() const { return std::get<Error>(v_); }
  ErrorKind error_kind() const { return std::get<Error>(v_).kind; }

 private:
  std::variant<T, Error> v_;
};

/// Success or an Error, for operations that return nothing.
class Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT

  static Status success() { return {}; }
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const std::string& error() const { return error_.message; }
  /// The failure with its kind, to pass on unchanged.
  const Error& failure() const { return error_; }
  ErrorKind error_kind() const { return error_.kind; }

 private:
  Error error_;
  bool failed_ = false;
};

}  // namespace segx
