#include "support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace segx::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "segx-test-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string unique_prefix(const std::string& tag) {
  // segx takes names of at most 63 characters; the pid keeps a shortened tag unique.
  return "segx-t-" + std::to_string(getpid()) + "-" + tag.substr(0, 40);
}

uint16_t free_tcp_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("cannot bind a free port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

void remove_dpdk_runtime(const std::string& prefix) {
  std::error_code ec;
  if (geteuid() == 0) {
    fs::remove_all(fs::path("/var/run/dpdk") / prefix, ec);
  } else if (const char* xdg = std::getenv("XDG_RUNTIME_DIR")) {
    fs::remove_all(fs::path(xdg) / "dpdk" / prefix, ec);
  } else {
    fs::remove_all(fs::path("/tmp/dpdk") / prefix, ec);
  }
}

Process::Process(const std::vector<std::string>& argv, const fs::path& dir, const std::string& name)
    : out_path_(dir / (name + ".out")), err_path_(dir / (name + ".err")) {
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0) _exit(126);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    execv(args[0], args.data());
    _exit(127);
  }
}

Process::~Process() {
  if (pid_ > 0 && !exited_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
  }
}

std::optional<int> Process::wait(std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!exited_) {
    const pid_t r = waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (WIFEXITED(status_)) return WEXITSTATUS(status_);
  return 128 + WTERMSIG(status_);
}

void Process::signal(int sig) {
  if (!exited_) kill(pid_, sig);
}

bool Process::wait_for_output(const std::string& text, std::chrono::seconds timeout, bool stderr) {
  const auto printed = [&] { return (stderr ? err() : out()).find(text) != std::string::npos; };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (printed()) return true;
    if (!exited_ && waitpid(pid_, &status_, WNOHANG) == pid_) exited_ = true;
    if (exited_) return printed();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::string Process::out() const {
  return read_file(out_path_);
}
std::string Process::err() const {
  return read_file(err_path_);
}

int run(const std::vector<std::string>& argv, const fs::path& dir, const std::string& name,
        std::chrono::seconds timeout) {
  Process p(argv, dir, name);
  auto rc = p.wait(timeout);
  return rc ? *rc : -1;
}

namespace {

uint32_t get32(const uint8_t* p, bool swap) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return swap ? __builtin_bswap32(v) : v;
}

}  // namespace

std::vector<PcapRecord> read_pcap_records(const fs::path& file) {
  const std::string data = read_file(file);
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  if (data.size() < 24) throw std::runtime_error(file.string() + ": too short for a pcap");
  uint32_t magic;
  std::memcpy(&magic, p, 4);
  bool swap, nano;
  if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) {
    swap = false;
    nano = magic == 0xa1b23c4d;
  } else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) {
    swap = true;
    nano = magic == 0x4d3cb2a1;
  } else {
    throw std::runtime_error(file.string() + ": not a pcap file");
  }
  if (get32(p + 20, swap) != 1) throw std::runtime_error(file.string() + ": not Ethernet");
  std::vector<PcapRecord> packets;
  size_t off = 24;
  while (off < data.size()) {
    if (off + 16 > data.size()) throw std::runtime_error(file.string() + ": truncated record");
    const double fraction = get32(p + off + 4, swap) / (nano ? 1e9 : 1e6);
    const uint32_t caplen = get32(p + off + 8, swap);
    PcapRecord r;
    r.time = get32(p + off, swap) + fraction;
    r.length = get32(p + off + 12, swap);
    off += 16;
    if (off + caplen > data.size()) throw std::runtime_error(file.string() + ": truncated packet");
    r.data.assign(p + off, p + off + caplen);
    packets.push_back(std::move(r));
    off += caplen;
  }
  return packets;
}

std::vector<std::vector<uint8_t>> read_pcap(const fs::path& file) {
  std::vector<std::vector<uint8_t>> out;
  for (auto& r : read_pcap_records(file))
    out.push_back(std::move(r.data));
  return out;
}

namespace {

std::string hex(const std::vector<uint8_t>& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < 64; ++i) {
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 15];
  }
  if (bytes.size() > 64) out += "...";
  return out;
}

}  // namespace

std::string packet_difference(const std::vector<std::vector<uint8_t>>& got,
                              const std::vector<std::vector<uint8_t>>& expected) {
  std::string out;
  if (got.size() != expected.size()) {
    out = "got " + std::to_string(got.size()) + " packets, expected " +
          std::to_string(expected.size()) + "\n";
  }
  for (size_t i = 0; i < got.size() && i < expected.size(); ++i) {
    if (got[i] != expected[i]) {
      out += "packet " + std::to_string(i) + " differs (" + std::to_string(got[i].size()) + " vs " +
             std::to_string(expected[i].size()) + " bytes)\n  got      " + hex(got[i]) +
             "\n  expected " + hex(expected[i]) + "\n";
      break;
    }
  }
  return out;
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

fs::path source_root() {
  const char* s = std::getenv("SEGX_SOURCE_ROOT");
  if (s == nullptr)
    throw std::runtime_error("SEGX_SOURCE_ROOT is not set (run through meson test)");
  return s;
}

fs::path segx_binary() {
  const char* s = std::getenv("SEGX_BIN");
  if (s == nullptr) throw std::runtime_error("SEGX_BIN is not set (run through meson test)");
  return s;
}

VethNamespace::VethNamespace(std::string ns, std::string outside, std::string inside,
                             std::filesystem::path dir)
    : ns_(std::move(ns)),
      outside_(std::move(outside)),
      inside_(std::move(inside)),
      dir_(std::move(dir)) {
  const std::vector<std::string> here, there{"/usr/sbin/ip", "netns", "exec", ns_};
  step({"/usr/sbin/ip", "netns", "add", ns_});
  step({"/usr/sbin/ip", "link", "add", outside_, "type", "veth", "peer", "name", inside_, "netns",
        ns_});
  for (const auto& [pre, dev] : {std::pair{here, outside_}, std::pair{there, inside_}}) {
    auto sysctl = pre;
    sysctl.insert(sysctl.end(),
                  {"/usr/sbin/sysctl", "-qw", "net.ipv6.conf." + dev + ".disable_ipv6=1"});
    step(sysctl);
    auto up = pre;
    up.insert(up.end(), {"/usr/sbin/ip", "link", "set", dev, "up"});
    step(up);
  }
}

VethNamespace::~VethNamespace() {
  // Deleting the namespace deletes the end inside it, and with it the pair.
  run({"/usr/sbin/ip", "netns", "del", ns_}, dir_, "veth-cleanup");
  run({"/usr/sbin/ip", "link", "del", outside_}, dir_, "veth-cleanup");
}

void VethNamespace::step(const std::vector<std::string>& argv) {
  if (!error_.empty()) return;
  if (run(argv, dir_, "veth") == 0) return;
  for (const auto& a : argv)
    error_ += a + " ";
  error_ += "failed: " + read_file(dir_ / "veth.err");
}

bool in_order_within(const std::vector<std::vector<uint8_t>>& part,
                     const std::vector<std::vector<uint8_t>>& whole, std::vector<bool>& used) {
  size_t at = 0;
  for (const auto& pkt : part) {
    while (at < whole.size() && (used[at] || whole[at] != pkt))
      ++at;
    if (at == whole.size()) return false;
    used[at++] = true;
  }
  return true;
}

}  // namespace segx::test
