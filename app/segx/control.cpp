#include "control.hpp"

#include <getopt.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "common/cpus.hpp"
#include "config/loader.hpp"
#include "dataplane/service.hpp"
#include "ledger/storage.hpp"
#include "log.hpp"
#include "market/metrics.hpp"
#include "metrics/server.hpp"
#include "segx_version.h"

namespace segx::app {

Status DataplaneActivator::activate(const market::BlockRequest& b) {
  config::BlockConfig block;
  block.id = b.id;
  block.profile = b.profile;
  block.duration = config::Duration(b.duration_ns);
  block.min_rate = b.min_rate;
  block.max_rate = b.max_rate;
  block.members = b.members;
  if (Status s = dp_.activate_block(block); !s) return s;
  // The series exists from the activation (empty until the first sample), so the block's
  // routes answer at once.
  if (auto u = dp_.block_usage(b.id))
    series_.sample(block_sample(u.value()), u.value().start_ns, u.value().start_ns);
  return {};
}

market::BlockSample block_sample(const dataplane::BlockUsage& u) {
  market::BlockSample s;
  s.id = u.id;
  s.serial = u.serial;
  s.min_rate = u.min_rate;
  s.max_rate = u.max_rate;
  s.packets = u.total.packets;
  s.bytes = u.total.bytes;
  s.dropped_packets = u.dropped_packets;
  s.dropped_bytes = u.dropped_bytes;
  for (const auto& [label, t] : u.members)
    s.members.emplace_back(label, t.bytes);
  return s;
}

Result<market::Usage> DataplaneActivator::deactivate(const std::string& id) {
  auto u = dp_.deactivate_block(id);
  if (!u) return Error{u.error()};
  const dataplane::BlockUsage& b = u.value();
  market::Usage out;
  out.dropped_packets = b.dropped_packets;
  out.dropped_bytes = b.dropped_bytes;
  out.compliance = series_.end(block_sample(b), b.end_ns);
  out.active_ns = (b.end_ns > b.start_ns) ? b.end_ns - b.start_ns : 0;
  for (size_t i = 0; i < 3; ++i) {
    out.packets[i] = b.total.packets[i];
    out.bytes[i] = b.total.bytes[i];
  }
  for (const auto& [label, t] : b.members)
    out.member_bytes[label] = t.bytes;
  return out;
}

Result<std::unique_ptr<ControlPlane>> ControlPlane::open(const config::Config& config,
                                                         std::vector<std::string>& log) {
  std::unique_ptr<ControlPlane> c(new ControlPlane());
  const auto timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(config.market.ledger_timeout);
  auto storage = ledger::open_storage(config.market.ledger, false, {timeout});
  if (!storage) return Error{storage.error()};
  const ledger::VerifyReport v = ledger::verify(*storage.value());
  if (!v.ok)
    return Error{"ledger " + config.market.ledger + " fails verification: " + v.reason +
                 "; segx will not extend a broken chain (see docs/market.md, \"Ledger\")"};
  ledger::LedgerOptions lo;
  lo.timeout = timeout;
  // A failing store (and its recovery) is logged with its cause, once per change.
  lo.log = [](const std::string& line) {
    // A failure is a warning until the store answers again.
    log::write(line.find("failed") != std::string::npos ? log::Level::warning : log::Level::notice,
               "segx: " + line);
  };
  auto l = ledger::Ledger::open(std::move(storage).value(), std::move(lo));
  if (!l) return Error{l.error()};
  c->ledger_ = std::move(l).value();
  // The API's token events share the journal: the market's replay must know they are not
  // its own.
  if (Status r = api::TokenStore::register_event_types(*c->ledger_); !r) return r.failure();
  auto g = market::make_gateway(config.market.gateway);
  if (!g) return Error{g.error()};
  c->gateway_ = std::move(g).value();
  auto m =
      market::Market::open(market::market_options(config), *c->ledger_, *c->gateway_, c->clock_);
  if (!m) return Error{m.error()};
  c->market_ = std::move(m).value();
  market::SeriesOptions so;
  so.max_points = config.pipeline.metering.series_points;
  so.keep_ended_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(config.pipeline.metering.keep_ended)
          .count();
  c->series_ = std::make_unique<market::BlockSeries>(so);
  const auto s = c->market_->stats();
  log.push_back("market: ledger " + c->ledger_->describe() + ", " + std::to_string(v.events) +
                " events verified (head " + ledger::to_hex(v.head).substr(0, 16) + "), " +
                std::to_string(s.open_lots) + " open lots, " + std::to_string(s.leases) +
                " leases; payments through " + c->gateway_->describe());
  if (config.market.role != "standalone")
    log.push_back("market: " + config.market.role + " '" + config.market.appliance +
                  "' on a shared ledger, enforcing " +
                  std::to_string(static_cast<int>(config.market.rate_share * 100 + 0.5)) +
                  "% of each block's rates");
  // Appliances do not settle: the moderator charges, once, for the whole market.
  if (config.market.role != "appliance")
    c->settlement_ = std::thread([p = c.get()] { p->settlement_loop(); });
  return c;
}

namespace {

std::vector<api::ProfileInfo> profile_infos(const config::Config& config) {
  std::vector<api::ProfileInfo> out;
  for (const auto& p : config.profiles) {
    api::ProfileInfo info{p.name, p.metered, {}, p.output};
    for (const auto& s : p.services)
      info.services.push_back(s.name);
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace

Status ControlPlane::check_reload(const config::Config& next) const {
  return market_->check_rules(next.subscribers);
}

Status ControlPlane::apply_reload(const config::Config& next) {
  std::set<std::string> sold;
  for (const auto& p : next.profiles)
    if (p.metered) sold.insert(p.name);
  if (Status s = market_->set_rules(std::move(sold), next.subscribers); !s) return s;
  if (api_) api_->set_profiles(profile_infos(next));
  return {};
}

Status ControlPlane::start_api(const config::Config& config, metrics::Registry& registry,
                               std::vector<std::string>& log,
                               std::function<api::AdminAnswer()> reload) {
  const config::ApiConfig& a = config.market.api;
  auto tokens = api::TokenStore::open(a.tokens, ledger_.get());
  if (!tokens) return Error{tokens.error()};
  tokens_ = std::move(tokens).value();
  market::add_market_collector(registry, *market_, *ledger_);
  market::add_series_collector(registry, *series_);
  // An API no one can sign in to serves nothing but /healthz; not binding it keeps the
  // port free, so appliances run only for their data plane (and tests side by side) never
  // collide on market.api.listen.
  if (tokens_->list().empty()) {
    log.push_back("api: not served (no tokens: market.api.tokens is empty and none were issued)");
    return {};
  }
  api::ApiOptions o;
  o.body_limit = a.body_limit;
  o.rate_limit = a.rate_limit;
  o.version = SEGX_VERSION;
  o.profiles = profile_infos(config);
  o.reload = std::move(reload);
  // Development only: serve the board from a directory to edit it without rebuilding.
  if (const char* dir = std::getenv("SEGX_BOARD_DIR")) o.board_dir = dir;
  o.series = series_.get();
  // Unset: one per CPU this thread may run on, after EAL init the main lcore's. The API's
  // threads inherit them, so more threads than CPUs only take turns, each turn a switch: on
  // one CPU a bid cost about 70 us of CPU with four threads and 50 with one.
  const uint32_t threads = a.threads ? a.threads : callers_cpu_count();
  // Changes wait for their commit on these, blocked rather than busy: as many as answer
  // requests, at least the two a hung store should not leave every change waiting behind.
  o.wait_threads = std::max<uint32_t>(threads, 2);
  api_ = std::make_unique<api::Api>(std::move(o), *tokens_, *market_, *ledger_, clock_);
  api_->add_metrics(registry);
  const auto ms = [](config::Duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d);
  };
  api::ServerOptions so;
  so.host = a.listen.host;
  so.port = a.listen.port;
  so.threads = threads;
  so.limits.body_limit = a.body_limit;
  so.limits.header_timeout = ms(a.header_timeout);
  so.limits.body_timeout = ms(a.body_timeout);
  so.limits.read_timeout = ms(a.read_timeout);
  so.limits.write_timeout = ms(a.write_timeout);
  so.limits.keep_alive_timeout = ms(a.keep_alive_timeout);
  so.limits.keep_alive_requests = a.keep_alive_requests;
  so.limits.max_connections = a.max_connections;
  so.limits.max_connections_per_address = a.max_connections_per_address;
  so.anonymous_rate_limit = a.anonymous_rate_limit;
  so.tls.cert = a.tls_cert;
  so.tls.key = a.tls_key;
  so.tls.ciphers = a.tls_ciphers;
  so.tls.ciphersuites = a.tls_ciphersuites;
  auto server = api::Server::start(so, *api_, *tokens_);
  if (!server) return Error{server.error()};
  api_server_ = std::move(server).value();
  metrics::add_http_collector(registry, "api", api_server_->stats());
  log.push_back("api: " + api_server_->url() + "/v1 (" + std::to_string(tokens_->list().size()) +
                " tokens, " + std::to_string(threads) + (threads == 1 ? " thread" : " threads") +
                "), board " + api_server_->url() + "/ui/");
  return {};
}

Status ControlPlane::confine_to_callers_cpus() {
  if (Status s = ledger_->share_callers_cpus(); !s) return s;
  return share_callers_cpus(settlement_, "settlement");
}

ControlPlane::~ControlPlane() {
  stop(nullptr);
}

void ControlPlane::settlement_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    // Gateway calls may take seconds: they run here, never on the main loop.
    market_->settle(&stop_settling_);
    lock.lock();
    wake_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping_; });
  }
}

