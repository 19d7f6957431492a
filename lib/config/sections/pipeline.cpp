// Section pipeline: lcores, rings, pools, the default route, and the checks of queues and mbufs.

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "config/sections/context.hpp"

namespace segx::config::sections {
namespace {

// pipeline.default.by_input: a mapping of input port names to output port names.
void read_by_input(Context& ctx, const Value& v, std::map<std::string, std::string>& out,
                   std::set<std::string>& routed) {
  if (v.is_null()) return;
  if (!v.is_map()) {
    v.error("expected a mapping of input port to output port, such as {in: out, out: in}");
    return;
  }
  for (auto it = v.yaml().begin(); it != v.yaml().end(); ++it) {
    const std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
    Value in(it->first, v.path() + "." + key, to_mark(it->first.Mark()), ctx.diag);
    Value to(it->second, v.path() + "." + key, to_mark(it->second.Mark()), ctx.diag);
    auto in_name = in.as_name();
    auto to_name = to.as_name();
    if (in_name) routed.insert(*in_name);
    if (!in_name || !to_name || !check_port_ref(ctx, in, *in_name) ||
        (*to_name != "drop" && !check_port_ref(ctx, to, *to_name))) {
      continue;
    }
    if (!out.emplace(*in_name, *to_name).second)
      in.error("input port '" + *in_name + "' is given twice");
  }
}

// Every port that receives needs somewhere to send what no profile takes; sending it
// back out of the port it came from reflects traffic onto the wire, which is rarely meant.
void check_default_routes(Context& ctx, const Value& d, const std::set<std::string>& routed) {
  const PipelineConfig& pl = ctx.c.pipeline;
  for (const PortConfig& p : ctx.c.ports) {
    if (p.rx_queues == 0) continue;
    auto by = pl.default_by_input.find(p.name);
    const std::string& out = by != pl.default_by_input.end() ? by->second : pl.default_output;
    if (out.empty() && !routed.count(p.name)) {
      d.error("default action 'forward' needs an output for packets from port '" + p.name +
              "' (output, or by_input)");
    } else if (out.empty() || out == "drop") {
      continue;
    } else if (out == p.name) {
      d.warning("packets received on port '" + p.name +
                "' that no profile takes are sent back "
                "out of it; make the port transmit-only (rx_queues: 0) or route it in by_input");
    }
  }
}

// Checks that the ports have something to receive from, and enough mbufs to fill every
// descriptor and lcore cache.
void check_queues(Context& ctx, const Value& pipeline_v, unsigned rx_lcores) {
  unsigned rx_queues = 0;
  uint64_t descriptors = 0;
  for (const PortConfig& p : ctx.c.ports) {
    rx_queues += p.rx_queues;
    descriptors +=
        uint64_t(p.rx_queues) * p.rx_descriptors + uint64_t(p.tx_queues) * p.tx_descriptors;
  }
  if (ctx.c.ports.empty()) return;
  if (rx_queues == 0) {
    pipeline_v.error("no port has rx queues: nothing would be received");
  } else if (rx_lcores > rx_queues) {
    pipeline_v.warning(std::to_string(rx_lcores) + " rx lcores share " + std::to_string(rx_queues) +
                       " rx queues; some rx lcores will be idle");
  }
  const MempoolConfig& mp = ctx.c.pipeline.mempool;
  const uint64_t lcores = ctx.c.pipeline.lcores.size() + 1;  // data plane + main
  const uint64_t needed = descriptors + lcores * (mp.cache + ctx.c.pipeline.burst);
  if (mp.size < needed) {
    pipeline_v.error("pipeline.mempool.size of " + std::to_string(mp.size) +
                     " mbufs cannot fill the " + std::to_string(descriptors) +
                     " port descriptors and " + std::to_string(lcores) +
                     " lcore caches and bursts; it needs at least " + std::to_string(needed));
  }
}

}  // namespace

// ---- pipeline -----------------------------------------------------------------------
void read_pipeline(Context& ctx, const Value& v) {
  PipelineConfig& pl = ctx.c.pipeline;
  MapReader m(v);
  if (!m.valid()) return;
  auto lcores_v = m.require("lcores");
  unsigned rx = 0, workers = 0, tx = 0;
  if (lcores_v) {
    std::set<unsigned> seen;
    const int errors_before = ctx.diag.error_count();
    const auto items = lcores_v->items();
    for (const Value& item : items.value_or(std::vector<Value>{})) {
      MapReader lm(item);
      if (!lm.valid()) continue;
      LcoreConfig lc;
      if (auto id = lm.require("lcore")) {
        if (auto n = id->as_int(0, max_lcores - 1)) {
          lc.lcore = static_cast<unsigned>(*n);
          const auto& eal = ctx.c.eal.lcores;
          if (std::find(eal.begin(), eal.end(), lc.lcore) == eal.end()) {
            id->error("lcore " + std::to_string(*n) + " is not started by EAL (eal.lcores)");
          } else if (lc.lcore == ctx.c.eal.main_lcore) {
            id->error("lcore " + std::to_string(*n) +
                      " is the main lcore, which runs the control plane; give data-plane roles "
                      "to other lcores");
          } else if (!seen.insert(lc.lcore).second) {
            id->error("lcore " + std::to_string(*n) +
                      " is listed twice; give one entry all "
                      "its roles");
          }
        }
      }
      if (auto roles = lm.require("roles")) {
        for (const Value& r : roles->list(true)) {
          auto name = r.as_choice({"rx", "worker", "tx"});
          if (!name) continue;
          const uint8_t bit = *name == "rx" ? role_rx : *name == "worker" ? role_worker : role_tx;
          if (lc.roles & bit) r.error("role '" + *name + "' is listed twice");
          lc.roles |= bit;
        }
        if (lc.roles == 0) roles->error("at least one role (rx, worker, tx) is needed");
      }
      rx += (lc.roles & role_rx) != 0;
      workers += (lc.roles & role_worker) != 0;
      tx += (lc.roles & role_tx) != 0;
      pl.lcores.push_back(lc);
    }
    // Counting roles is only meaningful when every entry was read without error.
    if (ctx.diag.error_count() == errors_before && !pl.lcores.empty() &&
        (rx == 0 || workers == 0 || tx == 0)) {
      lcores_v->error("every role needs at least one lcore; rx: " + std::to_string(rx) +
                      ", worker: " + std::to_string(workers) + ", tx: " + std::to_string(tx));
    }
    if (items && pl.lcores.empty()) lcores_v->error("at least one data-plane lcore is needed");
  }
  m.read("burst", pl.burst, 1, max_burst);
  if (auto ft = m.get("flow_table")) {
    MapReader fm(*ft);
    fm.read("size", pl.flow_table.size, 64, 1 << 24);
    fm.read("idle_timeout", pl.flow_table.idle_timeout, Duration(1s), Duration(24h));
  }
  m.read("segment_pool", pl.segment_pool, 64, 1 << 24);
  if (auto mt = m.get("metering")) {
    MapReader mm(*mt);
    mm.read("blocks", pl.metering.blocks, 1, 65536);
    mm.read("members", pl.metering.members, 1, 1 << 20);
    mm.read("burst", pl.metering.burst, Duration(1ms), Duration(10s));
    mm.read("keep_ended", pl.metering.keep_ended, Duration(0s), Duration(24h * 7));
    mm.read("series_points", pl.metering.series_points, 10, 604800);
  }
  if (auto rs = m.get("ring_size")) {
    if (auto n = rs->as_int(2, 1 << 20)) {
      if (static_cast<uint32_t>(*n) < pl.burst) {
        rs->error("must hold at least one burst (" + std::to_string(pl.burst) + ")");
      } else {
        pl.ring_size = static_cast<uint32_t>(*n);
      }
    }
  }
  if (auto mp = m.get("mempool")) {
    MapReader mm(*mp);
    mm.read("size", pl.mempool.size, 64, 1 << 26);
    if (auto cache = mm.get("cache")) {
      // DPDK refuses caches above RTE_MEMPOOL_CACHE_MAX_SIZE or above size / 1.5.
      if (auto n = cache->as_int(0, 512)) {
        if (*n * 3 / 2 > pl.mempool.size) {
          cache->error("cache of " + std::to_string(*n) + " is too large for " +
                       std::to_string(pl.mempool.size) + " mbufs (at most size / 1.5)");
        } else {
          pl.mempool.cache = static_cast<uint32_t>(*n);
        }
      }
    }
    uint64_t data_room = pl.mempool.data_room;
    mm.read_size("data_room", data_room, 128 + 64, 65535);
    pl.mempool.data_room = static_cast<uint32_t>(data_room);
  }
  if (auto d = m.get("default")) {
    MapReader dm(*d);
    std::string action = "forward";
    dm.read_choice("action", action, {"forward", "drop"});
    pl.default_action = action == "forward" ? DefaultAction::forward : DefaultAction::drop;
    // Inputs whose output was given, valid or not: an invalid one is reported already.
    std::set<std::string> routed;
    if (auto out = dm.get("output")) {
      if (auto s = out->as_name(); s && check_port_ref(ctx, *out, *s)) pl.default_output = *s;
      for (const PortConfig& p : ctx.c.ports)
        routed.insert(p.name);
    }
    if (auto by = dm.get("by_input")) read_by_input(ctx, *by, pl.default_by_input, routed);
    if (pl.default_action == DefaultAction::forward && dm.valid())
      check_default_routes(ctx, *d, routed);
  } else {
    v.error("missing required key 'default' (what to do with packets no profile matches)");
  }
  check_queues(ctx, v, rx);
}

// Every port packets can leave by (a default route, a profile's output, a peer's link)
// needs a tx queue for each tx lcore: they never share one. Other ports need none.
void check_tx_queues(Context& ctx) {
  std::set<std::string> outputs;
  const PipelineConfig& pl = ctx.c.pipeline;
  if (pl.default_action == DefaultAction::forward) {
    if (!pl.default_output.empty()) outputs.insert(pl.default_output);
    for (const auto& [in, out] : pl.default_by_input) {
      if (out != "drop") outputs.insert(out);
    }
  }
  for (const auto& p : ctx.c.profiles)
    outputs.insert(p.output);
  for (const auto& peer : ctx.c.providers.peers)
    outputs.insert(peer.port);
  for (const PortConfig& p : ctx.c.ports) {
    if (!outputs.count(p.name)) continue;
    if (auto shortfall = ctx.c.tx_queue_shortfall(p)) {
      ctx.port_values.at(p.name).error(
          *shortfall + "; each tx lcore needs its own queue on every port it sends to (tx_queues)");
    }
  }
}

}  // namespace segx::config::sections
