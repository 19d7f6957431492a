#pragma once
// Control-plane errors as values: a Result holds either a value or a message a user can
// act on. Nothing here is used on the per-packet path.

#include <string>
#include <utility>
#include <variant>

namespace segx {

/// A failure with a message meant for the operator ("port 'in': device 'net_pcap9' not found").
struct Error {
  std::string message;
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

 private:
  std::variant<T, Error> v_;
};

/// Success or an Error, for operations that return nothing.
class Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error.message)), failed_(true) {}  // NOLINT

  static Status success() { return {}; }
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
  bool failed_ = false;
};

}  // namespace segx
