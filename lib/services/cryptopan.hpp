#pragma once
// Crypto-PAn (Xu, Fan, Ammar, Moon, 2002): prefix-preserving IP address anonymization. Two
// addresses that share their first k bits map to two that share exactly their first k bits;
// the mapping is a permutation fixed by a 32-byte key (16 bytes of AES-128 key, 16 of pad
// secret). IPv6 addresses use the same construction over 128 bits. Results match the
// reference implementation's sample trace.

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>

#include "common/result.hpp"

namespace segx::services {

/// One key's anonymizer. Not thread-safe: each worker has its own.
class CryptoPan {
 public:
  /// Bytes of key: AES-128 key, then pad secret.
  static constexpr size_t key_size = 32;
  /// Makes an anonymizer; fails only if OpenSSL cannot set up AES-128.
  static Result<std::unique_ptr<CryptoPan>> create(std::span<const uint8_t, key_size> key);
  ~CryptoPan();
  CryptoPan(const CryptoPan&) = delete;
  CryptoPan& operator=(const CryptoPan&) = delete;

  /// Anonymizes an IPv4 address (4 bytes, network order) into out.
  void anonymize4(const uint8_t* in, uint8_t* out);
  /// Anonymizes an IPv6 address (16 bytes, network order) into out.
  void anonymize6(const uint8_t* in, uint8_t* out);

 private:
  CryptoPan() = default;
  void anonymize(const uint8_t* in, uint8_t* out, unsigned bits);

  EVP_CIPHER_CTX* ctx_ = nullptr;
  std::array<uint8_t, 16> pad_{};
  // One AES block per address bit, encrypted in one call: each block depends only on the
  // address and the pad, not on earlier outputs.
  std::array<uint8_t, 128 * 16> blocks_{};
  std::array<uint8_t, 128 * 16> cipher_{};
};

}  // namespace segx::services
