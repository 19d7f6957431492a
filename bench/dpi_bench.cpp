// Hyperscan's own scan rate over the payloads segx's dpi service scans: the baseline of the
// dpi target in docs/performance.md. Reads a capture, takes each frame's L4 payload exactly
// as the service does (the same parser, the same range), compiles the same patterns with the
// same flags (none: the service's default), and scans every payload on one core, in block
// mode (hs_scan, the baseline) and in stream mode the way the service uses streams (one
// stream per segment of N packets, reset at the segment's end). Prints figures and writes
// them as JSON; it never passes or fails on speed.
//
//   dpi_bench --pcap FILE --patterns FILE [--seconds S] [--cpu N] [--segment N] [--json FILE]
//
// The patterns file holds one pattern per line (scripts/bench.sh writes it, and writes the
// same lines into the dpi service's configuration).

#include <hs.h>
#include <sched.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataplane/packet.hpp"

using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string pcap;
  std::string patterns;
  double seconds = 5;
  int cpu = 1;
  unsigned segment = 64;  // packets per stream (the benchmark profile's segment.packets)
  std::string json;
};

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "dpi_bench: %s\n", message.c_str());
  std::exit(1);
}

// Frames laid out like mbuf data (a 128-byte headroom in a 2,176-byte buffer each), so the
// scans touch memory the way the service's do; payloads are ranges of them.
struct Capture {
  static constexpr size_t stride = 2176;
  static constexpr size_t headroom = 128;
  std::vector<uint8_t> buffers;
  std::vector<const char*> data;  // payload start, per frame with a payload
  std::vector<unsigned> length;
  size_t frames = 0;
  uint64_t payload_bytes = 0;  // one pass
};

uint32_t read_u32(const uint8_t* p, bool swap) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return swap ? __builtin_bswap32(v) : v;
}

Capture read_capture(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open " + path);
  std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)), {});
  if (file.size() < 24) fail(path + ": not a pcap file");
  const uint32_t magic = read_u32(file.data(), false);
  bool swap = false;
  if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) {
    swap = false;
  } else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) {
    swap = true;
  } else {
    fail(path + ": not a pcap file");
  }
  // First pass: frame offsets, so the buffers are allocated once.
  std::vector<std::pair<size_t, uint32_t>> frames;
  for (size_t off = 24; off + 16 <= file.size();) {
    const uint32_t caplen = read_u32(&file[off + 8], swap);
    if (off + 16 + caplen > file.size()) break;
    frames.emplace_back(off + 16, caplen);
    off += 16 + caplen;
  }
  Capture c;
  c.frames = frames.size();
  c.buffers.assign(frames.size() * Capture::stride, 0);
  for (size_t i = 0; i < frames.size(); ++i) {
    const auto [off, caplen] = frames[i];
    if (caplen > Capture::stride - Capture::headroom) fail(path + ": a frame is too long");
    uint8_t* frame = &c.buffers[i * Capture::stride + Capture::headroom];
    std::memcpy(frame, &file[off], caplen);
    // As payload_range() in lib/services/payload.hpp: headers parsed from the first
    // parse_window bytes, the L4 payload without Ethernet padding; nothing for a frame
    // without one.
    segx::dataplane::PacketInfo info;
    const uint32_t window =
        caplen < segx::dataplane::parse_window ? caplen : segx::dataplane::parse_window;
    if (segx::dataplane::parse_frame(frame, window, caplen, info, {}) !=
            segx::dataplane::ParseError::none ||
        info.l4_payload_offset == 0 || info.l4_payload_len == 0)
      continue;
    c.data.push_back(reinterpret_cast<const char*>(frame + info.l4_payload_offset));
    c.length.push_back(info.l4_payload_len);
    c.payload_bytes += info.l4_payload_len;
  }
  if (c.data.empty()) fail(path + ": no frame with an L4 payload");
  return c;
}

std::vector<std::string> read_patterns(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot open " + path);
  std::vector<std::string> patterns;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) patterns.push_back(line);
  }
  if (patterns.empty()) fail(path + ": no pattern");
  return patterns;
}

hs_database_t* compile(const std::vector<std::string>& patterns, unsigned mode) {
  std::vector<const char*> expressions;
  std::vector<unsigned> flags, ids;
  for (size_t i = 0; i < patterns.size(); ++i) {
    expressions.push_back(patterns[i].c_str());
    flags.push_back(0);  // the dpi service's flags when a pattern names none
    ids.push_back(static_cast<unsigned>(i));
  }
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_compile_multi(expressions.data(), flags.data(), ids.data(),
                       static_cast<unsigned>(expressions.size()), mode, nullptr, &db,
                       &err) != HS_SUCCESS) {
    const std::string message = err && err->message ? err->message : "cannot compile";
    hs_free_compile_error(err);
    fail(message);
  }
  return db;
}

