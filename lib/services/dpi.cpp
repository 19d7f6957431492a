// dpi: multi-pattern payload scanning with Hyperscan. The patterns of a chain entry are
// compiled once, into one streaming-mode database shared by every worker; each worker has
// its own scratch and a pool of stream states opened at start. A segment scans its packets'
// payloads through one stream, so a pattern split across packets of the segment matches.
// Each pattern's action applies to the packet in which its match ends: tag (reported only),
// drop (that packet and the segment's later ones), or mirror (a copy to the mirror port).

#include <hs.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "dataplane/service.hpp"
#include "options.hpp"
#include "payload.hpp"
#include "services_internal.hpp"

namespace segx::services {
namespace {

enum class Action : uint8_t { tag, drop, mirror };

struct Pattern {
  std::string id;
  std::string regex;
  unsigned flags = 0;
  Action action = Action::tag;
};

struct Options {
  std::vector<Pattern> patterns;
  int mirror = -1;  // configured port index
  uint32_t streams = 4096;
};

constexpr uint32_t max_patterns = 65535;  // pattern index fits the state's 16-bit slots

const std::map<std::string, unsigned, std::less<>>& flag_names() {
  static const std::map<std::string, unsigned, std::less<>> names{
      {"caseless", HS_FLAG_CASELESS},   {"dotall", HS_FLAG_DOTALL},
      {"multiline", HS_FLAG_MULTILINE}, {"singlematch", HS_FLAG_SINGLEMATCH},
      {"utf8", HS_FLAG_UTF8},           {"ucp", HS_FLAG_UCP},
  };
  return names;
}

// Compiles one pattern alone, for an error message that names it; empty when it compiles.
std::string compile_error(const std::string& regex, unsigned flags) {
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_compile(regex.c_str(), flags, HS_MODE_STREAM, nullptr, &db, &err) == HS_SUCCESS) {
    hs_free_database(db);
    return {};
  }
  std::string message = err && err->message ? err->message : "does not compile";
  hs_free_compile_error(err);
  return message;
}

Options read(config::MapReader& m, const config::Config& c) {
  Options o;
  m.read("streams", o.streams, 1, 1 << 20);
  bool wants_mirror = false;
  std::optional<config::Value> mirror_v = m.get("mirror");
  auto patterns = m.require("patterns");
  if (!patterns) return o;
  std::set<std::string> ids;
  const auto items = patterns->list();
  if (patterns->is_list() && items.empty()) patterns->error("at least one pattern is needed");
  if (items.size() > max_patterns) patterns->error("at most 65535 patterns");
  for (const config::Value& item : items) {
    config::MapReader pm(item);
    if (!pm.valid()) continue;
    Pattern p;
    pm.read_name("id", p.id, true);
    auto regex_v = pm.require("regex");
    if (regex_v) {
      if (auto r = regex_v->as_string()) p.regex = *r;
      if (regex_v->is_scalar() && p.regex.empty())
        regex_v->error("an empty pattern matches anything");
    }
    if (auto flags = pm.get("flags")) {
      for (const config::Value& f : flags->list(/*allow_scalar=*/true)) {
        std::vector<std::string_view> choices;
        for (const auto& [name, bit] : flag_names())
          choices.push_back(name);
        if (auto name = f.as_choice(choices)) p.flags |= flag_names().find(*name)->second;
      }
    }
    std::string action = "tag";
    pm.read_choice("action", action, {"tag", "drop", "mirror"});
    p.action = action == "tag" ? Action::tag : action == "drop" ? Action::drop : Action::mirror;
    wants_mirror = wants_mirror || p.action == Action::mirror;
    if (!p.id.empty() && !ids.insert(p.id).second)
      pm.value().error("pattern id '" + p.id + "' is used twice");
    if (regex_v && !p.regex.empty()) {
      const std::string error = compile_error(p.regex, p.flags);
      if (!error.empty()) regex_v->error("Hyperscan cannot compile /" + p.regex + "/: " + error);
    }
    o.patterns.push_back(std::move(p));
  }
  if (mirror_v) {
    if (auto name = mirror_v->as_name()) o.mirror = output_port(*mirror_v, *name, c);
  } else if (wants_mirror) {
    m.value().error("a pattern has action 'mirror' but no mirror port is given (mirror: PORT)");
  }
  return o;
}

// The compiled patterns of one chain entry, shared by its instances on every worker.
struct Database {
  hs_database_t* db = nullptr;     // streaming mode
  hs_database_t* block = nullptr;  // block mode, for segments that found no free stream
  std::vector<Action> actions;
  std::vector<std::string> ids;
  ~Database() {
    hs_free_database(db);
    hs_free_database(block);
  }
};

Result<std::shared_ptr<const Database>> compile(const Options& o, const std::string& key) {
  // Compiled once per distinct entry: later workers find it here.
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<const Database>> cache;
  std::lock_guard lock(mutex);
  if (auto found = cache[key].lock()) return found;
  auto d = std::make_shared<Database>();
  std::vector<const char*> expressions;
  std::vector<unsigned> flags, ids;
  for (size_t i = 0; i < o.patterns.size(); ++i) {
    expressions.push_back(o.patterns[i].regex.c_str());
    flags.push_back(o.patterns[i].flags);
    ids.push_back(static_cast<unsigned>(i));
    d->actions.push_back(o.patterns[i].action);
    d->ids.push_back(o.patterns[i].id);
  }
  for (auto [mode, db] : {std::pair{HS_MODE_STREAM, &d->db}, {HS_MODE_BLOCK, &d->block}}) {
    hs_compile_error_t* err = nullptr;
    if (hs_compile_multi(expressions.data(), flags.data(), ids.data(),
                         static_cast<unsigned>(expressions.size()), static_cast<unsigned>(mode),
                         nullptr, db, &err) != HS_SUCCESS) {
      std::string message = err && err->message ? err->message : "cannot compile the patterns";
      hs_free_compile_error(err);
      return Error{"dpi: " + message};
    }
  }
  cache[key] = d;
  return std::shared_ptr<const Database>(d);
}

class Dpi final : public dataplane::Service {
 public:
  // Matches kept per segment, by pattern; more distinct patterns are counted, not listed.
  static constexpr unsigned kept = 8;

