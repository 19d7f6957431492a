// Bad input must give errors with a position, never a crash: thousands of corruptions of a
// valid file (bytes replaced, lines dropped or repeated, text cut short), from a fixed
// seed so a failure is reproducible.

#include <gtest/gtest.h>

#include <random>

#include "config/loader.hpp"

namespace segx::config {
namespace {

const std::string valid = R"(eal:
  lcores: "0-1"
  vdevs: [net_pcap0, "net_pcap1,tx_pcap=out.pcap"]
ports:
  - {name: in, device: net_pcap0}
  - {name: out, device: net_pcap1, rx_queues: 0, mtu: 9000}
pipeline:
  lcores:
    - lcore: 1
      roles: [rx, worker, tx]
  mempool: {size: 8191, cache: 128}
  default: {action: forward, output: out}
profiles:
  - name: web
    match: {protocol: [tcp], dst_port: [80, "8000-8080"], src: 10.0.0.0/8}
    segment: {packets: 32, time: 100ms}
    services: [count, {name: pass}]
    output: out
subscribers:
  - id: alice
    devices: [{id: phone, ip: 10.1.0.5, phone: "+15551230005", vlan: 100}]
market:
  api: {listen: "127.0.0.1:8080", tokens: [{principal: a, role: admin, sha256: )" +
                          std::string(64, 'a') + R"(}]}
)";

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return lines;
}

std::string mutate(const std::string& text, std::mt19937& rng) {
  static const std::string alphabet = "{}[]:,-#&*!|>'\"%@`\t \n0123456789abcxyz.:/";
  std::string out = text;
  switch (rng() % 4) {
    case 0:  // replace a few bytes
      for (int i = 0, n = 1 + static_cast<int>(rng() % 4); i < n; ++i) {
        out[rng() % out.size()] = alphabet[rng() % alphabet.size()];
      }
      return out;
    case 1: {  // drop a line
      auto lines = split_lines(text);
      lines.erase(lines.begin() + static_cast<long>(rng() % lines.size()));
      out.clear();
      for (const auto& l : lines)
        out += l + "\n";
      return out;
    }
    case 2: {  // repeat a line
      auto lines = split_lines(text);
      const size_t i = rng() % lines.size();
      lines.insert(lines.begin() + static_cast<long>(i), lines[i]);
      out.clear();
      for (const auto& l : lines)
        out += l + "\n";
      return out;
    }
    default:  // cut short
      return text.substr(0, rng() % text.size());
  }
}

TEST(Robustness, TheBaseFileIsValid) {
  auto r = load_string(valid, "base.yaml");
  ASSERT_TRUE(r.ok()) << (r.diagnostics.empty() ? "" : format(r.diagnostics[0]));
}

TEST(Robustness, CorruptedFilesGiveErrorsWithPositionsAndNeverCrash) {
  std::mt19937 rng(20261126);
  int rejected = 0;
  for (int i = 0; i < 5000; ++i) {
    const std::string text = mutate(valid, rng);
    auto r = load_string(text, "fuzz.yaml");
    if (r.ok()) continue;
    ++rejected;
    bool has_error = false;
    for (const auto& d : r.diagnostics) {
      has_error = has_error || d.severity == Diagnostic::Severity::error;
      ASSERT_GE(d.mark.line, 1) << "no position for: " << format(d) << "\nin:\n" << text;
      ASSERT_FALSE(d.message.empty()) << text;
    }
    ASSERT_TRUE(has_error) << "rejected without an error:\n" << text;
  }
  // Most corruptions must be noticed; the ones that pass are harmless (a comment, a value
  // replaced by another valid one).
  EXPECT_GT(rejected, 2500);
}

}  // namespace
}  // namespace segx::config
