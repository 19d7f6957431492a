// The data plane in-process: EAL starts once (lcores 0, 1 and 2 on CPU 1), and each run
// makes its own net_pcap devices (rte_eal_hotplug_add), creates a Dataplane, lets it take a
// capture, stops it and reads what came out. Runs cost milliseconds, so a property can be
// checked over every setting:
// - every pipeline.burst from 1 to 256 (above rte_hash_lookup_bulk's 64 keys too) forwards a
//   capture of many interleaved flows whole and in order, with exactly the segment records
//   of the rules (the independent oracle of docs/dataplane.md), on one lcore and with the
//   roles split over two;
// - with bursts of 1 to 4 packets, a scan that closes hundreds of segments at once (their
//   idle limit passed together) loses no close event and no packet;
// - run to completion (one lcore, no rings) and the ring path (roles split) give the same
//   outputs and the same segment records for the same captures;
// - what each lcore writes while it runs sits on cache lines of its own, on its socket.

#include <gtest/gtest.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_memory.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "config/loader.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/dataplane_impl.hpp"
#include "dataplane/service.hpp"
#include "support.hpp"

namespace segx::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class PipelineEal : public ::testing::Environment {
 public:
  void SetUp() override {
    prefix_ = unique_prefix("pipeline");
    std::vector<std::string> args{
        "pipeline-test", "--lcores", "0,1,2@1",       "--no-huge", "-m",
        "1024",          "--no-pci", "--file-prefix", prefix_,     "--log-level=error"};
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    ASSERT_GE(rte_eal_init(static_cast<int>(argv.size()), argv.data()), 0) << "EAL did not start";
  }
  void TearDown() override {
    rte_eal_cleanup();
    remove_dpdk_runtime(prefix_);
  }

 private:
  std::string prefix_;
};
::testing::Environment* const eal = ::testing::AddGlobalTestEnvironment(new PipelineEal);

// Profiles the oracle can predict (time and idle never expire in a run).
const std::string oracle_profiles = R"(providers:
  offers: [count, pass]
profiles:
  - name: web
    match: {protocol: tcp, dst_port: [80, 443, 8080]}
    segment: {packets: 8, bytes: 6000, time: 1h, idle: 1h}
    services: [count]
    output: out
  - name: voice
    match: {protocol: udp, dst_port: "5060-5061"}
    segment: {packets: 5, time: 1h, idle: 1h}
    services: [count, pass]
    output: out
)";

// One lcore holding every role, or the roles split over lcores 1 and 2 (both on CPU 1).
const std::string one_lcore = "  lcores: [{lcore: 1, roles: [rx, worker, tx]}]\n";
const std::string split = "  lcores: [{lcore: 1, roles: [rx, worker]}, {lcore: 2, roles: [tx]}]\n";

struct Outcome {
  dataplane::Report report;
  std::vector<std::vector<uint8_t>> out;
  std::vector<nlohmann::json> records;
  std::string error;  ///< empty when the run went through
};

std::string configuration(const std::string& in_device, const std::string& out_device,
                          const std::string& pipeline, const std::string& profiles,
                          const fs::path& records) {
  // The devices are made by the test (hotplug); eal.vdevs names them for the checks only.
  return "eal:\n  lcores: [0, 1, \"2@1\"]\n  memory: 1GiB\n  file_prefix: unused\n"
         "  vdevs: [" +
         in_device + ", " + out_device +
         "]\n"
         "metrics: {enabled: false}\nmarket: {enabled: false}\n"
         "ports:\n  - {name: in, device: " +
         in_device + "}\n  - {name: out, device: " + out_device +
         ", rx_queues: 0}\n"
         "pipeline:\n" +
         pipeline +
         "  ring_size: 16384\n  segment_pool: 4096\n"
         "  mempool: {size: 8191, cache: 64}\n"
         "  flow_table: {size: 4096, idle_timeout: 1h}\n"
         "  default: {action: forward, output: out}\n" +
         profiles + "results: {file: " + records.string() + "}\n";
}

// Every line of a JSON-lines file.
std::vector<nlohmann::json> read_jsonl(const fs::path& file) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(file));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