  struct State {
    hs_stream_t* stream;  // null: the pool was empty, packets are scanned one by one
    uint32_t matches;
    uint32_t dropped;
    uint32_t mirrored;
    uint16_t pattern[kept];
    uint16_t count[kept];
    uint8_t distinct;
    bool dropping;  // a drop pattern matched: the segment's later packets go too
    bool overflow;  // more distinct patterns matched than kept
    bool unstreamed;
  };

  Dpi(std::shared_ptr<const Database> db, int mirror) : db_(std::move(db)), mirror_(mirror) {}
  ~Dpi() override {
    for (hs_stream_t* s : free_)
      hs_close_stream(s, nullptr, nullptr, nullptr);
    hs_free_scratch(scratch_);
  }

  Status start(uint32_t streams) {
    if (hs_alloc_scratch(db_->db, &scratch_) != HS_SUCCESS ||
        hs_alloc_scratch(db_->block, &scratch_) != HS_SUCCESS)
      return Error{"dpi: cannot allocate Hyperscan scratch space"};
    free_.reserve(streams);
    for (uint32_t i = 0; i < streams; ++i) {
      hs_stream_t* s = nullptr;
      if (hs_open_stream(db_->db, 0, &s) != HS_SUCCESS)
        return Error{"dpi: cannot open " + std::to_string(streams) + " Hyperscan streams"};
      free_.push_back(s);
    }
    return {};
  }

  uint32_t state_size() const override { return sizeof(State); }
  int mirror_port() const override { return mirror_; }

  void open(const dataplane::Segment&, void* state) override {
    auto& s = *static_cast<State*>(state);
    s = State{};
    if (!free_.empty()) {
      s.stream = free_.back();
      free_.pop_back();  // no reallocation: capacity was reserved at start
    } else {
      s.unstreamed = true;
    }
  }

