#pragma once
// SHA-256 for the ledger's hash chain, through OpenSSL.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace segx::ledger {

/// A SHA-256 digest.
using Digest = std::array<uint8_t, 32>;

/// Incremental SHA-256 (OpenSSL EVP). Not copyable; one per thread.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  /// Adds bytes.
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  /// The digest of everything added; the object is reset for reuse.
  Digest finish();

 private:
  void* ctx_;  // EVP_MD_CTX, kept opaque so OpenSSL headers stay out of this one
};

/// Lowercase hex of a digest (64 characters).
std::string to_hex(const Digest& d);
/// Parses 64 hex characters; nullopt otherwise.
std::optional<Digest> digest_from_hex(std::string_view hex);

}  // namespace segx::ledger
