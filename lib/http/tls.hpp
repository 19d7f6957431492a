#pragma once
// The listener's TLS settings applied to an OpenSSL context (internal to lib/http).

#include <openssl/ssl.h>

#include <string>

#include "common/result.hpp"
#include "http/server.hpp"

namespace segx::http {

/// TLS 1.2 and 1.3 only, no compression or renegotiation, the server's suite order; the TLS 1.2
/// suites of `tls.ciphers` (default_tls12_ciphers when empty), each of which must be ECDHE with
/// an AEAD cipher; `tls.ciphersuites` for TLS 1.3 when set; the certificate chain and key.
/// Errors name `key` ("market.api.tls"): a list OpenSSL rejects, the first suite that is not
/// ECDHE with AEAD, files that cannot be loaded or do not match.
Status configure_tls(SSL_CTX* context, const Tls& tls, const std::string& key);

}  // namespace segx::http
