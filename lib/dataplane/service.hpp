#pragma once
// The processing-service interface. A worker lcore runs a profile's service chain over
// each segment's packets, in order, as they arrive, and closes it when the segment's close
// event comes. Every worker has its own instances, so a service needs no locks; its
// per-segment state lives in the segment descriptor (state_size() bytes). Like the rest of
// the per-packet path, open/process/close allocate nothing, lock nothing and throw nothing.

#include <rte_mbuf.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "config/config.hpp"
#include "config/diagnostics.hpp"
#include "config/loader.hpp"
#include "config/yaml_reader.hpp"
#include "dataplane/segment.hpp"

namespace segx::dataplane {

/// Appends a service's result to a segment record: `"name": {"key": value, ...}`. Output
/// that does not fit is cut at the last complete member and the record marked truncated.
class ResultWriter {
 public:
  explicit ResultWriter(Segment& segment) : seg_(segment) {}
  /// Starts this service's object.
  void begin(std::string_view service);
  /// A numeric member.
  void field(std::string_view key, uint64_t value);
  /// A string member (the value must need no JSON escaping).
  void field(std::string_view key, std::string_view value);
  /// A JSON true or false (named apart from field(): a string literal would convert to bool).
  void flag(std::string_view key, bool value);
  /// A number with three decimals (a ratio, say).
  void field(std::string_view key, double value);
  /// Starts a member that is an object (one level of nesting); its fields follow.
  void begin_object(std::string_view key);
  /// Ends the member object.
  void end_object();
  /// Ends the service's object.
  void end();

 private:
  bool append(std::string_view text);
  Segment& seg_;
  bool first_field_ = true;
};

/// Bits a service sets in process()'s per-packet verdict array.
enum Verdict : uint8_t {
  verdict_drop = 1,    ///< drop the packet (it keeps its place in the order until freed)
  verdict_mirror = 2,  ///< also send it to the service's mirror_port()
};

/// One processing service. See the header comment for the rules every method keeps.
class Service {
 public:
  virtual ~Service() = default;
  /// Bytes of per-segment state (at most segment_state_bytes over a whole chain).
  virtual uint32_t state_size() const { return 0; }
  /// A segment's first packet reached this worker.
  virtual void open(const Segment& /*segment*/, void* /*state*/) {}
  /// Consecutive packets of one segment, in flow order. Setting Verdict bits in verdict[i]
  /// drops or mirrors packet i (bits set by earlier services of the chain stay set); a
  /// dropped packet still keeps its place in the order until the tx lcore frees it. A
  /// service may rewrite packet bytes in place but never changes a packet's length.
  virtual void process(const Segment& /*segment*/, void* /*state*/, rte_mbuf* const* /*pkts*/,
                       uint16_t /*n*/, uint8_t* /*verdict*/) {}
  /// The segment closed (its rx-side fields are final): report, if anything.
  virtual void close(const Segment& /*segment*/, void* /*state*/, ResultWriter& /*out*/) {}
  /// The configured port index verdict_mirror sends to, or -1 when the service mirrors not.
  virtual int mirror_port() const { return -1; }
};

/// How a service is made: `validate` checks a chain entry's options without EAL (for
/// --check-config), reporting through the entry; the configuration passed has every
/// section before `profiles` read (ports, pipeline, providers). `create` makes one instance
/// per worker after EAL has started; memory a service needs is allocated here, never later.
struct ServiceFactory {
  std::function<void(const config::ServiceConfig&, const config::Value& entry,
                     const config::Config& config)>
      validate;
  std::function<Result<std::unique_ptr<Service>>(const config::ServiceConfig&,
                                                 const config::Config& config)>
      create;
};

/// The services this build can run, by name. count and pass are built in; lib/services adds
/// the others (services::register_services()) before the configuration is loaded.
class ServiceRegistry {
 public:
  /// The process's registry.
  static ServiceRegistry& instance();
  /// Adds or replaces a service.
  void add(std::string name, ServiceFactory factory);
  /// The factory of a service, or null.
  const ServiceFactory* find(std::string_view name) const;
  /// Every name, sorted.
  std::vector<std::string> names() const;

 private:
  ServiceRegistry();
  std::map<std::string, ServiceFactory, std::less<>> factories_;
};

/// Loader options that check services against this build: every name in providers.offers
/// exists, every chain entry offered here (and every providers.serve entry) has valid
/// options, and a chain entry only a peer offers (subcontracted) has none.
config::LoadOptions load_options();

}  // namespace segx::dataplane
