// compress: compression of each packet's payload on its own, the way IPComp (RFC 3173)
// compresses datagrams, reporting per segment what a compressing link would carry instead
// (a payload that does not shrink travels as it is, as IPComp sends it). Packets are not
// changed. Two engines: zstd on the worker lcore (every worker has its own zstd context in
// memory allocated at start), or DEFLATE on a DPDK compressdev (compressdev.cpp: a software
// PMD such as zlib or ISA-L, or a hardware one on real hosts). Either way the per-packet path
// allocates nothing; with `verify`, each output is decompressed and compared.

#define ZSTD_STATIC_LINKING_ONLY 1  // ZSTD_initStaticCCtx: a context in fixed memory
#include <zstd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "compressdev.hpp"
#include "dataplane/service.hpp"
#include "options.hpp"
#include "payload.hpp"
#include "services_internal.hpp"

namespace segx::services {
namespace {

// The largest payload an IP packet can carry.
constexpr size_t max_payload = 65535;

enum class Engine { zstd, compressdev };

struct Options {
  Engine engine = Engine::zstd;
  int level = 3;  // zstd 1–19 (default 3); DEFLATE 1–9 (default 6)
  bool verify = false;
  std::string device;  // compressdev only
};

// A compressdev name as DPDK gives it: a vdev's name, or a PMD's name for a PCI device
// (QAT: "0000:3d:00.0_qat_comp"). It is written into records as is, so no JSON escaping.
bool device_name_ok(std::string_view name) {
  return !name.empty() && name.size() < 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == ':' ||
           c == '-';
  });
}

// What can be known of the device before EAL starts: a software PMD must be a vdev in
// eal.vdevs, and a hardware one needs a PCI device to exist on.
void check_device(const config::Value& at, const std::string& device, const config::Config& c) {
  if (!device_name_ok(device)) {
    at.error(
        "expected a compressdev name such as compress_zlib0 (letters, digits, _ . : -, "
        "at most 63), got '" +
        device + "'");
    return;
  }
  std::vector<std::string> vdevs;
  for (const std::string& v : c.eal.vdevs)
    vdevs.push_back(v.substr(0, v.find(',')));
  if (std::find(vdevs.begin(), vdevs.end(), device) != vdevs.end()) return;
  std::string listed;
  for (const std::string& v : vdevs)
    listed += (listed.empty() ? "" : ", ") + v;
  if (listed.empty()) listed = "none";
  if (device.rfind("compress_", 0) == 0) {
    at.error("compressdev '" + device + "' is a software PMD's vdev but is not in eal.vdevs (" +
             listed + "); add it there: `vdevs: [..., " + device + "]`");
  } else if (c.eal.pci_allow.empty() && c.eal.extra_args.empty()) {
    at.error("no compressdev '" + device + "' can exist: it is not a vdev in eal.vdevs (" + listed +
             ") and eal.pci_allow allows no PCI device for a hardware PMD");
  }
}

Options read(config::MapReader& m, const config::Config& c) {
  Options o;
  std::string engine = "zstd";
  m.read_choice("engine", engine, {"zstd", "compressdev"});
  const bool dev = engine == "compressdev";
  o.engine = dev ? Engine::compressdev : Engine::zstd;
  o.level = dev ? 6 : 3;
  m.read("level", o.level, 1, dev ? 9 : 19);
  m.read("verify", o.verify);
  if (auto d = dev ? m.require("device") : m.get("device")) {
    if (!dev) {
      d->error("'device' is an option of engine: compressdev (this entry uses zstd)");
    } else if (auto name = d->as_string()) {
      o.device = *name;
      check_device(*d, o.device, c);
    }
  }
  return o;
}

// How many engines will open `device`: one per worker lcore for every chain entry offered
// here that uses it, and every providers.serve entry that does. The device is configured
// with that many queue pairs when the first one opens it.
uint16_t planned_queue_pairs(const std::string& device, const config::Config& c) {
  const auto uses = [&](const config::ServiceConfig& s) {
    if (s.name != "compress" || !s.options.IsMap()) return false;
    const YAML::Node engine = s.options["engine"], dev = s.options["device"];
    return engine && engine.IsScalar() && engine.Scalar() == "compressdev" && dev &&
           dev.IsScalar() && dev.Scalar() == device;
  };
  const bool offered = std::find(c.providers.offers.begin(), c.providers.offers.end(),
                                 "compress") != c.providers.offers.end();
  unsigned entries = 0;
  for (const auto& p : c.profiles)
    for (const auto& s : p.services)
      entries += offered && uses(s);
  for (const auto& s : c.providers.serve)
    entries += uses(s);
  unsigned workers = 0;
  for (const auto& lc : c.pipeline.lcores)
    workers += (lc.roles & config::role_worker) != 0;
  // A service made outside a configuration's chains (a unit test) still gets its queue pair.
  const unsigned n = std::max(1u, entries) * std::max(1u, workers);
  return static_cast<uint16_t>(std::min(n, 1024u));
}

class Compress final : public dataplane::Service {
 public:
  using State = CompressTotals;

  explicit Compress(Options o) : o_(std::move(o)) {}

  Status start(const config::Config& c) {
    if (o_.engine == Engine::compressdev) {
      auto e = CompressdevEngine::open(CompressdevEngine::Setup{o_.device, o_.level, o_.verify,
                                                                planned_queue_pairs(o_.device, c)});
      if (!e) return Error{"compress: " + e.error()};
      device_ = std::move(e).value();
      return {};
    }
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
    if (device_) return device_->run(pkts, n, s);
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
    const bool dev = o_.engine == Engine::compressdev;
    out.begin("compress");
    out.field("algorithm", dev ? "deflate" : "zstd");
    out.field("engine", dev ? "compressdev" : "zstd");
    if (dev) out.field("device", std::string_view(o_.device));
    out.field("level", static_cast<uint64_t>(o_.level));
    out.field("packets", uint64_t{s.packets});
    out.field("in_bytes", s.in_bytes);
    out.field("out_bytes", s.out_bytes);
    out.field("ratio", s.out_bytes == 0
                           ? 1.0
                           : static_cast<double>(s.in_bytes) / static_cast<double>(s.out_bytes));
    out.field("incompressible", uint64_t{s.incompressible});
    if (dev) out.field("errors", uint64_t{s.errors});
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
  std::unique_ptr<CompressdevEngine> device_;  // engine: compressdev
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
            if (Status st = service->start(c); !st) return Error{st.error()};
            return std::unique_ptr<dataplane::Service>(std::move(service));
          }};
}

}  // namespace segx::services
