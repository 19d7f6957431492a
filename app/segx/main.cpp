// segx: the appliance daemon. Loads the configuration, starts EAL and the data plane,
// runs until told to stop (signal, --duration, --max-packets), drains, and reports.

#include <getopt.h>
#include <unistd.h>

#include <rte_version.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <nlohmann/json.hpp>

#include "config/eal_args.hpp"
#include "config/loader.hpp"
#include "control.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/metrics.hpp"
#include "dataplane/service.hpp"
#include "log.hpp"
#include "metrics/metrics.hpp"
#include "metrics/server.hpp"
#include "reload.hpp"
#include "segx_version.h"
#include "service.hpp"
#include "services/services.hpp"

namespace {

// Exit codes; docs/operations.md lists them.
constexpr int exit_ok = 0;
constexpr int exit_config = 1;
constexpr int exit_usage = 2;
constexpr int exit_startup = 3;
constexpr int exit_leak = 4;

std::atomic<int> stop_signal{0};
std::atomic<bool> reload_signal{false};

void on_signal(int sig) {
  stop_signal.store(sig);
}

// SIGHUP (systemctl reload) asks for a reload; the control loop answers it.
void on_hangup(int) {
  reload_signal.store(true);
}

namespace log = segx::app::log;

void usage(FILE* out) {
  std::fprintf(
      out,
      "usage: segx --config FILE [--duration SECONDS] [--max-packets N] [--report FILE]\n"
      "            [--log-level LEVEL]\n"
      "       segx --check-config FILE\n"
      "       segx ledger verify --config FILE\n"
      "       segx --help | --version\n"
      "\n"
      "  -c, --config FILE        run the appliance with this configuration\n"
      "      --check-config FILE  validate FILE, print every problem, exit 1 on any error;\n"
      "                           starts nothing\n"
      "  -d, --duration SECONDS   stop by itself after this long (decimals allowed)\n"
      "  -n, --max-packets N      stop once N packets have been received\n"
      "  -r, --report FILE        write the exit report as JSON to FILE\n"
      "  -l, --log-level LEVEL    error, warning, notice, info or debug (default: log.level\n"
      "                           of the configuration, else info); logs go to stderr\n"
      "  -h, --help               this text\n"
      "  -V, --version            version of segx and of DPDK\n"
      "\n"
      "  ledger verify            check every event of the configured ledger's hash chain;\n"
      "                           exit 0 when intact, 5 naming the first broken event\n"
      "\n"
      "SIGINT or SIGTERM stops receiving, drains the rings, closes the ports and prints\n"
      "per-port and per-ring statistics. SIGHUP reloads the configuration file: profiles,\n"
      "the default action, subscribers, blocks and log.level change live; a change to any\n"
      "other key refuses the whole reload, naming the key (docs/operations.md, \"Reload\").\n"
      "Exit codes: 0 success, 1 configuration error,\n"
      "2 usage error, 3 start-up failure, 4 mbufs or segments not returned at exit.\n");
}

// Prints diagnostics; returns true when there was no error.
bool print_diagnostics(const segx::config::LoadResult& r) {
  for (const auto& d : r.diagnostics)
    std::fprintf(stderr, "%s\n", segx::config::format(d).c_str());
  return r.ok();
}

// The same diagnostics as log lines of a starting segx: errors at error, warnings at warning.
bool log_diagnostics(const segx::config::LoadResult& r) {
  for (const auto& d : r.diagnostics) {
    log::write(d.severity == segx::config::Diagnostic::Severity::error ? log::Level::error
                                                                       : log::Level::warning,
               segx::config::format(d));
  }
  return r.ok();
}

int check_config(const std::string& path) {
  auto r = segx::config::load_file(path, segx::dataplane::load_options());
  print_diagnostics(r);
  if (!r.ok()) {
    size_t errors = 0;
    for (const auto& d : r.diagnostics) {
      errors += d.severity == segx::config::Diagnostic::Severity::error;
    }
    std::fprintf(stderr, "%s: %zu error(s)\n", path.c_str(), errors);
    return exit_config;
  }
  const auto& c = *r.config;
  std::printf("%s: configuration is valid: %zu port(s), %zu data-plane lcore(s), %zu profile(s)\n",
              path.c_str(), c.ports.size(), c.pipeline.lcores.size(), c.profiles.size());
  std::string args;
  for (const auto& a : segx::config::eal_arguments(c, "segx"))
    args += " " + a;
  std::printf("EAL arguments:%s\n", args.c_str());
  return exit_ok;
}

std::string colour_line(const segx::dataplane::ColourTotals& t) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "green %lu pkts/%lu B, yellow %lu pkts/%lu B, red %lu pkts/%lu B",
                t.packets[0], t.bytes[0], t.packets[1], t.bytes[1], t.packets[2], t.bytes[2]);
  return buf;
}

