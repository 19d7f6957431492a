// Loading a configuration file: parse the YAML, then read it section by section
// (lib/config/sections/, one file per top-level section, sharing sections::Context).

#include "config/loader.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "config/sections/context.hpp"

namespace segx::config {
namespace sections {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items)
    out += (out.empty() ? "" : ", ") + s;
  return out;
}

// A parser for values or ranges within [lo, hi].
std::function<Result<Range>(std::string_view)> range_parser(uint32_t lo, uint32_t hi) {
  return [lo, hi](std::string_view text) -> Result<Range> {
    auto r = parse_range(text, hi);
    if (r && r.value().lo < lo) {
      return Error{"expected a value or a range lo-hi within " + std::to_string(lo) + ".." +
                   std::to_string(hi) + ", got '" + std::string(text) + "'"};
    }
    return r;
  };
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

void read_connection_caps(MapReader& m, uint32_t& total, uint32_t& per_address) {
  m.read("max_connections", total, 1, 100'000);
  m.read("max_connections_per_address", per_address, 1, 100'000);
  if (per_address > total) {
    if (auto v = m.get("max_connections_per_address"); v)
      v->error("more than max_connections (" + std::to_string(total) + ")");
    else
      per_address = total;
  }
}

}  // namespace sections

namespace {

using namespace sections;

Value section_default(Context& ctx, const std::string& name, const Value& root) {
  return Value(YAML::Node(), name, root.mark(), ctx.diag);
}

// Reads the sections in dependency order: a section that others refer to (ports,
// providers, subscribers) is read before those that refer to it.
void load_sections(Context& ctx, const Value& root) {
  MapReader top(root);
  if (!top.valid()) return;
  auto eal_v = top.get("eal");
  read_eal(ctx, eal_v ? *eal_v : section_default(ctx, "eal", root), ctx.c.eal);
  if (auto v = top.require("ports")) read_ports(ctx, *v);
  if (auto v = top.get("providers")) read_providers(ctx, *v);
  if (auto v = top.get("subscribers")) read_subscribers(ctx, *v);
  if (auto v = top.require("pipeline")) read_pipeline(ctx, *v);
  // Served entries are checked like chain entries: with ports, pipeline and providers read.
  if (ctx.serve_v) read_serve(ctx, *ctx.serve_v);
  if (auto v = top.get("profiles")) read_profiles(ctx, *v);
  if (auto v = top.get("market")) read_market(ctx, *v);
  if (auto v = top.get("metrics")) read_metrics(ctx, *v);
  if (auto v = top.get("results")) read_results(ctx, *v);
  if (auto v = top.get("blocks")) read_blocks(ctx, *v);
  if (auto v = top.get("log")) read_log(ctx, *v);
  check_listeners(ctx, root);
  check_tx_queues(ctx);
}

LoadResult finish(Diagnostics& diag, Config&& config) {
  LoadResult r;
  r.diagnostics = diag.sorted();
  if (!diag.has_errors()) r.config = std::move(config);
  return r;
}

}  // namespace

LoadResult load_string(std::string_view text, const std::string& name, const LoadOptions& options) {
  Diagnostics diag(name);
  Config config;
  config.source = name;
  const bool blank = std::all_of(
      text.begin(), text.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    diag.error(to_mark(e.mark), "", "not valid YAML: " + e.msg);
    return finish(diag, std::move(config));
  }
  if (blank || root.IsNull()) {
    diag.error({1, 1}, "", "the file is empty; a configuration needs at least ports and pipeline");
    return finish(diag, std::move(config));
  }
  if (!root.IsMap()) {
    diag.error(to_mark(root.Mark()), "",
               "expected a mapping of sections (eal, ports, pipeline, ...) at the top level");
    return finish(diag, std::move(config));
  }
  sections::Context ctx(diag, config, options);
  load_sections(ctx, Value(root, "", to_mark(root.Mark()), diag));
  return finish(diag, std::move(config));
}

LoadResult load_file(const std::string& path, const LoadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Diagnostics diag(path);
    diag.error({}, "", std::string("cannot read the file: ") + std::strerror(errno));
    LoadResult r;
    r.diagnostics = diag.sorted();
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return load_string(ss.str(), path, options);
}

}  // namespace segx::config
