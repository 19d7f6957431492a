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
#include "metrics/metrics.hpp"
#include "metrics/server.hpp"
#include "segx_version.h"
#include "services/services.hpp"

namespace {

// Exit codes; docs/operations.md lists them.
constexpr int exit_ok = 0;
constexpr int exit_config = 1;
constexpr int exit_usage = 2;
constexpr int exit_startup = 3;
constexpr int exit_leak = 4;

std::atomic<int> stop_signal{0};

void on_signal(int sig) {
  stop_signal.store(sig);
}

void usage(FILE* out) {
  std::fprintf(
      out,
      "usage: segx --config FILE [--duration SECONDS] [--max-packets N] [--report FILE]\n"
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
      "  -h, --help               this text\n"
      "  -V, --version            version of segx and of DPDK\n"
      "\n"
      "  ledger verify            check every event of the configured ledger's hash chain;\n"
      "                           exit 0 when intact, 5 naming the first broken event\n"
      "\n"
      "SIGINT or SIGTERM stops receiving, drains the rings, closes the ports and prints\n"
      "per-port and per-ring statistics. Exit codes: 0 success, 1 configuration error,\n"
      "2 usage error, 3 start-up failure, 4 mbufs or segments not returned at exit.\n");
}

// Prints diagnostics; returns true when there was no error.
bool print_diagnostics(const segx::config::LoadResult& r) {
  for (const auto& d : r.diagnostics)
    std::fprintf(stderr, "%s\n", segx::config::format(d).c_str());
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

  static const option long_options[] = {
      {"config", required_argument, nullptr, 'c'},
      {"check-config", required_argument, nullptr, 'k'},
      {"duration", required_argument, nullptr, 'd'},
      {"max-packets", required_argument, nullptr, 'n'},
      {"report", required_argument, nullptr, 'r'},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, 'V'},
      {nullptr, 0, nullptr, 0},
  };
  int opt;
  while ((opt = getopt_long(argc, argv, "c:d:n:r:hV", long_options, nullptr)) != -1) {
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

  // 1. Configuration: every problem is printed before anything starts.
  auto loaded = segx::config::load_file(config_path, segx::dataplane::load_options());
  if (!print_diagnostics(loaded)) return exit_config;
  const segx::config::Config& config = *loaded.config;

  // 2. Signals first, so a Ctrl-C during start-up is not lost.
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  // 3. The market and its ledger (replayed and verified) before any packet moves, so a
  // broken ledger stops start-up with nothing started.
  std::unique_ptr<segx::app::ControlPlane> control;
  if (config.market.enabled) {
    std::vector<std::string> lines;
    auto opened = segx::app::ControlPlane::open(config, lines);
    if (!opened) {
      std::fprintf(stderr, "segx: %s\n", opened.error().c_str());
      return exit_startup;
    }
    control = std::move(opened).value();
    for (const auto& line : lines)
      std::printf("segx: %s\n", line.c_str());
  }

  // 4. EAL, then ports, mempool, rings and lcore plans.
  if (auto s = segx::dataplane::init_eal(config, argv[0]); !s) {
    std::fprintf(stderr, "segx: %s\n", s.error().c_str());
    return exit_startup;
  }
  int rc = exit_ok;
  {
    auto created = segx::dataplane::Dataplane::create(config);
    if (!created) {
      std::fprintf(stderr, "segx: %s\n", created.error().c_str());
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
      auto server = segx::metrics::Server::start(config.metrics.listen.host,
                                                 config.metrics.listen.port, registry);
      if (!server) {
        std::fprintf(stderr, "segx: %s\n", server.error().c_str());
        dp.stop();
        created.value().reset();
        segx::dataplane::cleanup_eal();
        return exit_startup;
      }
      metrics_server = std::move(server).value();
    }
    // The API, bound like /metrics before any packet moves, so a port in use stops segx
    // with nothing started.
    std::vector<std::string> api_lines;
    if (control) {
      if (auto s = control->start_api(config, registry, api_lines); !s) {
        std::fprintf(stderr, "segx: %s\n", s.error().c_str());
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
      std::fprintf(stderr, "segx: %s\n", s.error().c_str());
      dp.stop();
      rc = exit_startup;
    } else {
      std::printf("segx %s: running with %s (file prefix %s)\n", SEGX_VERSION, config_path.c_str(),
                  config.eal.file_prefix.c_str());
      for (const auto& line : links)
        std::printf("  %s\n", line.c_str());
      for (const auto& line : dp.describe_lcores())
        std::printf("  %s\n", line.c_str());
      if (metrics_server) {
        std::printf("  metrics: %s (telemetry: dpdk-telemetry.py -f %s, then /segx/stats)\n",
                    metrics_server->url().c_str(), config.eal.file_prefix.c_str());
      } else {
        std::printf("  metrics: disabled (metrics.enabled: false)\n");
      }
      for (const auto& line : api_lines)
        std::printf("  %s\n", line.c_str());
      std::fflush(stdout);

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
          std::printf("segx: %s\n", line.c_str());
          std::fflush(stdout);
        }
        if (control) {
          for (const auto& line : control->tick(&dp)) {
            std::printf("segx: %s\n", line.c_str());
            std::fflush(stdout);
          }
        }
        if (int sig = stop_signal.load()) {
          reason = std::string("signal ") + (sig == SIGINT ? "SIGINT" : "SIGTERM");
        } else if (duration > 0 && std::chrono::steady_clock::now() - started >=
                                       std::chrono::duration<double>(duration)) {
          reason = "duration reached";
        } else if (max_packets > 0 && dp.received() >= max_packets) {
          reason = std::to_string(max_packets) + " packets received";
        }
      }
      std::printf("segx: stopping (%s): draining rings\n", reason.c_str());

      // 8. Leases' usage so far into the ledger, then drain, close ports, report.
      if (control) {
        for (const auto& line : control->stop(&dp))
          std::printf("segx: %s\n", line.c_str());
      }
      const auto report = dp.stop();
      print_report(report);
      if (!report_path.empty()) {
        std::ofstream out(report_path);
        auto j = report_json(report);
        if (control) j["market"] = control->report();
        out << j.dump(2) << "\n";
        if (!out)
          std::fprintf(stderr, "segx: cannot write the report to %s\n", report_path.c_str());
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