void print_report(const segx::dataplane::Report& r) {
  std::printf("\n%-10s %-16s %12s %14s %9s %9s %9s %12s %14s %9s %10s\n", "port", "device",
              "rx-packets", "rx-bytes", "rx-missed", "rx-errors", "rx-nombuf", "tx-packets",
              "tx-bytes", "tx-errors", "tx-dropped");
  for (const auto& p : r.ports) {
    std::printf("%-10s %-16s %12lu %14lu %9lu %9lu %9lu %12lu %14lu %9lu %10lu\n", p.name.c_str(),
                p.device.c_str(), p.rx_packets, p.rx_bytes, p.rx_missed, p.rx_errors, p.rx_nombuf,
                p.tx_packets, p.tx_bytes, p.tx_errors, p.tx_dropped);
  }
  if (!r.profiles.empty()) {
    std::printf("\n%-16s %12s %14s %10s  %s\n", "profile", "packets", "bytes", "segments",
                "closed by");
    for (const auto& p : r.profiles) {
      std::string by;
      for (const auto& [reason, n] : p.closed_by)
        by += reason + " " + std::to_string(n) + ", ";
      if (!by.empty()) by.resize(by.size() - 2);
      std::printf("%-16s %12lu %14lu %10lu  %s\n", p.name.c_str(), p.packets, p.bytes, p.segments,
                  by.c_str());
    }
  }
  std::printf("\n%-14s %10s %12s\n", "ring", "capacity", "enqueued");
  for (const auto& ring : r.rings) {
    std::printf("%-14s %10u %12lu\n", ring.name.c_str(), ring.capacity, ring.enqueued);
  }
  uint64_t dropped = 0;
  for (const auto& [reason, n] : r.drops)
    dropped += n;
  std::printf("\npackets: %lu received, %lu transmitted, %lu dropped\n", r.received, r.transmitted,
              dropped);
  for (const auto& [reason, n] : r.drops)
    std::printf("  drop %-24s %lu\n", reason.c_str(), n);
  for (const auto& [event, n] : r.events)
    std::printf("  %-29s %lu\n", event.c_str(), n);
  for (const auto& b : r.blocks) {
    std::printf("block %s (active %.3f s): %s\n", b.id.c_str(),
                b.end_ns > b.start_ns ? (b.end_ns - b.start_ns) / 1e9 : 0.0,
                colour_line(b.total).c_str());
    for (const auto& [member, t] : b.members) {
      std::printf("  %-28s %s\n", member.c_str(), colour_line(t).c_str());
    }
  }
  if (r.records > 0) std::printf("segment records written: %lu\n", r.records);
  if (r.reorder_stranded > 0) {
    std::printf("reorder: %lu packets never came out of order (a bug)\n", r.reorder_stranded);
  }
  for (const auto& peer : r.peers) {
    const uint64_t trips =
        std::accumulate(peer.round_trip.counts.begin(), peer.round_trip.counts.end(), uint64_t{0});
    // One clause per group of SEGX_PEER_COUNTERS: "segments sent 3 returned 3 ...; packets ...".
    std::string line = "peer " + peer.id + ":";
    std::string_view group;
    const auto clause = [&](std::string_view g, std::string_view key, uint64_t n) {
      if (g != group) line += (group.empty() ? " " : "; ") + std::string(g);
      group = g;
      line += " " + std::string(key) + " " + std::to_string(n);
    };
#define SEGX_PEER_TEXT(field, g, key, ...) clause(g, key, peer.field);
    SEGX_PEER_COUNTERS(SEGX_PEER_TEXT)
#undef SEGX_PEER_TEXT
    std::printf("%s; mean round trip %.3f ms\n", line.c_str(),
                trips ? peer.round_trip.sum * 1e3 / static_cast<double>(trips) : 0.0);
  }
  if (!r.stage_cycles.empty()) {
    // Built with -Dstage_cycles=true: where the data-plane lcores' cycles went.
    uint64_t total = 0;
    for (const auto& sc : r.stage_cycles)
      total += sc.cycles;
    std::printf("\n%-10s %14s %14s %7s\n", "stage", "cycles", "per packet", "share");
    for (const auto& sc : r.stage_cycles) {
      std::printf(
          "%-10s %14lu %14.1f %6.1f%%\n", sc.stage.c_str(), sc.cycles,
          r.received ? static_cast<double>(sc.cycles) / static_cast<double>(r.received) : 0.0,
          total ? 100.0 * static_cast<double>(sc.cycles) / static_cast<double>(total) : 0.0);
    }
    std::printf("(cycles per packet received; TSC %.3f GHz)\n",
                static_cast<double>(r.tsc_hz) / 1e9);
  }
  std::printf("mempool: %u of %u mbufs in use at exit%s\n", r.mempool_in_use, r.mempool_size,
              r.mempool_in_use == 0 ? " (all returned)" : " - LEAK");
  if (r.segments_in_use != 0) {
    std::printf("segments: %u descriptors in use at exit - LEAK\n", r.segments_in_use);
  }
}