int on_match(unsigned, unsigned long long, unsigned long long, unsigned, void* ctx) {
  ++*static_cast<uint64_t*>(ctx);
  return 0;
}

struct Rate {
  double seconds = 0;
  uint64_t packets = 0;  // frames of the capture passed over (with or without a payload)
  uint64_t bytes = 0;    // payload bytes scanned
  uint64_t matches = 0;
  double mpps() const { return seconds > 0 ? static_cast<double>(packets) / seconds / 1e6 : 0; }
  double gbps() const { return seconds > 0 ? static_cast<double>(bytes) * 8 / seconds / 1e9 : 0; }
};

// Whole passes over the capture until `seconds` have gone by.
template <class Pass>
Rate run(const Capture& c, double seconds, Pass&& pass) {
  Rate r;
  pass();  // warm-up: caches, scratch
  const auto start = Clock::now();
  do {
    r.matches += pass();
    r.packets += c.frames;
    r.bytes += c.payload_bytes;
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  } while (r.seconds < seconds);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) fail(a + " needs a value");
      return argv[++i];
    };
    if (a == "--pcap") {
      o.pcap = next();
    } else if (a == "--patterns") {
      o.patterns = next();
    } else if (a == "--seconds") {
      o.seconds = std::atof(next().c_str());
    } else if (a == "--cpu") {
      o.cpu = std::atoi(next().c_str());
    } else if (a == "--segment") {
      o.segment = static_cast<unsigned>(std::atoi(next().c_str()));
    } else if (a == "--json") {
      o.json = next();
    } else {
      std::fprintf(stderr,
                   "usage: dpi_bench --pcap FILE --patterns FILE [--seconds S] [--cpu N] "
                   "[--segment N] [--json FILE]\n");
      return 2;
    }
  }
  if (o.pcap.empty() || o.patterns.empty() || o.segment == 0) fail("--pcap and --patterns needed");
  if (o.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(o.cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
      fail("cannot pin to CPU " + std::to_string(o.cpu));
  }

  const Capture c = read_capture(o.pcap);
  const std::vector<std::string> patterns = read_patterns(o.patterns);
  hs_database_t* block = compile(patterns, HS_MODE_BLOCK);
  hs_database_t* stream_db = compile(patterns, HS_MODE_STREAM);
  hs_scratch_t* scratch = nullptr;
  if (hs_alloc_scratch(block, &scratch) != HS_SUCCESS ||
      hs_alloc_scratch(stream_db, &scratch) != HS_SUCCESS)
    fail("cannot allocate scratch");
  hs_stream_t* stream = nullptr;
  if (hs_open_stream(stream_db, 0, &stream) != HS_SUCCESS) fail("cannot open a stream");

  const Rate b = run(c, o.seconds, [&] {
    uint64_t matches = 0;
    for (size_t i = 0; i < c.data.size(); ++i)
      hs_scan(block, c.data[i], c.length[i], 0, scratch, on_match, &matches);
    return matches;
  });
  // As the service: payloads through one stream per segment, reset when the segment closes.
  const Rate s = run(c, o.seconds, [&] {
    uint64_t matches = 0;
    for (size_t i = 0; i < c.data.size(); ++i) {
      hs_scan_stream(stream, c.data[i], c.length[i], 0, scratch, on_match, &matches);
      if ((i + 1) % o.segment == 0) hs_reset_stream(stream, 0, scratch, on_match, &matches);
    }
    hs_reset_stream(stream, 0, scratch, on_match, &matches);
    return matches;
  });
  hs_close_stream(stream, scratch, nullptr, nullptr);
  hs_free_scratch(scratch);
  hs_free_database(block);
  hs_free_database(stream_db);

  const double mean_payload = static_cast<double>(c.payload_bytes) / static_cast<double>(c.frames);
  std::printf("dpi_bench: %zu frames, %.0f payload bytes each on average, %zu patterns, CPU %d\n",
              c.frames, mean_payload, patterns.size(), o.cpu);
  std::printf("%-34s %8.3f Mpps %8.2f Gbit/s  %lu matches\n", "hyperscan block (hs_scan)", b.mpps(),
              b.gbps(), b.matches);
  std::printf("%-34s %8.3f Mpps %8.2f Gbit/s  %lu matches\n",
              ("hyperscan stream (" + std::to_string(o.segment) + " per stream)").c_str(), s.mpps(),
              s.gbps(), s.matches);
  if (!o.json.empty()) {
    const nlohmann::json j = {
        {"frames", c.frames},
        {"patterns", patterns.size()},
        {"mean_payload_bytes", mean_payload},
        {"block", {{"mpps", b.mpps()}, {"gbps", b.gbps()}, {"matches", b.matches}}},
        {"stream",
         {{"mpps", s.mpps()}, {"gbps", s.gbps()}, {"matches", s.matches}, {"segment", o.segment}}}};
    std::ofstream(o.json) << j.dump(2) << "\n";
  }
  return 0;
}
