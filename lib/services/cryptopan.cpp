#include "cryptopan.hpp"

#include <cstring>

namespace segx::services {

Result<std::unique_ptr<CryptoPan>> CryptoPan::create(std::span<const uint8_t, key_size> key) {
  std::unique_ptr<CryptoPan> c(new CryptoPan);
  c->ctx_ = EVP_CIPHER_CTX_new();
  if (c->ctx_ == nullptr ||
      EVP_EncryptInit_ex(c->ctx_, EVP_aes_128_ecb(), nullptr, key.data(), nullptr) != 1) {
    return Error{"cannot set up AES-128 for Crypto-PAn"};
  }
  EVP_CIPHER_CTX_set_padding(c->ctx_, 0);
  // The pad is the encrypted second half of the key.
  int len = 0;
  if (EVP_EncryptUpdate(c->ctx_, c->pad_.data(), &len, key.data() + 16, 16) != 1 || len != 16)
    return Error{"cannot derive the Crypto-PAn pad"};
  return c;
}

CryptoPan::~CryptoPan() {
  EVP_CIPHER_CTX_free(ctx_);
}

void CryptoPan::anonymize4(const uint8_t* in, uint8_t* out) {
  anonymize(in, out, 32);
}

void CryptoPan::anonymize6(const uint8_t* in, uint8_t* out) {
  anonymize(in, out, 128);
}

// Block i holds the address's first i bits followed by the pad's bits from bit i on; the
// first bit of its encryption decides whether address bit i flips.
void CryptoPan::anonymize(const uint8_t* in, uint8_t* out, unsigned bits) {
  const unsigned bytes = bits / 8;
  for (unsigned i = 0; i < bits; ++i) {
    uint8_t* b = &blocks_[i * 16];
    const unsigned whole = i / 8, part = i % 8;
    std::memcpy(b, in, whole);
    std::memcpy(b + whole, pad_.data() + whole, 16 - whole);
    if (part) {
      const uint8_t keep = static_cast<uint8_t>(0xff << (8 - part));
      b[whole] = static_cast<uint8_t>((in[whole] & keep) | (pad_[whole] & ~keep));
    }
  }
  int len = 0;
  EVP_EncryptUpdate(ctx_, cipher_.data(), &len, blocks_.data(), static_cast<int>(bits * 16));
  std::memcpy(out, in, bytes);
  for (unsigned i = 0; i < bits; ++i) {
    if (cipher_[i * 16] & 0x80) out[i / 8] ^= static_cast<uint8_t>(0x80 >> (i % 8));
  }
}

}  // namespace segx::services