std::vector<std::string> ControlPlane::tick(dataplane::Dataplane* dp) {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_tick_ < std::chrono::milliseconds(100)) return {};
  last_tick_ = now;
  if (!dp) return market_->tick(nullptr);
  if (now >= next_sample_) {
    // Once a second, on this clock rather than the tick's, so points are a second apart;
    // after a stall the next one simply covers the longer interval.
    next_sample_ += std::chrono::seconds(1);
    if (next_sample_ <= now) next_sample_ = now + std::chrono::seconds(1);
    sample(*dp);
  }
  DataplaneActivator activator(*dp, *series_);
  return market_->tick(&activator);
}

void ControlPlane::sample(dataplane::Dataplane& dp) {
  const int64_t wall = clock_.now_ns();
  std::vector<std::string> ids;
  for (const dataplane::BlockUsage& u : dp.active_blocks()) {
    series_->sample(block_sample(u), u.start_ns, wall);
    ids.push_back(u.id);
  }
  series_->end_missing(ids, wall);
  series_->expire(wall);
}

std::vector<std::string> ControlPlane::stop(dataplane::Dataplane* dp) {
  std::vector<std::string> log;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return log;
    stopping_ = true;
  }
  // Pending charges stay pending: the next start settles them.
  stop_settling_ = true;
  // No request may reach the market once it starts winding down.
  if (api_server_) api_server_->stop();
  wake_.notify_all();
  if (settlement_.joinable()) settlement_.join();
  if (dp && market_) {
    DataplaneActivator activator(*dp, *series_);
    log = market_->suspend(&activator);
  }
  // A control plane that failed to open has no ledger yet.
  if (ledger_) ledger_->close();
  return log;
}

