#pragma once
// segx configuration as typed structs: what the YAML file says, validated. Defaults here
// are the documented defaults (docs/configuration.md); a key absent from the file keeps
// the value written below.

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/units.hpp"

namespace segx::config {

using namespace std::chrono_literals;

/// How DPDK's EAL is started (section `eal`).
struct EalConfig {
  std::vector<unsigned> lcores{0, 1};  ///< lcore ids (`-l`); the main lcore is one of them
  /// lcore -> CPU where they differ ("2@1": lcore 2 runs on CPU 1); empty: lcore id = CPU id
  std::map<unsigned, unsigned> cpus;
  unsigned main_lcore = 0;                ///< runs the control plane; never a data-plane role
  uint64_t memory_bytes = 1024ull << 20;  ///< memory EAL reserves (`-m`), bytes
  bool hugepages = false;                 ///< false: `--no-huge` (anonymous memory)
  std::string file_prefix = "segx";       ///< `--file-prefix`: unique per process on a host
  std::vector<std::string> vdevs;         ///< virtual devices, "net_pcap0,rx_pcap=in.pcap"
  std::vector<std::string>
      pci_allow;  ///< PCI devices to use ("0000:3b:00.0[,devargs]"); none: `--no-pci`
  std::string log_level = "notice";     ///< EAL log level
  std::vector<std::string> extra_args;  ///< appended to the EAL arguments as they are
};

/// One Ethernet port (section `ports`).
struct PortConfig {
  std::string name;        ///< operator's name, used everywhere else to refer to the port
  std::string device;      ///< a vdev name from eal.vdevs, or a PCI address from eal.pci_allow
  uint16_t rx_queues = 1;  ///< 0: a transmit-only port
  uint16_t tx_queues = 1;  ///< on an output port: at least one per tx lcore
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;
  uint16_t mtu =
      1500;  ///< bytes of IP packet; frames are mtu + 18 (Ethernet header and CRC) + 4 per VLAN tag
  bool promiscuous = true;
  Duration link_wait = std::chrono::seconds(10);  ///< at start, wait this long for link up
  bool gtpu = false;  ///< classify GTP-U G-PDUs by their inner packet (docs/dataplane.md)
};

/// Data-plane roles an lcore can hold; one lcore may hold several (they share one loop).
enum RoleBits : uint8_t { role_rx = 1, role_worker = 2, role_tx = 4 };

/// One data-plane lcore and the roles it runs.
struct LcoreConfig {
  unsigned lcore = 0;
  uint8_t roles = 0;  ///< RoleBits
};

/// The mbuf pool every port receives into.
struct MempoolConfig {
  uint32_t size = 16383;      ///< number of mbufs (2^n - 1 is the most memory-efficient)
  uint32_t cache = 256;       ///< per-lcore cache, mbufs
  uint32_t data_room = 2176;  ///< bytes per mbuf including 128 bytes of headroom
};

/// What happens to packets that no profile matches.
enum class DefaultAction { forward, drop };

/// Each rx lcore's flow table.
struct FlowTableConfig {
  uint32_t size = 65536;        ///< flows per rx lcore
  Duration idle_timeout = 30s;  ///< a flow without packets this long is evicted
};

/// Capacities of the time-block metering tables.
struct MeteringConfig {
  uint32_t blocks = 256;    ///< blocks active at once
  uint32_t members = 4096;  ///< member entries (addresses, MACs, VLANs) over all active blocks
  Duration burst = 10ms;    ///< meter bucket depth, as time at the block's rate
  /// How long an ended block's usage stays in the statistics (/metrics, telemetry, the exit
  /// report) before it is forgotten; the ledger keeps it for good.
  Duration keep_ended = 15min;
  /// Points (one a second) kept of each block's delivery series; older ones are overwritten.
  uint32_t series_points = 86400;
};

/// Lcore roles, rings and buffers (section `pipeline`).
struct PipelineConfig {
  std::vector<LcoreConfig> lcores;
  uint32_t ring_size = 4096;  ///< entries per ring (rx → worker, worker → tx)
  uint32_t burst = 32;        ///< packets per rx/tx burst and ring operation
  MempoolConfig mempool;
  FlowTableConfig flow_table;
  uint32_t segment_pool = 16383;  ///< segment descriptors (open segments in flight)
  MeteringConfig metering;
  DefaultAction default_action = DefaultAction::forward;
  std::string default_output;  ///< port name for unmatched packets from any input port
  /// Per input port overrides of default_output ("in" → "out", "out" → "in" for a
  /// bidirectional bump in the wire); the output "drop" drops that port's packets.
  std::map<std::string, std::string> default_by_input;
};

/// Which packets a profile takes. Empty lists match anything.
struct MatchConfig {
  std::vector<std::string> ports;  ///< input port names
  std::vector<Range> vlans;        ///< outer VLAN ids
  std::vector<IpPrefix> src;
  std::vector<IpPrefix> dst;
  std::vector<uint8_t> protocols;  ///< IP protocol numbers
  std::vector<Range> src_ports;
  std::vector<Range> dst_ports;
  std::vector<Range> dscp;
};

/// When a flow's open segment closes. A zero limit is no limit; time or idle must be set.
struct SegmentPolicy {
  uint32_t packets = 64;
  uint64_t bytes = 0;
  Duration time = 100ms;  ///< from the segment's first packet
  Duration idle = 20ms;   ///< since the flow's last packet
  bool tcp_close = true;  ///< close on TCP FIN or RST
};

/// One entry of a profile's service chain. Options are validated by the service itself.
struct ServiceConfig {
  std::string name;
  YAML::Node options;  ///< the entry's mapping without `name` (null when none)
  std::string path;    ///< key path of the entry, for the service's own diagnostics
};

/// What happens to a metered profile's packets from no active block's member.
enum class Unmetered { best_effort, drop };

/// A traffic profile: its match, segment policy, service chain and output port.
struct ProfileConfig {
  std::string name;
  MatchConfig match;
  SegmentPolicy segment;
  std::vector<ServiceConfig> services;
  std::string output;    ///< port name
  bool metered = false;  ///< only active blocks' members get service; see unmetered
  Unmetered unmetered = Unmetered::best_effort;
};

/// What a worker does with a subcontracted segment when the peer does not answer in time.
enum class Fallback { pass, drop };

/// A peer provider that processing can be subcontracted to.
struct PeerConfig {
  std::string id;
  std::string port;  ///< the link port (a port name)
  IpAddress address;
  std::optional<MacAddress> mac;  ///< next hop; absent: learned or broadcast, per the tunnel code
  std::vector<std::string> offers;
  Duration timeout = 50ms;
  Fallback fallback = Fallback::pass;
};

/// This provider and its peers (section `providers`).
struct ProvidersConfig {
  std::string id = "local";
  std::vector<std::string> offers{"pass", "count"};
  std::optional<IpAddress> address;  ///< tunnel source address; required with peers
  std::vector<PeerConfig> peers;
  /// What this provider runs for segments its peers subcontract to it: one entry per
  /// service (offered here), with its options, like a chain entry. A request for a service
  /// not listed is refused (returned unprocessed).
  std::vector<ServiceConfig> serve;
  /// Subcontracted packets each worker holds at once while their peers process them
  /// (their outstanding segments are as many); beyond it, the fallback applies at once.
  uint32_t hold = 4096;
};

/// An API bearer token, stored as the SHA-256 of the token.
struct TokenConfig {
  std::string principal;
  std::string role;    ///< admin, provider, recipient, device
  std::string owner;   ///< for a device: the recipient it acts for
  std::string sha256;  ///< lowercase hex
};

/// The REST API listener and the limits it holds for every client, with or without a token
/// (docs/api.md#limits).
struct ApiConfig {
  Endpoint listen{"127.0.0.1", 8080};
  /// Threads that answer requests (no client I/O holds one); 0, the default: one per CPU the
  /// control plane may run on.
  uint32_t threads = 0;
  uint64_t body_limit = 64 * 1024;  ///< bytes
  uint32_t rate_limit = 100;        ///< requests per second per token
  /// Requests per second per client address (IPv6: per /64) that carry no valid token; 0: none.
  uint32_t anonymous_rate_limit = 20;
  Duration header_timeout = 5s;               ///< request line and headers, from their first byte
  Duration body_timeout = 30s;                ///< the whole body, from the end of the headers
  Duration read_timeout = 5s;                 ///< longest silence while a request is being sent
  Duration write_timeout = 5s;                ///< a whole response
  Duration keep_alive_timeout = 5s;           ///< idle between requests on one connection
  uint32_t keep_alive_requests = 100;         ///< requests per connection
  uint32_t max_connections = 512;             ///< open at once, all clients
  uint32_t max_connections_per_address = 16;  ///< open at once from one address (IPv6: /64)
  std::string tls_cert;                       ///< both set: HTTPS
  std::string tls_key;
  std::string tls_ciphers;       ///< TLS 1.2 suites (OpenSSL list); empty: ECDHE with AEAD
  std::string tls_ciphersuites;  ///< TLS 1.3 suites (OpenSSL list); empty: OpenSSL's
  std::vector<TokenConfig> tokens;
};

/// How charges are settled.
struct GatewayConfig {
  std::string kind = "test";  ///< test | webhook
  std::string url;            ///< webhook only
  Duration timeout = 5s;
  uint32_t retries = 0;  ///< extra attempts with the same key within one settlement pass
};

/// How long settlement keeps trying a charge the gateway answered with an error.
struct SettlementConfig {
  Duration deadline = std::chrono::hours(24);      ///< from the lot's close; then final `error`
  Duration backoff = 1s;                           ///< first wait after an error, doubling ...
  Duration max_backoff = std::chrono::minutes(5);  ///< ... up to this
};

/// How a lease whose block the data plane refuses is retried before it fails.
struct ActivationConfig {
  uint32_t attempts = 5;  ///< tries in all; then the lease fails and is refunded
  Duration backoff = 1s;  ///< wait after the first failure, doubling
};

/// The auction market and its ledger (section `market`).
struct MarketConfig {
  bool enabled = true;
  std::string role = "standalone";  ///< standalone | moderator | appliance
  std::string appliance = "local";  ///< this appliance's name in a shared ledger
  double rate_share = 1.0;          ///< share of each block's rates enforced here (0, 1]
  std::string ledger = "sqlite:segx-ledger.db";
  /// Transient store errors are retried this long; a request waits at most this plus 1 s.
  Duration ledger_timeout = 5s;
  std::string currency = "EUR";
  Duration rating_window = std::chrono::hours(24 * 60);
  uint32_t bids_per_lot = 1000;
  GatewayConfig gateway;
  SettlementConfig settlement;
  ActivationConfig activation;
  ApiConfig api;
};

/// A client device: any of its identifiers makes a packet the device's.
struct DeviceConfig {
  std::string id;
  std::vector<IpPrefix> ips;
  std::vector<MacAddress> macs;
  std::vector<std::string> phones;  ///< E.164
  std::vector<uint16_t> vlans;
};

/// A recipient (user) and the devices that belong to it (section `subscribers`). Its id is
/// the principal that holds them in the market: a bid may name only identifiers its bidder
/// holds (docs/market.md#who-holds-which-identifiers).
struct SubscriberConfig {
  std::string id;
  std::vector<DeviceConfig> devices;
  std::vector<IpPrefix> prefixes;  ///< granted: a bid may name these or prefixes inside them
  std::vector<MacAddress> macs;    ///< granted MACs
  std::vector<uint16_t> vlans;     ///< granted VLAN ids
};

/// One member of a block: what identifies its packets.
struct MemberConfig {
  enum class Kind { ip, mac, vlan, phone, device, subscriber };
  Kind kind = Kind::ip;
  IpPrefix ip;        ///< Kind::ip
  MacAddress mac{};   ///< Kind::mac
  uint16_t vlan = 0;  ///< Kind::vlan
  std::string name;   ///< Kind::phone (E.164), device id, subscriber id
};

/// A block of service time provisioned in the configuration rather than won at auction.
struct BlockConfig {
  std::string id;
  std::string profile;              ///< a metered profile
  Duration start_after{0};          ///< after segx starts ...
  std::optional<int64_t> start_at;  ///< ... or at this time (ns since the Unix epoch)
  Duration duration = Duration(0);
  uint64_t min_rate = 0;  ///< bits per second; 0: none
  uint64_t max_rate = 0;  ///< bits per second; 0: none
  std::vector<MemberConfig> members;
};

/// Where segment records go (section `results`).
struct ResultsConfig {
  std::string file;    ///< JSON lines appended to this file; empty: none
  std::string socket;  ///< JSON lines to a collector listening on this Unix socket; empty: none
};

/// Prometheus exposition (section `metrics`).
struct MetricsConfig {
  bool enabled = true;
  Endpoint listen{"127.0.0.1", 9464};
  uint32_t max_connections = 32;             ///< open at once, all scrapers
  uint32_t max_connections_per_address = 8;  ///< open at once from one address (IPv6: /64)
};

/// What segx logs (section `log`). Logs go to stderr, one line per event, never one per
/// packet; under systemd each line carries its syslog priority for the journal.
struct LogConfig {
  /// The least severe level written: error, warning, notice, info or debug. `--log-level`
  /// overrides it.
  std::string level = "info";
};

/// A whole, validated configuration file.
struct Config {
  std::string source;  ///< file it came from
  EalConfig eal;
  std::vector<PortConfig> ports;
  PipelineConfig pipeline;
  std::vector<ProfileConfig> profiles;
  ProvidersConfig providers;
  MarketConfig market;
  std::vector<SubscriberConfig> subscribers;
  MetricsConfig metrics;
  ResultsConfig results;
  std::vector<BlockConfig> blocks;
  LogConfig log;

  /// Index of the port with this name in `ports`, or -1.
  int port_index(std::string_view name) const;
  /// Where the default action sends unmatched packets received on ports[input]: a port
  /// index, or -1 when they are dropped.
  int default_output_index(size_t input) const;
  /// Index of the profile with this name, or -1.
  int profile_index(std::string_view name) const;
  /// Data-plane lcores holding the tx role.
  unsigned tx_lcores() const;
  /// The tx-queue rule for a port packets leave by (a default route, a profile's output, a
  /// peer's link, a service's mirror port): each tx lcore sends on a queue of its own, never
  /// shared, so the port needs one per tx lcore. nullopt when `port` has enough; else
  /// "port 'P' has N tx queue(s) but the pipeline has M tx lcores", for the caller's message.
  std::optional<std::string> tx_queue_shortfall(const PortConfig& port) const;
};

}  // namespace segx::config