nlohmann::json colour_json(const segx::dataplane::ColourTotals& t) {
  return {{"green", {{"packets", t.packets[0]}, {"bytes", t.bytes[0]}}},
          {"yellow", {{"packets", t.packets[1]}, {"bytes", t.bytes[1]}}},
          {"red", {{"packets", t.packets[2]}, {"bytes", t.bytes[2]}}}};
}

nlohmann::json report_json(const segx::dataplane::Report& r) {
  nlohmann::json j;
  for (const auto& p : r.ports) {
    j["ports"].push_back({{"name", p.name},
                          {"device", p.device},
                          {"rx_packets", p.rx_packets},
                          {"rx_bytes", p.rx_bytes},
                          {"rx_missed", p.rx_missed},
                          {"rx_errors", p.rx_errors},
                          {"rx_nombuf", p.rx_nombuf},
                          {"tx_packets", p.tx_packets},
                          {"tx_bytes", p.tx_bytes},
                          {"tx_errors", p.tx_errors},
                          {"tx_dropped", p.tx_dropped}});
  }
  for (const auto& ring : r.rings) {
    j["rings"].push_back(
        {{"name", ring.name}, {"capacity", ring.capacity}, {"enqueued", ring.enqueued}});
  }
  j["profiles"] = nlohmann::json::array();
  for (const auto& p : r.profiles) {
    j["profiles"].push_back({{"name", p.name},
                             {"packets", p.packets},
                             {"bytes", p.bytes},
                             {"segments", p.segments},
                             {"closed_by", p.closed_by}});
  }
  j["drops"] = r.drops;
  j["events"] = r.events;
  j["blocks"] = nlohmann::json::array();
  for (const auto& b : r.blocks) {
    nlohmann::json members = nlohmann::json::object();
    for (const auto& [label, t] : b.members)
      members[label] = colour_json(t);
    j["blocks"].push_back({{"id", b.id},
                           {"start_ns", b.start_ns},
                           {"end_ns", b.end_ns},
                           {"total", colour_json(b.total)},
                           {"members", members}});
  }
  j["blocks_expired"] = r.blocks_expired;
  j["received"] = r.received;
  j["transmitted"] = r.transmitted;
  j["records"] = r.records;
  j["records_socket"] = {{"sent", r.records_socket_sent}, {"dropped", r.records_socket_dropped}};
  j["reorder_stranded"] = r.reorder_stranded;
  j["mempool"] = {{"size", r.mempool_size}, {"in_use", r.mempool_in_use}};
  j["segments_in_use"] = r.segments_in_use;
  j["peers"] = nlohmann::json::array();
  for (const auto& p : r.peers) {
    const uint64_t trips =
        std::accumulate(p.round_trip.counts.begin(), p.round_trip.counts.end(), uint64_t{0});
    nlohmann::json peer = {
        {"id", p.id},
        {"round_trip",
         {{"packets", trips},
          {"sum_s", p.round_trip.sum},
          {"mean_s", trips ? p.round_trip.sum / static_cast<double>(trips) : 0.0},
          {"bounds_s", p.round_trip.bounds},
          {"counts", p.round_trip.counts}}}};
#define SEGX_PEER_JSON(field, group, key, ...) peer[group][key] = p.field;
    SEGX_PEER_COUNTERS(SEGX_PEER_JSON)
#undef SEGX_PEER_JSON
    j["peers"].push_back(std::move(peer));
  }
  j["tunnel_leftover"] = r.tunnel_leftover;
  j["lcores"] = nlohmann::json::array();
  for (const auto& l : r.lcores)
    j["lcores"].push_back({{"lcore", l.lcore}, {"received", l.received}});
  if (!r.stage_cycles.empty()) {
    // Only in a build with -Dstage_cycles=true (the benchmark's).
    nlohmann::json stages = nlohmann::json::object();
    for (const auto& sc : r.stage_cycles) {
      stages[sc.stage] = {
          {"cycles", sc.cycles},
          {"per_packet",
           r.received ? static_cast<double>(sc.cycles) / static_cast<double>(r.received) : 0.0}};
    }
    j["stage_cycles"] = {{"tsc_hz", r.tsc_hz}, {"packets", r.received}, {"stages", stages}};
  }
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "ledger") return segx::app::ledger_command(argc, argv);
  std::string config_path, check_path, report_path;
  double duration = 0;
  unsigned long long max_packets = 0;
  std::optional<log::Level> log_level;

  static const option long_options[] = {
      {"config", required_argument, nullptr, 'c'},
      {"check-config", required_argument, nullptr, 'k'},
      {"duration", required_argument, nullptr, 'd'},
      {"max-packets", required_argument, nullptr, 'n'},
      {"report", required_argument, nullptr, 'r'},
      {"log-level", required_argument, nullptr, 'l'},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, 'V'},
      {nullptr, 0, nullptr, 0},
  };
  int opt;
  while ((opt = getopt_long(argc, argv, "c:d:n:r:l:hV", long_options, nullptr)) != -1) {
    char* end = nullptr;
    switch (opt) {
      case 'c':
        config_path = optarg;
        break;
      case 'k':
        check_path = optarg;
        break;
      case 'd':
        duration = std::strtod(optarg, &end);
        if (end == optarg || *end != '\0' || !(duration > 0)) {
          std::fprintf(stderr, "segx: --duration wants a positive number of seconds, got '%s'\n",
                       optarg);
          return exit_usage;
        }
        break;
      case 'n':
        max_packets = std::strtoull(optarg, &end, 10);
        if (end == optarg || *end != '\0' || max_packets == 0) {
          std::fprintf(stderr, "segx: --max-packets wants a positive integer, got '%s'\n", optarg);
          return exit_usage;
        }
        break;
      case 'r':
        report_path = optarg;
        break;
      case 'l':
        log_level = log::parse_level(optarg);
        if (!log_level) {
          std::fprintf(stderr,
                       "segx: --log-level wants error, warning, notice, info or debug, got '%s'\n",
                       optarg);
          return exit_usage;
        }
        break;
      case 'h':
        usage(stdout);
        return exit_ok;
      case 'V':
        std::printf("segx %s (%s)\n", SEGX_VERSION, rte_version());
        return exit_ok;
      default:
        usage(stderr);
        return exit_usage;
    }
  }
  if (optind < argc) {
    std::fprintf(stderr, "segx: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return exit_usage;
  }
  // The services this build offers, before any configuration names them.
  segx::services::register_services();
  if (!check_path.empty()) return check_config(check_path);
  if (config_path.empty()) {
    usage(stderr);
    return exit_usage;
  }

  // 1. Configuration: every problem is printed before anything starts. The command line's
  // log level holds from the start; the file's applies once it is read.
  if (log_level) log::set_level(*log_level);
  auto loaded = segx::config::load_file(config_path, segx::dataplane::load_options());
  if (!log_diagnostics(loaded)) return exit_config;
  const segx::config::Config& config = *loaded.config;
  if (!log_level) log::set_level(log::parse_level(config.log.level).value_or(log::Level::info));

  // 2. Signals first, so a Ctrl-C during start-up is not lost, and a SIGHUP (systemctl
  // reload) does not end segx.
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGHUP, on_hangup);

  // 3. The market and its ledger (replayed and verified) before any packet moves, so a
  // broken ledger stops start-up with nothing started.
  std::unique_ptr<segx::app::ControlPlane> control;
  if (config.market.enabled) {
    std::vector<std::string> lines;
    auto opened = segx::app::ControlPlane::open(config, lines);
    if (!opened) {
      log::error("segx: " + opened.error());
      return exit_startup;
    }
    control = std::move(opened).value();
    for (const auto& line : lines)
      log::info("segx: " + line);
  }
  if (log::enabled(log::Level::debug)) {
    std::string args;
    for (const auto& a : segx::config::eal_arguments(config, argv[0]))
      args += " " + a;
    log::debug("segx: EAL arguments:" + args);
  }

  // 4. EAL, then ports, mempool, rings and lcore plans.
  if (auto s = segx::dataplane::init_eal(config, argv[0]); !s) {
    log::error("segx: " + s.error());
    return exit_startup;
  }
  // The ledger's writer and settlement started before EAL placed this thread on the main
  // lcore's CPUs: they join it there, off the data-plane lcores' CPUs (a busy-polling lcore
  // shares its CPU with no one), as the API's threads do by inheriting it.
  if (control) {
    if (auto s = control->confine_to_callers_cpus(); !s) log::warning("segx: " + s.error());
  }
  int rc = exit_ok;
  {
    auto created = segx::dataplane::Dataplane::create(config);
    if (!created) {
      log::error("segx: " + created.error());
      if (control) control->stop(nullptr);
      segx::dataplane::cleanup_eal();
      return exit_startup;
    }
    auto& dp = *created.value();

    // 5. Metrics: the endpoint is bound before the ports start, so a port already in use
    // stops segx before any packet is touched. Scrapes read counters gathered by this
    // thread's control loop (Dataplane::stats), never the lcores' state.
    segx::metrics::Registry registry;
    std::unique_ptr<segx::metrics::Server> metrics_server;
    const auto start_time = std::chrono::system_clock::now().time_since_epoch();
    segx::metrics::add_process_info(registry, SEGX_VERSION, rte_version(),
                                    std::chrono::duration<double>(start_time).count());
    segx::dataplane::add_metrics_collector(
        registry, [&dp] { return dp.stats(std::chrono::milliseconds(1000)); });
    if (config.metrics.enabled) {
      auto server = segx::metrics::Server::start(
          config.metrics.listen.host, config.metrics.listen.port, registry,
          {config.metrics.max_connections, config.metrics.max_connections_per_address});
      if (!server) {
        log::error("segx: " + server.error());
        dp.stop();
        created.value().reset();
        segx::dataplane::cleanup_eal();
        return exit_startup;
      }
      metrics_server = std::move(server).value();
      segx::metrics::add_http_collector(registry, "metrics", metrics_server->stats());
    }
    // Reloads (SIGHUP, POST /v1/admin/reload) run on this thread; the API's requests wait
    // for their outcome at most 30 s.
    segx::app::Reloader reloader(config_path, config, dp, control.get(), log_level.has_value(),
                                 registry);
    const auto reload_route = [&reloader]() -> segx::api::AdminAnswer {
      auto outcome = reloader.ask(std::chrono::seconds(30));
      if (!outcome) {
        return {503,
                {{"error", "unavailable"},
                 {"detail",
                  "no reload outcome within 30 s, or segx is stopping; "
                  "segx_config_generation tells whether one was applied"}}};
      }
      return {outcome->applied ? 200 : 422, outcome->to_json()};
    };
    // The API, bound like /metrics before any packet moves, so a port in use stops segx
    // with nothing started.
    std::vector<std::string> api_lines;
    if (control) {
      if (auto s = control->start_api(config, registry, api_lines, reload_route); !s) {
        log::error("segx: " + s.error());
        control->stop(nullptr);
        metrics_server.reset();
        dp.stop();
        created.value().reset();
        segx::dataplane::cleanup_eal();
        return exit_startup;
      }
    }

    // 6. Start ports and lcores.
    std::vector<std::string> links;
    if (auto s = dp.start(links); !s) {
      log::error("segx: " + s.error());
      // The API (and its reload route) stops before what it refers to goes.
      reloader.close();
      if (control) control->stop(nullptr);
      dp.stop();
      rc = exit_startup;
    } else {
      log::notice("segx " SEGX_VERSION ": running with " + config_path + " (file prefix " +
                  config.eal.file_prefix + ")");
      for (const auto& line : links)
        log::info("  " + line);
      for (const auto& line : dp.describe_lcores())
        log::info("  " + line);
      if (metrics_server) {
        log::info("  metrics: " + metrics_server->url() + " (telemetry: dpdk-telemetry.py -f " +
                  config.eal.file_prefix + ", then /segx/stats)");
      } else {
        log::info("  metrics: disabled (metrics.enabled: false)");
      }
      for (const auto& line : api_lines)
        log::info("  " + line);
      // The lcores run and the API and /metrics are served: systemd's start is over.
      segx::app::service::ready("running with " + config_path);

      // 7. Control loop: records, blocks, the market, until a signal, the duration, or the packet
      // count.
      const auto started = std::chrono::steady_clock::now();
      std::string reason;
      while (reason.empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        const auto elapsed = std::chrono::steady_clock::now() - started;
        const auto wall = std::chrono::system_clock::now().time_since_epoch();
        for (const auto& line :
             dp.poll(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count(),
                     std::chrono::duration_cast<std::chrono::nanoseconds>(wall).count())) {
          log::notice("segx: " + line);
        }
        if (control) {
          for (const auto& line : control->tick(&dp))
            log::notice("segx: " + line);
        }
        if (reload_signal.exchange(false)) reloader.reload("SIGHUP");
        reloader.serve();
        if (int sig = stop_signal.load()) {
          reason = std::string("signal ") + (sig == SIGINT ? "SIGINT" : "SIGTERM");
        } else if (duration > 0 && std::chrono::steady_clock::now() - started >=
                                       std::chrono::duration<double>(duration)) {
          reason = "duration reached";
        } else if (max_packets > 0 && dp.received() >= max_packets) {
          reason = std::to_string(max_packets) + " packets received";
        }
      }
      segx::app::service::stopping("stopping (" + reason + ")");
      log::notice("segx: stopping (" + reason + "): draining rings");

      // 8. Leases' usage so far into the ledger, then drain, close ports, report. A reload
      // asked for now gets no outcome (503), rather than holding the API's shutdown.
      reloader.close();
      if (control) {
        for (const auto& line : control->stop(&dp))
          log::notice("segx: " + line);
      }
      const auto report = dp.stop();
      print_report(report);
      if (!report_path.empty()) {
        std::ofstream out(report_path);
        auto j = report_json(report);
        if (control) j["market"] = control->report();
        out << j.dump(2) << "\n";
        if (!out) log::error("segx: cannot write the report to " + report_path);
      }
      if (report.mempool_in_use != 0 || report.segments_in_use != 0 ||
          report.reorder_stranded != 0) {
        rc = exit_leak;
      }
    }
  }
  segx::dataplane::cleanup_eal();
  std::fflush(stdout);
  return rc;
}
