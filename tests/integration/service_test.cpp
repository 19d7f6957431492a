// segx under a service manager (docs/operations.md, "The service"): the sd_notify messages
// systemd's Type=notify waits for, SIGHUP (systemctl reload: RELOADING=1, then READY=1) that
// must not end segx, and the log on stderr with its levels and, under the journal, its
// priorities.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "segx_run.hpp"
#include "support.hpp"

namespace segx::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

// The receiving end of $NOTIFY_SOCKET, as systemd holds it: a Unix datagram socket.
class NotifySocket {
 public:
  explicit NotifySocket(const fs::path& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
  }
  ~NotifySocket() { close(fd_); }
  // The next message, or "" when none came in time.
  std::string receive(std::chrono::seconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count() * 1000)) != 1) return "";
    char buf[4096];
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

 private:
  fs::path path_;
  int fd_ = -1;
};

// Sets an environment variable for the processes started while it lives.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

class Service : public SegxRun {
 protected:
  fs::path config(const std::string& extra = "") {
    generate(200, 5);
    const auto path = pcap_config("    action: forward\n    output: out\n");
    if (!extra.empty()) write_file(path, read_file(path) + extra);
    return path;
  }
};

TEST_F(Service, ReadyAfterStartSighupKeepsRunningStoppingAtShutdown) {
  const auto cfg = config();
  NotifySocket notify(dir_ / "notify.sock");
  std::unique_ptr<Process> p;
  {
    ScopedEnv env("NOTIFY_SOCKET", (dir_ / "notify.sock").string());
    p = std::make_unique<Process>(segx(cfg, {"--duration", "600"}), dir_.path(), "segx");
  }
  const std::string ready = notify.receive(120s);
  ASSERT_THAT(ready, HasSubstr("READY=1")) << p->out() << p->err();
  EXPECT_THAT(ready, HasSubstr("STATUS=running with " + cfg.string()));
  // READY comes once the lcores run and the endpoints are served: the banner is out.
  EXPECT_THAT(p->err(), HasSubstr("running with"));
  EXPECT_THAT(p->err(), HasSubstr("  metrics: http://"));

  // systemctl reload: RELOADING=1, the file read again (unchanged: nothing to apply), READY=1,
  // and segx keeps forwarding.
  p->signal(SIGHUP);
  const std::string reloading = notify.receive(60s);
  EXPECT_THAT(reloading, HasSubstr("RELOADING=1")) << p->err();
  EXPECT_THAT(reloading, HasSubstr("MONOTONIC_USEC="));
  EXPECT_THAT(notify.receive(60s), HasSubstr("READY=1")) << p->err();
  ASSERT_TRUE(p->wait_for_output("SIGHUP: configuration reloaded (generation 1): nothing changed",
                                 60s, /*stderr=*/true))
      << p->err();
  EXPECT_EQ(p->wait(1s), std::nullopt) << "SIGHUP ended segx\n" << p->err();
  // A refused reload (a broken file) tells systemd the same, and segx runs on.
  const std::string good = read_file(cfg);
  write_file(cfg, good + "pipeline: [\n");
  p->signal(SIGHUP);
  EXPECT_THAT(notify.receive(60s), HasSubstr("RELOADING=1"));
  EXPECT_THAT(notify.receive(60s), HasSubstr("READY=1"));
  ASSERT_TRUE(p->wait_for_output("SIGHUP: reload refused", 60s, /*stderr=*/true)) << p->err();
  EXPECT_EQ(p->wait(1s), std::nullopt) << "SIGHUP ended segx\n" << p->err();
  write_file(cfg, good);

  p->signal(SIGTERM);
  EXPECT_THAT(notify.receive(60s), HasSubstr("STOPPING=1"));
  ASSERT_EQ(p->wait(120s), 0) << p->out() << p->err();
  EXPECT_EQ(report()["received"], 200);
  EXPECT_EQ(report()["transmitted"], 200);
}