// A Dataplane made from a configuration text, with its two net_pcap devices; the devices go
// when it does.
class PipelineRun {
 public:
  PipelineRun(const fs::path& dir, const std::string& pipeline, const std::string& profiles,
              const fs::path& input) {
    static int runs = 0;
    const int k = ++runs;
    in_ = "net_pcap_i" + std::to_string(k);
    out_ = "net_pcap_o" + std::to_string(k);
    out_file_ = dir / ("out-" + std::to_string(k) + ".pcap");
    records_ = dir / ("records-" + std::to_string(k) + ".jsonl");
    if (rte_eal_hotplug_add("vdev", in_.c_str(), ("rx_pcap=" + input.string()).c_str()) != 0) {
      error_ = "cannot create " + in_;
      return;
    }
    if (rte_eal_hotplug_add("vdev", out_.c_str(), ("tx_pcap=" + out_file_.string()).c_str()) != 0) {
      error_ = "cannot create " + out_;
      return;
    }
    const std::string text = configuration(in_, out_, pipeline, profiles, records_);
    auto loaded = config::load_string(text, "pipeline.yaml", dataplane::load_options());
    if (!loaded.config) {
      error_ = "configuration refused:\n" + text;
      for (const auto& d : loaded.diagnostics)
        error_ += "\n" + d.path + ": " + d.message;
      return;
    }
    auto dp = dataplane::Dataplane::create(*loaded.config);
    if (!dp) {
      error_ = dp.error();
      return;
    }
    dp_ = std::move(dp).value();
    std::vector<std::string> links;
    if (Status s = dp_->start(links); !s) error_ = s.error();
  }
  ~PipelineRun() {
    dp_.reset();
    rte_eal_hotplug_remove("vdev", in_.c_str());
    if (!out_removed_) rte_eal_hotplug_remove("vdev", out_.c_str());
  }
  PipelineRun(const PipelineRun&) = delete;
  PipelineRun& operator=(const PipelineRun&) = delete;

  const std::string& error() const { return error_; }
  dataplane::Dataplane& dataplane() { return *dp_; }

  // Polls as the control loop does until `done` holds (or a minute passes).
  template <class Done>
  bool poll_until(Done done) {
    const auto begin = std::chrono::steady_clock::now();
    while (!done()) {
      if (std::chrono::steady_clock::now() - begin > 60s) return false;
      dp_->poll(0, 0);
      std::this_thread::sleep_for(200us);
    }
    return true;
  }

  // Stops, closes the devices (net_pcap writes its capture at close) and reads the outputs.
  Outcome finish() {
    Outcome o;
    o.error = error_;
    if (!dp_) return o;
    o.report = dp_->stop();
    dp_.reset();
    rte_eal_hotplug_remove("vdev", out_.c_str());
    out_removed_ = true;
    o.out = read_pcap(out_file_);
    o.records = read_jsonl(records_);
    return o;
  }

 private:
  std::string in_, out_, error_;
  bool out_removed_ = false;
  fs::path out_file_, records_;
  std::unique_ptr<dataplane::Dataplane> dp_;
};

// Runs the capture through a pipeline and returns what came out.
Outcome run_capture(const fs::path& dir, const std::string& pipeline, const std::string& profiles,
                    const fs::path& input, uint64_t packets) {
  PipelineRun run(dir, pipeline, profiles, input);
  if (!run.error().empty()) return Outcome{{}, {}, {}, run.error()};
  if (!run.poll_until([&] { return run.dataplane().received() >= packets; })) {
    Outcome o = run.finish();
    o.error = "not every packet was received within a minute";
    return o;
  }
  return run.finish();
}

// The comparable part of a record: what the rules decide (not ids or times).
std::string record_key(const nlohmann::json& r) {
  return r["profile"].get<std::string>() + " " + r["flow"].dump() +
         " first_seq=" + std::to_string(r["first_seq"].get<uint64_t>()) +
         " packets=" + std::to_string(r["packets"].get<uint64_t>()) +
         " bytes=" + std::to_string(r["bytes"].get<uint64_t>()) +
         " close=" + r["close"].get<std::string>();
}

