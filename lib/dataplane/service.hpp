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
  /// Ends the object.
  void end();

 private:
  bool append(std::string_view text);
  Segment& seg_;
  bool first_field_ = true;
};

/// One processing service. See the header comment for the rules every method keeps.
class Service {
 public:
  virtual ~Service() = default;
  /// Bytes of per-segment state (at most segment_state_bytes over a whole chain).
  virtual uint32_t state_size() const { return 0; }
  /// A segment's first packet reached this worker.
  virtual void open(const Segment& /*segment*/, void* /*state*/) {}
  /// Consecutive packets of one segment, in flow order. Setting drop[i] drops packet i;
  /// the packet still keeps its place in the order until the tx lcore frees it.
  virtual void process(const Segment& /*segment*/, void* /*state*/, rte_mbuf* const* /*pkts*/,
                       uint16_t /*n*/, uint8_t* /*drop*/) {}
  /// The segment closed (its rx-side fields are final): report, if anything.
  virtual void close(const Segment& /*segment*/, void* /*state*/, ResultWriter& /*out*/) {}
};

/// How a service is made: `validate` checks a chain entry's options without EAL (for
/// --check-config), reporting through the entry; `create` makes one instance per worker,
/// after EAL has started.
struct ServiceFactory {
  std::function<void(const config::ServiceConfig&, const config::Value& entry)> validate;
  std::function<Result<std::unique_ptr<Service>>(const config::ServiceConfig&)> create;
};

/// The services this build can run, by name. count and pass are built in.
class ServiceRegistry {
 public:
  static ServiceRegistry& instance();
  void add(std::string name, ServiceFactory factory);
  const ServiceFactory* find(std::string_view name) const;
  std::vector<std::string> names() const;

 private:
  ServiceRegistry();
  std::map<std::string, ServiceFactory, std::less<>> factories_;
};

/// Loader options that check services against this build: every name in providers.offers
/// exists, every chain entry offered here has valid options, and a chain entry only a peer
/// offers is refused (subcontracting is not built yet).
config::LoadOptions load_options();

}  // namespace segx::dataplane
