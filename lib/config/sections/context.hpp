#pragma once
// Internal to lib/config: the loader reads a file section by section, one file per
// top-level section in this folder (eal.cpp, ports.cpp, ...). This is what the section
// readers share while one file loads: where problems go, the configuration being filled,
// the caller's options, and the facts a section leaves for those read after it. The order
// is load_sections()'s in loader.cpp: a section others refer to is read before them.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/diagnostics.hpp"
#include "config/loader.hpp"
#include "config/yaml_reader.hpp"

namespace segx::config::sections {

/// DPDK's RTE_MAX_LCORE in Debian's build.
constexpr unsigned max_lcores = 128;
/// Most packets per burst.
constexpr uint32_t max_burst = 256;

/// The state of one load, passed to every section reader.
struct Context {
  Context(Diagnostics& d, Config& config, const LoadOptions& o) : diag(d), c(config), options(o) {}

  Diagnostics& diag;
  Config& c;
  const LoadOptions& options;
  // Left by eal, for ports.
  std::set<std::string> vdev_names;
  std::map<std::string, Value> vdev_values;
  std::set<std::string> pci_addresses;
  // Left by ports, for every section that names a port.
  std::map<std::string, Value> port_values;
  // Left by subscribers, for blocks' members and the API's device tokens.
  std::set<std::string> subscriber_ids;
  std::set<std::string> device_ids;
  // Left by providers: providers.serve, read once pipeline is known.
  std::optional<Value> serve_v;
  // Left by metrics, for the check of listeners.
  std::optional<Value> metrics_listen;
};

// Helpers of several sections (loader.cpp).

/// "a, b, c".
std::string join(const std::vector<std::string>& items);
/// A parser for values or ranges within [lo, hi].
std::function<Result<Range>(std::string_view)> range_parser(uint32_t lo, uint32_t hi);
bool contains(const std::vector<std::string>& v, const std::string& s);
/// A listener's max_connections and max_connections_per_address (market.api, metrics): the
/// per-address cap may not exceed the total; left unset, it is lowered to it.
void read_connection_caps(MapReader& m, uint32_t& total, uint32_t& per_address);
/// True if a port of that name was read; reports "no port named ..." at `v` otherwise
/// (ports.cpp).
bool check_port_ref(Context& ctx, const Value& v, const std::string& name);
/// A chain entry's name and options: a bare name, or a mapping with `name`. False when the
/// entry has no usable name (reported). For profiles' chains and providers.serve
/// (profiles.cpp).
bool entry_name(Context& ctx, const Value& item, ServiceConfig& s, std::optional<Value>& name_v);

// The section readers: each reads its part of the file into ctx.c and reports every
// problem through the values it reads.

void read_eal(Context& ctx, const Value& v, EalConfig& eal);
void read_ports(Context& ctx, const Value& v);
void read_providers(Context& ctx, const Value& v);
void read_subscribers(Context& ctx, const Value& v);
void read_pipeline(Context& ctx, const Value& v);
void read_serve(Context& ctx, const Value& v);
void read_profiles(Context& ctx, const Value& v);
void read_market(Context& ctx, const Value& v);
void read_metrics(Context& ctx, const Value& v);
void read_results(Context& ctx, const Value& v);
void read_blocks(Context& ctx, const Value& v);
void read_log(Context& ctx, const Value& v);

// Checks across sections, once every section is read.

/// The metrics endpoint and the API do not share a port (metrics.cpp).
void check_listeners(Context& ctx, const Value& root);
/// Every port packets leave by has a tx queue per tx lcore (pipeline.cpp).
void check_tx_queues(Context& ctx);

}  // namespace segx::config::sections