// A capture, what the oracle says must come of it, and the checks of one run against that.
class Capture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    const fs::path in = *dir_ / "in.pcap";
    ASSERT_EQ(run({"/usr/bin/python3", (source_root() / "scripts/gen-traffic.py").string(), "--out",
                   in.string(), "--packets", "700", "--seed", "61"},
                  dir_->path(), "gen"),
              0)
        << read_file(*dir_ / "gen.err");
    write_file(*dir_ / "oracle.yaml",
               configuration("net_pcap0", "net_pcap1", one_lcore, oracle_profiles, "unused"));
    ASSERT_EQ(
        run({"/usr/bin/python3", (source_root() / "tests/integration/segment_oracle.py").string(),
             "--config", (*dir_ / "oracle.yaml").string(), "--pcap", in.string(), "--port", "in",
             "--out", (*dir_ / "expected.json").string()},
            dir_->path(), "oracle"),
        0)
        << read_file(*dir_ / "oracle.err");
    input_ = new std::vector<std::vector<uint8_t>>(read_pcap(in));
    expected_ = new nlohmann::json(nlohmann::json::parse(read_file(*dir_ / "expected.json")));
  }
  static void TearDownTestSuite() {
    delete expected_;
    delete input_;
    delete dir_;
  }

  // An empty string when the run sent every packet in input order and wrote exactly the
  // oracle's records; otherwise what was wrong.
  static std::string check(const Outcome& o) {
    if (!o.error.empty()) return o.error;
    std::vector<std::vector<uint8_t>> want;
    for (const auto& index : (*expected_)["outputs"]["out"])
      want.push_back((*input_)[index.get<size_t>()]);
    if (std::string d = packet_difference(o.out, want); !d.empty()) return "output: " + d;
    std::multiset<std::string> got, wanted;
    for (const auto& r : o.records)
      got.insert(record_key(r));
    for (const auto& r : (*expected_)["records"])
      wanted.insert(record_key(r));
    if (got != wanted) {
      std::vector<std::string> missing;
      std::set_difference(wanted.begin(), wanted.end(), got.begin(), got.end(),
                          std::back_inserter(missing));
      return std::to_string(got.size()) + " records, " + std::to_string(wanted.size()) +
             " expected; " + std::to_string(missing.size()) + " missing, e.g. " +
             (missing.empty() ? "" : missing[0]);
    }
    if (o.report.mempool_in_use != 0)
      return "mbufs leaked: " + std::to_string(o.report.mempool_in_use);
    if (o.report.segments_in_use != 0)
      return "segments leaked: " + std::to_string(o.report.segments_in_use);
    if (o.report.reorder_stranded != 0) return "packets stranded in a reorder buffer";
    return "";
  }

  static std::string burst(unsigned n) { return "  burst: " + std::to_string(n) + "\n"; }

  static inline TempDir* dir_ = nullptr;
  static inline std::vector<std::vector<uint8_t>>* input_ = nullptr;
  static inline nlohmann::json* expected_ = nullptr;
};

TEST_F(Capture, EveryBurstSizeForwardsTheCaptureAndItsRecords) {
  const size_t packets = input_->size();
  for (unsigned b = 1; b <= 256; ++b) {
    const Outcome o = run_capture(dir_->path(), one_lcore + burst(b), oracle_profiles,
                                  *dir_ / "in.pcap", packets);
    EXPECT_EQ(check(o), "") << "burst " << b;
    if (HasFailure()) break;  // one failing size says enough
  }
}

TEST_F(Capture, SplitRolesForwardTheCaptureAtBurstSizesAroundTheLimits) {
  // rx and worker on lcore 1, tx on lcore 2: the rings, sequence numbers and reorder buffer.
  const size_t packets = input_->size();
  for (unsigned b : {1u, 2u, 3u, 31u, 32u, 63u, 64u, 65u, 128u, 129u, 255u, 256u}) {
    const Outcome o =
        run_capture(dir_->path(), split + burst(b), oracle_profiles, *dir_ / "in.pcap", packets);
    EXPECT_EQ(check(o), "") << "burst " << b;
    if (HasFailure()) break;
  }
}

// A record without what depends on timing (durations).
nlohmann::json timeless(nlohmann::json r) {
  r.erase("duration_ns");
  for (auto& [name, service] : r["services"].items()) {
    if (service.is_object()) service.erase("duration_ns");
  }
  return r;
}