TEST_F(Service, LogLevelFromTheFileAndTheCommandLine) {
  // log.level notice: lifecycle lines, not the start-up details (info).
  const auto cfg = config("log:\n  level: notice\n");
  {
    Process p(segx(cfg, {"--max-packets", "200", "--duration", "600"}), dir_.path(), "notice");
    ASSERT_EQ(p.wait(300s), 0) << p.out() << p.err();
    EXPECT_THAT(p.err(), HasSubstr("running with"));
    EXPECT_THAT(p.err(), HasSubstr("stopping (200 packets received)"));
    EXPECT_THAT(p.err(), Not(HasSubstr("  metrics: ")));
    // The report is the command's output, on stdout, whatever the level.
    EXPECT_THAT(p.out(), HasSubstr("packets: 200 received, 200 transmitted, 0 dropped"));
  }
  // --log-level overrides the file: debug adds the EAL command line.
  {
    Process p(segx(cfg, {"--max-packets", "200", "--duration", "600", "--log-level", "debug"}),
              dir_.path(), "debug");
    ASSERT_EQ(p.wait(300s), 0) << p.out() << p.err();
    EXPECT_THAT(p.err(), HasSubstr("segx: EAL arguments:"));
    EXPECT_THAT(p.err(), HasSubstr("--file-prefix " + prefix_));
    EXPECT_THAT(p.err(), HasSubstr("  metrics: "));
  }
  // error: a clean run logs nothing at all.
  {
    Process p(segx(cfg, {"--max-packets", "200", "--duration", "600", "-l", "error"}), dir_.path(),
              "error");
    ASSERT_EQ(p.wait(300s), 0) << p.out() << p.err();
    EXPECT_THAT(p.err(), Not(HasSubstr("segx: ")));
    EXPECT_THAT(p.err(), Not(HasSubstr("running with")));
  }
  Process bad(segx(cfg, {"--log-level", "verbose"}), dir_.path(), "bad");
  EXPECT_EQ(bad.wait(60s), 2);
  EXPECT_THAT(bad.err(), HasSubstr("--log-level wants error, warning, notice, info or debug, "
                                   "got 'verbose'"));
}

TEST_F(Service, UnknownLogLevelInTheFileIsAConfigurationError) {
  const auto cfg = config("log:\n  level: loud\n");
  Process p(segx(cfg, {}), dir_.path(), "segx");
  EXPECT_EQ(p.wait(60s), 1);
  EXPECT_THAT(p.err(), HasSubstr("log.level: expected one of"));
}

TEST_F(Service, UnderTheJournalEachLineCarriesItsPriority) {
  const auto cfg = config();
  // systemd names the stream it connected stderr to; segx prefixes "<N>" only then.
  write_file(dir_ / "journal.err", "");
  struct stat st {};
  ASSERT_EQ(stat((dir_ / "journal.err").c_str(), &st), 0);
  std::unique_ptr<Process> p;
  {
    ScopedEnv env("JOURNAL_STREAM", std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino));
    p = std::make_unique<Process>(segx(cfg, {"--max-packets", "200", "--duration", "600"}),
                                  dir_.path(), "journal");
  }
  ASSERT_EQ(p->wait(300s), 0) << p->out() << p->err();
  EXPECT_THAT(p->err(), HasSubstr("<5>segx 0.1.0: running with"));
  EXPECT_THAT(p->err(), HasSubstr("<6>  metrics: http://"));
  EXPECT_THAT(p->err(), HasSubstr("<5>segx: stopping (200 packets received)"));
  // Another stream (a terminal, a file): no prefixes.
  Process plain(segx(cfg, {"--max-packets", "200", "--duration", "600"}), dir_.path(), "plain");
  ASSERT_EQ(plain.wait(300s), 0) << plain.out() << plain.err();
  EXPECT_THAT(plain.err(), HasSubstr("\nsegx: stopping (200 packets received)"));
  EXPECT_THAT(plain.err(), Not(HasSubstr("<5>")));
}

}  // namespace
}  // namespace segx::test
