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
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
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

// ---- reload while packets flow ---------------------------------------------------------

// A port over two rte_rings (DPDK's net_ring PMD): the test puts frames on its rx ring at
// the pace it chooses and takes what segx sent from its tx ring.
struct RingPort {
  std::string name;
  std::string device;  ///< the ethdev's name, for the configuration
  rte_ring* rx = nullptr;
  rte_ring* tx = nullptr;
  uint16_t port = 0;
  RingPort(const std::string& n) : name(n) {
    rx = rte_ring_create((n + "_rx").c_str(), 65536, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    tx = rte_ring_create((n + "_tx").c_str(), 65536, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (rx && tx) {
      const int id = rte_eth_from_rings(n.c_str(), &rx, 1, &tx, 1, 0);
      char dev[RTE_ETH_NAME_MAX_LEN] = {};
      if (id >= 0 && rte_eth_dev_get_name_by_port(static_cast<uint16_t>(id), dev) == 0) {
        port = static_cast<uint16_t>(id);
        device = dev;
      }
      if (device.empty()) name.clear();
    }
  }
  ~RingPort() {
    uint16_t id = 0;
    if (!device.empty() && rte_eth_dev_get_port_by_name(device.c_str(), &id) == 0)
      rte_eth_dev_close(id);
    rte_mbuf* m = nullptr;
    while (rx && rte_ring_dequeue(rx, reinterpret_cast<void**>(&m)) == 0)
      rte_pktmbuf_free(m);
    while (tx && rte_ring_dequeue(tx, reinterpret_cast<void**>(&m)) == 0)
      rte_pktmbuf_free(m);
    rte_ring_free(rx);
    rte_ring_free(tx);
  }
};

// web changes between the two (segment rule and chain), voice stays as it is, stun comes
// and goes at the end of the list, and a subscriber is added.
std::string reload_profiles(bool b) {
  std::string s = "providers:\n  offers: [count, pass]\nprofiles:\n";
  if (!b) {
    s += "  - name: web\n    match: {protocol: tcp, dst_port: [80, 443, 8080]}\n"
         "    segment: {packets: 8, time: 1h, idle: 1h}\n    services: [count]\n"
         "    output: out\n";
  } else {
    s += "  - name: web\n    match: {protocol: tcp, dst_port: [80, 443, 8080]}\n"
         "    segment: {packets: 4, time: 1h, idle: 1h}\n    services: [pass]\n"
         "    output: out\n";
  }
  s += "  - name: voice\n    match: {protocol: udp, dst_port: \"5060-5061\"}\n"
       "    segment: {packets: 5, time: 1h, idle: 1h}\n    services: [count, pass]\n"
       "    output: out\n";
  if (b) {
    s += "  - name: stun\n    match: {protocol: udp, dst_port: 3478}\n"
         "    segment: {packets: 3, time: 1h, idle: 1h}\n    services: [count]\n"
         "    output: out\n"
         "subscribers:\n  - id: alice\n    devices: [{id: phone, ip: 10.1.0.0/16}]\n";
  }
  return s;
}

std::unique_ptr<config::Config> load_reload_config(const RingPort& in, const RingPort& out,
                                                   const fs::path& records, bool b,
                                                   const std::string& pipeline = one_lcore) {
  const std::string text =
      configuration(in.device, out.device, pipeline, reload_profiles(b), records);
  auto loaded = config::load_string(text, "reload.yaml", dataplane::load_options());
  if (!loaded.config) {
    for (const auto& d : loaded.diagnostics)
      ADD_FAILURE() << d.path << ": " << d.message;
    return nullptr;
  }
  return std::make_unique<config::Config>(*loaded.config);
}

// 20 reloads while a capture goes through `pipeline`: every packet out in order, web's
// segments closed at each boundary (reason reload) and covering its packets exactly, voice's
// untouched, counters running on, every mbuf back.
void reload_under_traffic(const std::string& pipeline) {
  TempDir dir;
  const fs::path in = dir / "in.pcap";
  ASSERT_EQ(run({"/usr/bin/python3", (source_root() / "scripts/gen-traffic.py").string(), "--out",
                 in.string(), "--packets", "20000", "--seed", "91"},
                dir.path(), "gen"),
            0)
      << read_file(dir / "gen.err");
  const auto input = read_pcap(in);
  const fs::path records = dir / "records.jsonl";
  rte_mempool* pool = rte_pktmbuf_pool_create("reload_src", 16383, 0, 0, 9216 + 128, 0);
  ASSERT_NE(pool, nullptr);
  {
    static int runs = 0;
    const std::string k = std::to_string(++runs);
    RingPort rin("ring_in" + k), rout("ring_out" + k);
    ASSERT_FALSE(rin.name.empty() || rout.name.empty()) << "cannot make net_ring ports";
    auto a = load_reload_config(rin, rout, records, false, pipeline);
    auto b = load_reload_config(rin, rout, records, true, pipeline);
    ASSERT_TRUE(a && b);
    auto made = dataplane::Dataplane::create(*a);
    ASSERT_TRUE(made.ok()) << made.error();
    auto dp = std::move(made).value();
    std::vector<std::string> links;
    ASSERT_TRUE(dp->start(links).ok());
    EXPECT_EQ(dp->generation(), 1u);

    std::vector<std::vector<uint8_t>> out;
    const auto drain = [&] {
      rte_mbuf* got[256];
      unsigned n;
      while ((n = rte_ring_dequeue_burst(rout.tx, reinterpret_cast<void**>(got), 256, nullptr)) >
             0) {
        for (unsigned i = 0; i < n; ++i) {
          std::vector<uint8_t> bytes(rte_pktmbuf_pkt_len(got[i]));
          const void* d =
              rte_pktmbuf_read(got[i], 0, static_cast<uint32_t>(bytes.size()), bytes.data());
          if (d != bytes.data()) std::memcpy(bytes.data(), d, bytes.size());
          out.push_back(std::move(bytes));
        }
        rte_pktmbuf_free_bulk(got, n);
      }
    };
    // 20 reloads spread over the capture, alternating b and a; between them the packets go in
    // bursts of 32 while the control loop polls, as segx's main lcore does.
    const size_t step = input.size() / 21;
    int reloads = 0;
    for (size_t next = 0; next < input.size();) {
      const size_t n = std::min<size_t>(32, input.size() - next);
      rte_mbuf* burst[32];
      ASSERT_EQ(rte_pktmbuf_alloc_bulk(pool, burst, static_cast<unsigned>(n)), 0);
      for (size_t i = 0; i < n; ++i) {
        const auto& f = input[next + i];
        char* data = rte_pktmbuf_append(burst[i], static_cast<uint16_t>(f.size()));
        ASSERT_NE(data, nullptr);
        std::memcpy(data, f.data(), f.size());
      }
      while (rte_ring_enqueue_bulk(rin.rx, reinterpret_cast<void**>(burst),
                                   static_cast<unsigned>(n), nullptr) == 0) {
        drain();
        dp->poll(0, 0);
      }
      next += n;
      drain();
      dp->poll(0, 0);
      if (reloads < 20 && next >= step * static_cast<size_t>(reloads + 1)) {
        auto r = dp->reload(reloads % 2 == 0 ? *b : *a);
        ASSERT_TRUE(r.ok()) << "reload " << reloads + 1 << ": " << r.error();
        const auto& ch = r.value();
        EXPECT_EQ(ch.generation, static_cast<uint64_t>(reloads + 2));
        EXPECT_EQ(ch.profiles_changed, std::vector<std::string>{"web"});
        EXPECT_EQ(reloads % 2 == 0 ? ch.profiles_added : ch.profiles_removed,
                  std::vector<std::string>{"stun"});
        EXPECT_TRUE(ch.subscribers);
        ++reloads;
      }
      std::this_thread::sleep_for(20us);
    }
    ASSERT_EQ(reloads, 20);
    EXPECT_EQ(dp->generation(), 21u);
    const auto begin = std::chrono::steady_clock::now();
    while (out.size() < input.size() && std::chrono::steady_clock::now() - begin < 60s) {
      drain();
      dp->poll(0, 0);
      std::this_thread::sleep_for(200us);
    }
    const dataplane::Report report = dp->stop();
    drain();

    // Every packet out, in arrival order (one lcore, run to completion), none dropped.
    EXPECT_EQ(report.received, input.size());
    EXPECT_EQ(packet_difference(out, input), "");
    for (const auto& [reason, n] : report.drops)
      EXPECT_EQ(n, 0u) << "drop reason " << reason;
    EXPECT_EQ(report.mempool_in_use, 0u);
    EXPECT_EQ(report.segments_in_use, 0u);

    // Profile totals run on across versions: web's packets are all web packets.
    uint64_t web_packets = 0, web_segments = 0;
    for (const auto& p : report.profiles) {
      if (p.name == "web") {
        web_packets = p.packets;
        web_segments = p.segments;
      }
    }

    // Records: a web flow's segments cover its packets exactly, each no longer than the rule
    // of the version that made it (a's chain counts, b's does not); reload closes only web's;
    // voice, unchanged, never closes for a reload.
    const auto recs = read_jsonl(records);
    std::map<std::string, std::vector<nlohmann::json>> web;
    size_t reload_closes = 0, a_records = 0, b_records = 0, voice_records = 0;
    for (const auto& r : recs) {
      const std::string profile = r["profile"];
      if (profile == "voice") {
        ++voice_records;
        EXPECT_NE(r["close"], "reload") << r.dump();
        EXPECT_LE(r["packets"].get<uint64_t>(), 5u);
      }
      if (profile != "web") continue;
      if (r["close"] == "reload") ++reload_closes;
      const bool by_a = r["services"].contains("count");
      (by_a ? a_records : b_records) += 1;
      EXPECT_LE(r["packets"].get<uint64_t>(), by_a ? 8u : 4u) << r.dump();
      if (by_a) {
        EXPECT_EQ(r["services"]["count"]["packets"], r["packets"]) << r.dump();
      }
      web[r["flow"].dump()].push_back(r);
    }
    EXPECT_GT(reload_closes, 0u);
    EXPECT_GT(a_records, 0u);
    EXPECT_GT(b_records, 0u);
    EXPECT_GT(voice_records, 0u);
    uint64_t covered = 0;
    for (auto& [flow, rs] : web) {
      std::sort(rs.begin(), rs.end(), [](const auto& x, const auto& y) {
        return x["first_seq"].template get<uint64_t>() < y["first_seq"].template get<uint64_t>();
      });
      uint64_t seq = rs.front()["first_seq"];
      EXPECT_EQ(seq, 0u) << flow;
      for (const auto& r : rs) {
        EXPECT_EQ(r["first_seq"].get<uint64_t>(), seq) << flow << ": a gap or an overlap";
        seq += r["packets"].get<uint64_t>();
        covered += r["packets"].get<uint64_t>();
      }
    }
    EXPECT_EQ(covered, web_packets) << "every web packet in exactly one segment";
    size_t web_records = 0;
    for (const auto& [flow, rs] : web)
      web_records += rs.size();
    EXPECT_EQ(web_segments, web_records) << "web's segment count runs on across versions";
  }
  EXPECT_EQ(rte_mempool_in_use_count(pool), 0u) << "mbufs the test gave segx came back";
  rte_mempool_free(pool);
}

TEST(Reload, TwentyReloadsWhilePacketsFlowRunToCompletion) {
  reload_under_traffic(one_lcore);
}

TEST(Reload, TwentyReloadsWhilePacketsFlowThroughRingsAndReorder) {
  reload_under_traffic(split);
}

TEST(Reload, ARefusedReloadChangesNothing) {
  TempDir dir;
  const fs::path records = dir / "records.jsonl";
  RingPort rin("refused_in"), rout("refused_out");
  ASSERT_FALSE(rin.name.empty() || rout.name.empty());
  auto loaded = load_reload_config(rin, rout, records, false);
  ASSERT_TRUE(loaded);
  auto made = dataplane::Dataplane::create(*loaded);
  ASSERT_TRUE(made.ok()) << made.error();
  auto dp = std::move(made).value();
  std::vector<std::string> links;
  ASSERT_TRUE(dp->start(links).ok());
  // A metered profile needs metering's tables, made at start only when some profile is
  // metered: refused, with the reason, and nothing changes.
  config::Config next = *loaded;
  next.profiles[0].metered = true;
  next.profiles[0].segment.packets = 2;
  auto r = dp->reload(next);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("restart segx"), std::string::npos) << r.error();
  EXPECT_EQ(dp->generation(), 1u);
  EXPECT_EQ(dp->internals().live_slots, (std::vector<uint32_t>{0, 1}));
  // The same file again changes nothing and takes no generation.
  auto same = dp->reload(*loaded);
  ASSERT_TRUE(same.ok()) << same.error();
  EXPECT_TRUE(same.value().empty());
  EXPECT_EQ(dp->generation(), 1u);
  dp->stop();
}
}  // namespace
}  // namespace segx::test
