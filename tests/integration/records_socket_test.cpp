// Segment records to a collector on a Unix socket (results.socket): the collector gets the
// same lines, in the same order, as the results file beside it; and a segx whose collector
// is absent drops and counts its records, but forwards every packet.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "segx_run.hpp"
#include "support.hpp"

namespace segx::test {
namespace {

using namespace std::chrono_literals;

class RecordsSocket : public SegxRun {
 protected:
  fs::path config(bool with_file) {
    const fs::path cfg = pcap_config("    action: forward\n    output: out\n");
    std::string text = read_file(cfg);
    text += "profiles:\n  - name: all\n    segment: {packets: 16}\n    output: out\nresults:\n";
    if (with_file) text += "  file: " + (dir_ / "records.jsonl").string() + "\n";
    text += "  socket: " + (dir_ / "records.sock").string() + "\n";
    write_file(cfg, text);
    return cfg;
  }
};

TEST_F(RecordsSocket, TheCollectorGetsWhatTheFileGets) {
  generate(2000, 31);
  const fs::path cfg = config(true);
  // The collector: listen, take one connection, read until segx closes it.
  const int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = (dir_ / "records.sock").string();
  ASSERT_LT(path.size(), sizeof addr.sun_path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  std::string received;
  std::thread collector([&] {
    const int fd = accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
      received.append(buf, static_cast<size_t>(n));
    close(fd);
  });

  Process p(segx(cfg, {"--max-packets", "2000", "--duration", "600"}), dir_.path(), "segx");
  const auto rc = p.wait(300s);
  if (!rc) shutdown(listener, SHUT_RDWR);
  collector.join();
  close(listener);
  ASSERT_EQ(rc, 0) << p.out() << p.err();

  const std::string file = read_file(dir_ / "records.jsonl");
  ASSERT_FALSE(file.empty());
  EXPECT_EQ(received, file);
  auto r = report();
  const uint64_t lines = static_cast<uint64_t>(std::count(file.begin(), file.end(), '\n'));
  EXPECT_EQ(r["records"], lines);
  EXPECT_EQ(r["records_socket"]["sent"], lines);
  EXPECT_EQ(r["records_socket"]["dropped"], 0);
  EXPECT_EQ(read_pcap(dir_ / "out.pcap").size(), 2000u);
}

TEST_F(RecordsSocket, WithoutACollectorRecordsAreCountedAsDroppedAndPacketsStillFlow) {
  generate(2000, 32);
  const fs::path cfg = config(false);
  Process p(segx(cfg, {"--max-packets", "2000", "--duration", "600"}), dir_.path(), "segx");
  ASSERT_EQ(p.wait(300s), 0) << p.out() << p.err();
  auto r = report();
  EXPECT_GT(r["records"].get<uint64_t>(), 0u);
  EXPECT_EQ(r["records_socket"]["sent"], 0);
  EXPECT_EQ(r["records_socket"]["dropped"], r["records"]);
  EXPECT_EQ(read_pcap(dir_ / "out.pcap").size(), 2000u);
  EXPECT_EQ(r["mempool"]["in_use"], 0);
}

}  // namespace
}  // namespace segx::test