TEST(Paths, RunToCompletionAndRingsGiveTheSameOutputsAndRecords) {
  // One lcore holding every role runs to completion (no rings, numbers or reorder buffer);
  // with tx on another lcore, the same work goes through the rings and rte_reorder. The
  // same captures (many flows, fragments, GTP-U, malformed frames) must give the same
  // output capture byte for byte and the same segment records, ids and service results
  // included.
  TempDir dir;
  for (int seed : {81, 82, 83}) {
    const fs::path in = dir / ("in-" + std::to_string(seed) + ".pcap");
    ASSERT_EQ(run({"/usr/bin/python3", (source_root() / "scripts/gen-traffic.py").string(), "--out",
                   in.string(), "--packets", "3000", "--seed", std::to_string(seed), "--fragments",
                   "--gtpu", "--malformed", "40"},
                  dir.path(), "gen"),
              0)
        << read_file(dir / "gen.err");
    const size_t packets = read_pcap(in).size();
    const Outcome rtc = run_capture(dir.path(), one_lcore, oracle_profiles, in, packets);
    const Outcome rings = run_capture(dir.path(), split, oracle_profiles, in, packets);
    ASSERT_EQ(rtc.error, "");
    ASSERT_EQ(rings.error, "");
    EXPECT_TRUE(rtc.report.rings.empty()) << "one lcore with every role runs to completion";
    EXPECT_EQ(rings.report.rings.size(), 2u) << "rx>w and w>tx";
    EXPECT_GT(rtc.out.size(), packets / 2);
    EXPECT_EQ(packet_difference(rtc.out, rings.out), "") << "seed " << seed;
    ASSERT_EQ(rtc.records.size(), rings.records.size()) << "seed " << seed;
    for (size_t i = 0; i < rtc.records.size(); ++i) {
      ASSERT_EQ(timeless(rtc.records[i]), timeless(rings.records[i]))
          << "seed " << seed << ", record " << i;
    }
    EXPECT_EQ(rtc.report.drops, rings.report.drops);
    EXPECT_EQ(rtc.report.events, rings.report.events);
    EXPECT_EQ(rtc.report.transmitted, rings.report.transmitted);
    for (const Outcome* o : {&rtc, &rings}) {
      EXPECT_EQ(o->report.mempool_in_use, 0u);
      EXPECT_EQ(o->report.segments_in_use, 0u);
    }
  }
}

// A capture of `flows` UDP flows of one packet each, all sent within microseconds.
void write_one_packet_flows(const fs::path& file, unsigned flows) {
  std::string pcap;
  const auto put = [&](const void* p, size_t n) { pcap.append(static_cast<const char*>(p), n); };
  const uint32_t header[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};
  put(header, sizeof header);
  for (unsigned i = 0; i < flows; ++i) {
    uint8_t f[60] = {};
    const uint8_t head[] = {0x02, 0, 0, 0,  0,   2, 0x02, 0, 0,  0,  0, 1, 0x08, 0x00,  // Ethernet
                            0x45, 0, 0, 46, 0,   0, 0,    0, 64, 17, 0, 0,              // IPv4
                            10,   2, 0, 1,  192, 0, 2,    1};
    std::memcpy(f, head, sizeof head);
    f[34] = static_cast<uint8_t>((20000 + i) >> 8);  // UDP source port: one flow each
    f[35] = static_cast<uint8_t>(20000 + i);
    f[36] = 0x13;  // destination port 5000
    f[37] = 0x88;
    f[39] = 26;  // UDP length: 8 + 18
    const uint32_t record[4] = {1700000000u, i, sizeof f, sizeof f};
    put(record, sizeof record);
    put(f, sizeof f);
  }
  write_file(file, pcap);
}

TEST(Scan, ManySegmentsClosingAtOnceLoseNothingWithSmallBursts) {
  // Two workers (lcore 2 only works), so a close event staged past the end of one worker's
  // slice would land in the other's. The segments' idle limit passes for all of them at
  // once, after the capture is in: the scan closes them together.
  TempDir dir;
  constexpr unsigned flows = 300;
  write_one_packet_flows(dir / "in.pcap", flows);
  const std::string profiles = R"(providers:
  offers: [count]
profiles:
  - name: all
    segment: {packets: 0, time: 1h, idle: 20ms}
    services: [count]
    output: out
)";
  for (unsigned b = 1; b <= 4; ++b) {
    const std::string pipeline =
        "  lcores: [{lcore: 1, roles: [rx, worker, tx]}, "
        "{lcore: 2, roles: [worker]}]\n" +
        std::string("  burst: ") + std::to_string(b) + "\n";
    PipelineRun run(dir.path(), pipeline, profiles, dir / "in.pcap");
    ASSERT_EQ(run.error(), "");
    std::shared_ptr<const dataplane::Stats> stats;
    const auto closed = [&] {
      stats = run.dataplane().stats(0ms);
      uint64_t n = 0;
      for (const auto& p : stats->profiles)
        n += p.segments;
      return n;
    };
    ASSERT_TRUE(run.poll_until([&] { return closed() >= flows; }))
        << "burst " << b << ": " << closed() << " of " << flows << " segments closed";
    const Outcome o = run.finish();
    EXPECT_EQ(o.report.received, flows);
    EXPECT_EQ(o.out.size(), flows) << "burst " << b;
    ASSERT_EQ(o.records.size(), flows) << "burst " << b;
    std::set<uint64_t> ports;
    for (const auto& r : o.records) {
      EXPECT_EQ(r["close"], "idle") << r.dump();
      EXPECT_EQ(r["packets"], 1) << r.dump();
      ports.insert(r["flow"]["sport"].get<uint64_t>());
    }
    EXPECT_EQ(ports.size(), flows) << "burst " << b << ": every flow's segment, once";
    EXPECT_EQ(o.report.mempool_in_use, 0u);
    EXPECT_EQ(o.report.segments_in_use, 0u);
    if (HasFailure()) break;
  }
}