nlohmann::json ControlPlane::report() const {
  const auto s = market_->stats();
  const auto l = ledger_->stats();
  return {{"ledger", ledger_->describe()},
          {"lots", s.lots},
          {"open_lots", s.open_lots},
          {"bids", s.bids},
          {"groups", s.groups},
          {"leases", s.leases},
          {"active_leases", s.active_leases},
          {"charges",
           {{"accepted", s.charges_accepted},
            {"declined", s.charges_declined},
            {"error", s.charges_error},
            {"pending", s.charges_pending}}},
          {"ratings", s.ratings},
          {"events_replayed", s.replayed_events},
          {"events_written", l.events},
          {"commits", l.commits}};
}

int ledger_command(int argc, char** argv) {
  // argv[0] is "segx", argv[1] "ledger".
  const char* usage = "usage: segx ledger verify --config FILE\n";
  if (argc < 3 || std::string(argv[2]) != "verify") {
    std::fputs(usage, stderr);
    return 2;
  }
  std::string config_path;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--config" || a == "-c") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.starts_with("--config=")) {
      config_path = a.substr(9);
    } else {
      std::fprintf(stderr, "segx ledger: unexpected argument '%s'\n%s", a.c_str(), usage);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fputs(usage, stderr);
    return 2;
  }
  auto loaded = config::load_file(config_path, dataplane::load_options());
  for (const auto& d : loaded.diagnostics)
    std::fprintf(stderr, "%s\n", config::format(d).c_str());
  if (!loaded.ok()) return 1;
  const std::string& url = loaded.config->market.ledger;
  auto storage = ledger::open_storage(url, true);
  if (!storage) {
    std::fprintf(stderr, "segx ledger: %s\n", storage.error().c_str());
    return 1;
  }
  const ledger::VerifyReport v = ledger::verify(*storage.value());
  if (!v.ok) {
    std::printf("ledger %s: BROKEN at event %llu: %s\n", url.c_str(),
                static_cast<unsigned long long>(v.bad_seq), v.reason.c_str());
    std::printf("  events 1 to %llu are intact (head %s)\n",
                static_cast<unsigned long long>(v.events), ledger::to_hex(v.head).c_str());
    return 5;
  }
  std::printf("ledger %s: %llu events, chain intact\n  head %s\n", url.c_str(),
              static_cast<unsigned long long>(v.events), ledger::to_hex(v.head).c_str());
  return 0;
}

}  // namespace segx::app
