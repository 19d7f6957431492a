#include "http/tls.hpp"

namespace segx::http {

Status configure_tls(SSL_CTX* c, const Tls& t, const std::string& key) {
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(
      c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  const std::string ciphers = t.ciphers.empty() ? std::string(default_tls12_ciphers) : t.ciphers;
  if (SSL_CTX_set_cipher_list(c, ciphers.c_str()) != 1)
    return Error{key + ".ciphers: OpenSSL knows no TLS 1.2 suite in '" + ciphers + "'"};
  if (!t.ciphersuites.empty() && SSL_CTX_set_ciphersuites(c, t.ciphersuites.c_str()) != 1)
    return Error{key + ".ciphersuites: OpenSSL knows no TLS 1.3 suite in '" + t.ciphersuites + "'"};
  // Forward secrecy and authenticated encryption are not negotiable, whatever the list says.
  STACK_OF(SSL_CIPHER)* list = SSL_CTX_get_ciphers(c);
  for (int i = 0; list && i < sk_SSL_CIPHER_num(list); ++i) {
    const SSL_CIPHER* cipher = sk_SSL_CIPHER_value(list, i);
    const int kx = SSL_CIPHER_get_kx_nid(cipher);
    if (kx == NID_kx_any) continue;  // a TLS 1.3 suite: always ephemeral, always AEAD
    if (kx != NID_kx_ecdhe || !SSL_CIPHER_is_aead(cipher))
      return Error{key + ".ciphers: " + SSL_CIPHER_get_name(cipher) +
                   " is not an ECDHE suite with an AEAD cipher (forward secrecy and "
                   "authenticated encryption are required)"};
  }
  if (SSL_CTX_use_certificate_chain_file(c, t.cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(c, t.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(c) != 1)
    return Error{key + ": cannot load certificate " + t.cert + " and key " + t.key +
                 " (PEM files, the key unencrypted, the pair matching)"};
  return {};
}

}  // namespace segx::http
