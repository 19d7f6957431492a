#pragma once
// Helpers for tests that run segx as a separate process: a private temporary directory,
// a subprocess with captured output and a deadline, pcap files, and removal of the DPDK
// runtime files a run leaves behind. Every test gets its own directory and file prefix,
// so tests run side by side.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace segx::test {

/// A temporary directory removed, with its contents, when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// A file prefix no other test or run uses: "segx-t-<pid>-<tag>".
std::string unique_prefix(const std::string& tag);

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
/// Prefer letting the program under test bind port 0 and report what it got.
uint16_t free_tcp_port();

/// Removes the runtime directory DPDK made for a file prefix (/var/run/dpdk/<prefix>, or
/// under $XDG_RUNTIME_DIR for non-root users).
void remove_dpdk_runtime(const std::string& prefix);

/// A child process with stdout and stderr captured to files in a directory.
class Process {
 public:
  /// Starts argv[0] with the arguments; output goes to dir/<name>.out and .err.
  Process(const std::vector<std::string>& argv, const std::filesystem::path& dir,
          const std::string& name);
  /// Kills the child (SIGKILL) if it is still running.
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  /// Waits for exit; returns the exit code, 128+signal if killed, nullopt on timeout.
  std::optional<int> wait(std::chrono::seconds timeout);
  /// Sends a signal.
  void signal(int sig);
  /// Waits until stdout (or stderr) contains text; false on timeout or if the child exited
  /// without printing it.
  bool wait_for_output(const std::string& text, std::chrono::seconds timeout, bool stderr = false);
  std::string out() const;
  std::string err() const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
  std::filesystem::path out_path_, err_path_;
};

/// Runs a command to completion (with a deadline) and returns its exit code.
int run(const std::vector<std::string>& argv, const std::filesystem::path& dir,
        const std::string& name, std::chrono::seconds timeout = std::chrono::seconds(120));

/// A network namespace `ns` holding one end of a veth pair (`inside`) whose other end
/// (`outside`) stays in this namespace; both ends up, IPv6 off on both (its router and
/// multicast chatter would mix with a test's packets). Needs root. The namespace and the
/// pair go when the object does, even when a step failed. Command output goes to `dir`.
class VethNamespace {
 public:
  VethNamespace(std::string ns, std::string outside, std::string inside, std::filesystem::path dir);
  ~VethNamespace();
  VethNamespace(const VethNamespace&) = delete;
  VethNamespace& operator=(const VethNamespace&) = delete;

  /// Empty when every step went through; otherwise the command that failed and its stderr.
  const std::string& error() const { return error_; }

 private:
  void step(const std::vector<std::string>& argv);

  std::string ns_, outside_, inside_, error_;
  std::filesystem::path dir_;
};

/// One packet of a capture with its timestamp (seconds since the Unix epoch).
struct PcapRecord {
  double time = 0;
  std::vector<uint8_t> data;  ///< the bytes captured (a prefix of the frame if it was snapped)
  uint32_t length = 0;        ///< the frame's length on the wire
};

/// The packets of a pcap file (Ethernet link type; micro- or nanosecond format) with their
/// timestamps. Throws std::runtime_error when the file is not a readable pcap.
std::vector<PcapRecord> read_pcap_records(const std::filesystem::path& file);

/// The packets of a pcap file, without timestamps.
std::vector<std::vector<uint8_t>> read_pcap(const std::filesystem::path& file);

/// Empty when both lists hold the same packets in the same order; otherwise what differs:
/// the counts, and the first differing packet's index and bytes in hex.
std::string packet_difference(const std::vector<std::vector<uint8_t>>& got,
                              const std::vector<std::vector<uint8_t>>& expected);

/// True when `part` appears in `whole` in the same order (a subsequence); `used` (sized like
/// `whole`) marks the places taken, so that several parts must split `whole` between them.
bool in_order_within(const std::vector<std::vector<uint8_t>>& part,
                     const std::vector<std::vector<uint8_t>>& whole, std::vector<bool>& used);

/// Reads a whole file.
std::string read_file(const std::filesystem::path& file);
/// Writes a whole file.
void write_file(const std::filesystem::path& file, const std::string& text);

/// The source tree (SEGX_SOURCE_ROOT) and the segx binary (SEGX_BIN), set by meson.
std::filesystem::path source_root();
std::filesystem::path segx_binary();

}  // namespace segx::test
