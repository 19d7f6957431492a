// The services' options are checked when the configuration loads (segx --check-config),
// with the position of the offending value: a regex Hyperscan cannot compile, a key of the
// wrong length, an unknown option with a suggestion, a mirror port that does not exist.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.hpp"
#include "dataplane/service.hpp"
#include "services/services.hpp"

namespace segx::services {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> errors_of(
    const std::string& chain, const std::string& eal = "eal: {vdevs: [net_null0, net_null1]}") {
  register_services();
  const std::string text = eal + R"(
ports:
  - {name: a, device: net_null0}
  - {name: b, device: net_null1, rx_queues: 0}
pipeline:
  lcores: [{lcore: 1, roles: [rx, worker, tx]}]
  default: {action: forward, output: b}
providers:
  offers: [fingerprint, dpi, compress, anonymize]
profiles:
  - name: p
    output: b
    services:
)" + chain;
  auto r = config::load_string(text, "s.yaml", dataplane::load_options());
  std::vector<std::string> out;
  for (const auto& d : r.diagnostics)
    out.push_back(config::format(d));
  return out;
}

TEST(ServiceOptions, ValidChainsLoad) {
  EXPECT_THAT(errors_of(R"(      - fingerprint
      - {name: fingerprint, algorithm: crc32c, over: frame}
      - name: dpi
        mirror: b
        streams: 64
        patterns:
          - {id: a, regex: "GET /admin", flags: [caseless], action: mirror}
          - {id: b, regex: "x{3,}", action: drop}
      - {name: compress, level: 9, verify: true}
      - {name: anonymize, key: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}
)"),
              ::testing::IsEmpty());
}

TEST(ServiceOptions, BadRegexIsReportedAtItsPosition) {
  const auto e = errors_of(R"(      - name: dpi
        patterns:
          - {id: ok, regex: "fine"}
          - {id: broken, regex: "a(b"}
)");
  ASSERT_EQ(e.size(), 1u) << ::testing::PrintToString(e);
  EXPECT_THAT(e[0], HasSubstr("s.yaml:17:33: error: profiles[0].services[0].patterns[1].regex: "
                              "Hyperscan cannot compile /a(b/: "));
}

TEST(ServiceOptions, AesKeyOfTheWrongLength) {
  const auto e = errors_of(R"(      - {name: anonymize, key: "00112233445566778899aabbccddeeff"}
)");
  ASSERT_EQ(e.size(), 1u) << ::testing::PrintToString(e);
  EXPECT_THAT(e[0], HasSubstr("s.yaml:14:32: error: profiles[0].services[0].key: the key must be "
                              "32 bytes (64 hex digits): a 16-byte AES-128 key followed by 16 "
                              "bytes of pad secret; got 16 bytes"));
}

TEST(ServiceOptions, UnknownOptionWithSuggestionAndBadChoices) {
  const auto e = errors_of(R"(      - {name: fingerprint, algoritm: sha256}
      - {name: compress, level: 30}
      - name: dpi
        patterns: [{id: p, regex: x, action: mirror, flags: [casless]}]
)");
  ASSERT_EQ(e.size(), 4u) << ::testing::PrintToString(e);
  EXPECT_THAT(e[0], HasSubstr("profiles[0].services[0].algoritm: unknown key 'algoritm'; did you "
                              "mean 'algorithm'?"));
  EXPECT_THAT(e[1], HasSubstr("profiles[0].services[1].level: must be between 1 and 19"));
  EXPECT_THAT(e[2], HasSubstr("profiles[0].services[2]: a pattern has action 'mirror' but no "
                              "mirror port is given"));
  EXPECT_THAT(e[3], HasSubstr("profiles[0].services[2].patterns[0].flags[0]:"));
}

TEST(ServiceOptions, ABareNameHasNoOptions) {
  const auto e = errors_of("      - dpi\n");
  ASSERT_EQ(e.size(), 1u) << ::testing::PrintToString(e);
  EXPECT_THAT(e[0], HasSubstr("s.yaml:14:9: error: profiles[0].services[0]: missing required key "
                              "'patterns'"));
}

TEST(ServiceOptions, MirrorPortMustExist) {
  const auto e =
      errors_of(R"(      - {name: dpi, mirror: tap, patterns: [{id: p, regex: x, action: mirror}]}
)");
  ASSERT_EQ(e.size(), 1u) << ::testing::PrintToString(e);
  EXPECT_THAT(e[0], HasSubstr("profiles[0].services[0].mirror: no port named 'tap' (ports: a, b)"));
}

TEST(ServiceOptions, CompressEngines) {
  const std::string eal = "eal: {vdevs: [net_null0, net_null1, compress_zlib0]}";
  EXPECT_THAT(errors_of(R"(      - {name: compress, engine: zstd, level: 19}
      - {name: compress, engine: compressdev, device: compress_zlib0, level: 9, verify: true}
      - {name: compress, engine: compressdev, device: compress_zlib0}
)",
                        eal),
              ::testing::IsEmpty());
  const auto e =
      errors_of(R"(      - {name: compress, engine: compressdev, level: 12, device: compress_zlib0}
      - {name: compress, engine: compressdev}
      - {name: compress, device: compress_zlib0}
      - {name: compress, engine: compresdev}
      - {name: compress, engine: compressdev, device: compress_isal0}
      - {name: compress, engine: compressdev, device: 0000:3d:00.0_qat_comp}
      - {name: compress, engine: compressdev, device: "zlib 0"}
)",
                eal);
  ASSERT_EQ(e.size(), 7u) << ::testing::PrintToString(e);
  EXPECT_THAT(e[0], HasSubstr("s.yaml:14:54: error: profiles[0].services[0].level: must be "
                              "between 1 and 9, got 12"));
  EXPECT_THAT(e[1], HasSubstr("s.yaml:15:9: error: profiles[0].services[1]: missing required key "
                              "'device'"));
  EXPECT_THAT(e[2], HasSubstr("s.yaml:16:34: error: profiles[0].services[2].device: 'device' is "
                              "an option of engine: compressdev (this entry uses zstd)"));
  EXPECT_THAT(e[3], HasSubstr("s.yaml:17:34: error: profiles[0].services[3].engine:"));
  EXPECT_THAT(e[4], HasSubstr("s.yaml:18:55: error: profiles[0].services[4].device: compressdev "
                              "'compress_isal0' is a software PMD's vdev but is not in eal.vdevs "
                              "(net_null0, net_null1, compress_zlib0); add it there"));
  EXPECT_THAT(e[5], HasSubstr("profiles[0].services[5].device: no compressdev "
                              "'0000:3d:00.0_qat_comp' can exist: it is not a vdev in eal.vdevs"));
  EXPECT_THAT(e[6], HasSubstr("profiles[0].services[6].device: expected a compressdev name"));
}

}  // namespace
}  // namespace segx::services