  void process(const dataplane::Segment&, void* state, rte_mbuf* const* pkts, uint16_t n,
               uint8_t* verdict) override {
    auto& s = *static_cast<State*>(state);
    Context ctx{this, &s, nullptr};
    for (uint16_t i = 0; i < n; ++i) {
      if (s.dropping) {
        verdict[i] |= dataplane::verdict_drop;
        ++s.dropped;
        continue;
      }
      ctx.verdict = &verdict[i];
      const uint8_t before = verdict[i];
      for_each_chunk(pkts[i], payload_range(pkts[i]), [&](const uint8_t* p, uint32_t len) {
        if (s.stream) {
          hs_scan_stream(s.stream, reinterpret_cast<const char*>(p), len, 0, scratch_, on_match,
                         &ctx);
        } else {
          hs_scan(db_->block, reinterpret_cast<const char*>(p), len, 0, scratch_, on_match, &ctx);
        }
      });
      if (!(before & dataplane::verdict_drop) && (verdict[i] & dataplane::verdict_drop))
        ++s.dropped;
      if (!(before & dataplane::verdict_mirror) && (verdict[i] & dataplane::verdict_mirror))
        ++s.mirrored;
    }
  }

  void close(const dataplane::Segment&, void* state, dataplane::ResultWriter& out) override {
    auto& s = *static_cast<State*>(state);
    if (s.stream) {
      // Resetting reports matches that end only at the end of data ($) and readies the
      // stream for the next segment.
      uint8_t ignored = 0;
      Context ctx{this, &s, &ignored};
      hs_reset_stream(s.stream, 0, scratch_, on_match, &ctx);
      free_.push_back(s.stream);
      s.stream = nullptr;
    }
    out.begin("dpi");
    out.field("matches", uint64_t{s.matches});
    out.begin_object("patterns");
    for (unsigned i = 0; i < s.distinct; ++i)
      out.field(db_->ids[s.pattern[i]], uint64_t{s.count[i]});
    out.end_object();
    if (s.overflow) out.flag("more_patterns", true);
    out.field("dropped", uint64_t{s.dropped});
    out.field("mirrored", uint64_t{s.mirrored});
    out.flag("streamed", !s.unstreamed);
    out.end();
  }

 private:
  struct Context {
    Dpi* self;
    State* state;
    uint8_t* verdict;  // of the packet being scanned
  };

  static int on_match(unsigned id, unsigned long long, unsigned long long, unsigned, void* arg) {
    auto& ctx = *static_cast<Context*>(arg);
    State& s = *ctx.state;
    ++s.matches;
    unsigned i = 0;
    while (i < s.distinct && s.pattern[i] != id)
      ++i;
    if (i < s.distinct) {
      if (s.count[i] < UINT16_MAX) ++s.count[i];
    } else if (s.distinct < kept) {
      s.pattern[s.distinct] = static_cast<uint16_t>(id);
      s.count[s.distinct++] = 1;
    } else {
      s.overflow = true;
    }
    switch (ctx.self->db_->actions[id]) {
      case Action::tag:
        break;
      case Action::drop:
        *ctx.verdict |= dataplane::verdict_drop;
        s.dropping = true;
        break;
      case Action::mirror:
        *ctx.verdict |= dataplane::verdict_mirror;
        break;
    }
    return 0;  // keep scanning: every match is counted
  }

  std::shared_ptr<const Database> db_;
  int mirror_;
  hs_scratch_t* scratch_ = nullptr;
  std::vector<hs_stream_t*> free_;
};

}  // namespace

dataplane::ServiceFactory dpi_factory() {
  return {[](const config::ServiceConfig&, const config::Value& entry, const config::Config& c) {
            validate_entry(entry, c, read);
          },
          [](const config::ServiceConfig& s,
             const config::Config& c) -> Result<std::unique_ptr<dataplane::Service>> {
            auto o = read_options(s, c, read);
            if (!o) return Error{o.error()};
            auto db = compile(o.value(), YAML::Dump(s.options));
            if (!db) return Error{db.error()};
            auto dpi = std::make_unique<Dpi>(db.value(), o.value().mirror);
            if (Status st = dpi->start(o.value().streams); !st) return Error{st.error()};
            return std::unique_ptr<dataplane::Service>(std::move(dpi));
          }};
}

}  // namespace segx::services
