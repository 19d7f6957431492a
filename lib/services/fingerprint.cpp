// fingerprint: a digest per segment of its packets' payloads (or whole frames), in flow
// order: SHA-256 through OpenSSL, or CRC-32C (hardware-assisted, not collision resistant)
// when speed matters more than a forger.

// SHA256_CTX is a plain struct that can live in the segment descriptor; OpenSSL 3 marks the
// low-level calls deprecated in favour of EVP_MD_CTX, which is heap-allocated and opaque,
// so one per open segment would mean an allocation per segment.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#include <rte_hash_crc.h>

#include <cstring>

#include "dataplane/service.hpp"
#include "options.hpp"
#include "payload.hpp"
#include "services_internal.hpp"

namespace segx::services {
namespace {

// CRC-32C as rte_hash_crc() computes it, without its casts of `p` to uint64_t* and
// uint32_t*: a payload starts wherever its headers end, so those loads are misaligned,
// which is undefined behaviour (UBSan reports it). memcpy is the same single load on x86.
uint32_t crc32c(const uint8_t* p, uint32_t len, uint32_t crc) {
  for (; len >= 8; p += 8, len -= 8) {
    uint64_t v;
    std::memcpy(&v, p, sizeof v);
    crc = rte_hash_crc_8byte(v, crc);
  }
  if (len >= 4) {
    uint32_t v;
    std::memcpy(&v, p, sizeof v);
    crc = rte_hash_crc_4byte(v, crc);
    p += 4;
    len -= 4;
  }
  for (; len > 0; ++p, --len)
    crc = rte_hash_crc_1byte(*p, crc);
  return crc;
}

enum class Algorithm : uint8_t { sha256, crc32c };

struct Options {
  Algorithm algorithm = Algorithm::sha256;
  bool frame = false;  // whole frames rather than payloads
};

Options read(config::MapReader& m, const config::Config&) {
  Options o;
  std::string algorithm = "sha256", over = "payload";
  m.read_choice("algorithm", algorithm, {"sha256", "crc32c"});
  m.read_choice("over", over, {"payload", "frame"});
  o.algorithm = algorithm == "sha256" ? Algorithm::sha256 : Algorithm::crc32c;
  o.frame = over == "frame";
  return o;
}

class Fingerprint final : public dataplane::Service {
 public:
  explicit Fingerprint(Options o) : o_(o) {}

  struct State {
    uint64_t bytes;
    uint32_t crc;  // running CRC-32C register (initial all ones, complemented at close)
    uint32_t packets;
    SHA256_CTX sha;  // last: CRC-32C does without it
  };

  uint32_t state_size() const override {
    // CRC-32C needs no SHA context: the chain keeps that room for other services.
    return o_.algorithm == Algorithm::sha256 ? sizeof(State) : offsetof(State, sha);
  }

  void open(const dataplane::Segment&, void* state) override {
    auto& s = *static_cast<State*>(state);
    s.bytes = 0;
    s.crc = 0xffffffffu;
    s.packets = 0;
    if (o_.algorithm == Algorithm::sha256) SHA256_Init(&s.sha);
  }

  void process(const dataplane::Segment&, void* state, rte_mbuf* const* pkts, uint16_t n,
               uint8_t*) override {
    auto& t = *static_cast<State*>(state);
    for (uint16_t i = 0; i < n; ++i) {
      const Range r = o_.frame ? frame_range(pkts[i]) : payload_range(pkts[i]);
      ++t.packets;
      t.bytes += r.length;
      if (o_.algorithm == Algorithm::sha256) {
        SHA256_CTX* sha = &t.sha;
        for_each_chunk(pkts[i], r,
                       [sha](const uint8_t* p, uint32_t len) { SHA256_Update(sha, p, len); });
      } else {
        uint32_t crc = t.crc;
        for_each_chunk(pkts[i], r,
                       [&crc](const uint8_t* p, uint32_t len) { crc = crc32c(p, len, crc); });
        t.crc = crc;
      }
    }
  }

  void close(const dataplane::Segment&, void* state, dataplane::ResultWriter& out) override {
    auto& t = *static_cast<State*>(state);
    static constexpr char hex[] = "0123456789abcdef";
    char text[2 * SHA256_DIGEST_LENGTH];
    size_t len = 0;
    if (o_.algorithm == Algorithm::sha256) {
      unsigned char digest[SHA256_DIGEST_LENGTH];
      SHA256_Final(digest, &t.sha);
      for (unsigned char b : digest) {
        text[len++] = hex[b >> 4];
        text[len++] = hex[b & 15];
      }
    } else {
      const uint32_t crc = ~t.crc;
      for (int shift = 28; shift >= 0; shift -= 4)
        text[len++] = hex[(crc >> shift) & 15];
    }
    out.begin("fingerprint");
    out.field("algorithm", o_.algorithm == Algorithm::sha256 ? "sha256" : "crc32c");
    out.field("over", o_.frame ? "frame" : "payload");
    out.field("packets", uint64_t{t.packets});
    out.field("bytes", t.bytes);
    out.field("digest", std::string_view(text, len));
    out.end();
  }

 private:
  Options o_;
};

}  // namespace

dataplane::ServiceFactory fingerprint_factory() {
  return {[](const config::ServiceConfig&, const config::Value& entry, const config::Config& c) {
            validate_entry(entry, c, read);
          },
          [](const config::ServiceConfig& s,
             const config::Config& c) -> Result<std::unique_ptr<dataplane::Service>> {
            auto o = read_options(s, c, read);
            if (!o) return Error{o.error()};
            return std::unique_ptr<dataplane::Service>(new Fingerprint(o.value()));
          }};
}

}  // namespace segx::services