// The cache lines [p, p + bytes) covers.
std::pair<uintptr_t, uintptr_t> lines(const void* p, size_t bytes) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  return {a / RTE_CACHE_LINE_SIZE, (a + bytes + RTE_CACHE_LINE_SIZE - 1) / RTE_CACHE_LINE_SIZE};
}

TEST(LcoreMemory, WhatEachLcoreWritesIsOnCacheLinesOfItsOwnOnItsSocket) {
  TempDir dir;
  write_one_packet_flows(dir / "in.pcap", 4);
  const std::string pipeline =
      "  lcores: [{lcore: 1, roles: [rx, worker, tx]}, {lcore: 2, roles: [worker]}]\n";
  PipelineRun run(dir.path(), pipeline, oracle_profiles, dir / "in.pcap");
  ASSERT_EQ(run.error(), "");
  struct Block {
    unsigned lcore;
    const char* what;
    const void* p;
    size_t bytes;
  };
  std::vector<Block> blocks;
  for (const auto& plan : run.dataplane().internals().plans) {
    const auto add = [&](const char* what, const auto& array) {
      if (array.size() > 0)
        blocks.push_back(Block{plan->lcore, what, static_cast<const void*>(array.data()),
                               array.size() * sizeof(array[0])});
    };
    blocks.push_back(
        Block{plan->lcore, "plan", static_cast<const void*>(plan.get()), sizeof(*plan)});
    add("flow_state", plan->rx.flow_state);
    add("active", plan->rx.active);
    add("staging", plan->rx.staging);
    add("staged", plan->rx.staged);
    add("next_seqn", plan->rx.next_seqn);
    add("profiles", plan->counters.profiles);
    add("ring_enqueued", plan->counters.ring_enqueued);
    add("ring_dropped", plan->counters.ring_dropped);
    add("services", plan->counters.services);
    for (const auto& s : plan->counters.services)
      add("service counters", s);
    add("peers", plan->counters.peers);
    add("buckets", plan->tx.buckets);
    add("bucket_counts", plan->tx.bucket_counts);
    add("in_flight", plan->tx.in_flight);
    add("released", plan->tx.released);
  }
  ASSERT_GT(blocks.size(), 10u);
  for (const Block& b : blocks) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.p) % RTE_CACHE_LINE_SIZE, 0u)
        << "lcore " << b.lcore << " " << b.what << " does not start a cache line";
    const rte_memseg* ms = rte_mem_virt2memseg(b.p, nullptr);
    ASSERT_NE(ms, nullptr) << "lcore " << b.lcore << " " << b.what << " is not in DPDK's memory";
    EXPECT_EQ(ms->socket_id, static_cast<int>(rte_lcore_to_socket_id(b.lcore)))
        << "lcore " << b.lcore << " " << b.what;
  }
  for (const Block& a : blocks) {
    for (const Block& b : blocks) {
      if (a.lcore == b.lcore) continue;
      const auto [a0, a1] = lines(a.p, a.bytes);
      const auto [b0, b1] = lines(b.p, b.bytes);
      EXPECT_TRUE(a1 <= b0 || b1 <= a0) << "lcore " << a.lcore << " " << a.what << " and lcore "
                                        << b.lcore << " " << b.what << " share a cache line";
    }
  }
  run.finish();
}

}  // namespace
}  // namespace segx::test
