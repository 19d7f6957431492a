// compress: zstd compression of each packet's payload on its own, the way IPComp (RFC 3173)
// compresses datagrams, reporting per segment what a compressing link would carry instead
// (a payload that does not shrink travels as it is, as IPComp sends it). Packets are not
// changed. Every worker has its own zstd context in memory allocated at start, so the
// per-packet path allocates nothing; with `verify`, each output is decompressed and compared.

#define ZSTD_STATIC_LINKING_ONLY 1  // ZSTD_initStaticCCtx: a context in fixed memory
#include <zstd.h>

#include <cstring>
#include <memory>
#include <vector>

#include "dataplane/service.hpp"
#include "options.hpp"
#include "payload.hpp"
#include "services_internal.hpp"

namespace segx::services {
namespace {

// The largest payload an IP packet can carry.
constexpr size_t max_payload = 65535;

struct Options {
  int level = 3;
  bool verify = false;
};

Options read(config::MapReader& m, const config::Config&) {
  Options o;
  m.read("level", o.level, 1, 19);
  m.read("verify", o.verify);
  return o;
}

class Compress final : public dataplane::Service {
 public:
  struct State {
    uint64_t in_bytes;
    uint64_t out_bytes;
    uint32_t packets;
    uint32_t incompressible;  // payloads that did not shrink (sent as they are)
    uint32_t verify_failed;
  };

  explicit Compress(Options o) : o_(o) {}

  Status start() {
    // Static contexts never resize their workspace, whatever the payload sizes.
    cctx_memory_.resize(ZSTD_estimateCCtxSize(o_.level));
    cctx_ = ZSTD_initStaticCCtx(cctx_memory_.data(), cctx_memory_.size());
    if (cctx_ == nullptr) return Error{"compress: cannot set up a zstd context"};
    ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, o_.level);
    if (o_.verify) {
      dctx_memory_.resize(ZSTD_estimateDCtxSize());
      dctx_ = ZSTD_initStaticDCtx(dctx_memory_.data(), dctx_memory_.size());
      if (dctx_ == nullptr) return Error{"compress: cannot set up a zstd decompression context"};
      check_.resize(max_payload);
    }
    linear_.resize(max_payload);
    out_.resize(ZSTD_compressBound(max_payload));
    return {};
  }

  uint32_t state_size() const override { return sizeof(State); }

  void open(const dataplane::Segment&, void* state) override {
    *static_cast<State*>(state) = State{};
  }

  void process(const dataplane::Segment&, void* state, rte_mbuf* const* pkts, uint16_t n,
               uint8_t*) override {
    auto& s = *static_cast<State*>(state);
    for (uint16_t i = 0; i < n; ++i) {
      const Range r = payload_range(pkts[i]);
      if (r.length == 0) continue;
      const uint8_t* in = contiguous(pkts[i], r, linear_.data());
      const size_t size = compress(in, r.length);
      ++s.packets;
      s.in_bytes += r.length;
      if (ZSTD_isError(size) || size >= r.length) {
        ++s.incompressible;
        s.out_bytes += r.length;
      } else {
        s.out_bytes += size;
      }
      if (o_.verify && !ZSTD_isError(size) && !round_trips(in, r.length, size)) ++s.verify_failed;
    }
  }

  void close(const dataplane::Segment&, void* state, dataplane::ResultWriter& out) override {
    const auto& s = *static_cast<const State*>(state);
    out.begin("compress");
    out.field("algorithm", "zstd");
    out.field("level", static_cast<uint64_t>(o_.level));
    out.field("packets", uint64_t{s.packets});
    out.field("in_bytes", s.in_bytes);
    out.field("out_bytes", s.out_bytes);
    out.field("ratio", s.out_bytes == 0
                           ? 1.0
                           : static_cast<double>(s.in_bytes) / static_cast<double>(s.out_bytes));
    out.field("incompressible", uint64_t{s.incompressible});
    if (o_.verify) out.field("verify_failed", uint64_t{s.verify_failed});
    out.end();
  }

  /// Compresses into the worker's output buffer; returns the size or a zstd error code.
  size_t compress(const uint8_t* in, size_t len) {
    return ZSTD_compress2(cctx_, out_.data(), out_.size(), in, len);
  }

 private:
  bool round_trips(const uint8_t* in, size_t len, size_t compressed) {
    const size_t back =
        ZSTD_decompressDCtx(dctx_, check_.data(), check_.size(), out_.data(), compressed);
    return !ZSTD_isError(back) && back == len && std::memcmp(check_.data(), in, len) == 0;
  }

  Options o_;
  std::vector<uint8_t> cctx_memory_, dctx_memory_;
  ZSTD_CCtx* cctx_ = nullptr;
  ZSTD_DCtx* dctx_ = nullptr;
  std::vector<uint8_t> linear_, out_, check_;
};

}  // namespace

dataplane::ServiceFactory compress_factory() {
  return {[](const config::ServiceConfig&, const config::Value& entry, const config::Config& c) {
            validate_entry(entry, c, read);
          },
          [](const config::ServiceConfig& s,
             const config::Config& c) -> Result<std::unique_ptr<dataplane::Service>> {
            auto o = read_options(s, c, read);
            if (!o) return Error{o.error()};
            auto service = std::make_unique<Compress>(o.value());
            if (Status st = service->start(); !st) return Error{st.error()};
            return std::unique_ptr<dataplane::Service>(std::move(service));
          }};
}

}  // namespace segx::services
