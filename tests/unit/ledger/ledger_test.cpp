// The journal: chained, durable before acknowledged, group-committed, and verify names the
// first event that was tampered with.
#include "ledger/ledger.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "ledger/sqlite_storage.hpp"
#include "support.hpp"
#include "test_journal.hpp"

namespace segx::ledger {
namespace {

TEST(Ledger, EventsAreNumberedChainedAndReadBackInOrder) {
  test::TempDir dir;
  test::TestJournal journal(dir);
  auto l = Ledger::open(journal.url());
  ASSERT_TRUE(l) << l.error();
  for (int i = 0; i < 5; ++i) {
    auto seq = l.value()->append_durable("bid", "{\"n\":" + std::to_string(i) + "}", 1000 + i);
    ASSERT_TRUE(seq) << seq.error();
    EXPECT_EQ(seq.value(), static_cast<uint64_t>(i + 1));
  }
  std::vector<Event> got;
  ASSERT_TRUE(l.value()->scan(1, [&](const Event& e) {
    got.push_back(e);
    return true;
  }));
  ASSERT_EQ(got.size(), 5u);
  Digest prev = genesis_hash;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq, i + 1);
    EXPECT_EQ(got[i].time_ns, static_cast<int64_t>(1000 + i));
    EXPECT_EQ(got[i].body, "{\"n\":" + std::to_string(i) + "}");
    EXPECT_EQ(got[i].hash, chain_hash(prev, got[i]));
    prev = got[i].hash;
  }
  const VerifyReport v = l.value()->verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.events, 5u);
  EXPECT_EQ(v.head, got.back().hash);
}

TEST(Ledger, ReopenedLedgerContinuesTheChain) {
  test::TempDir dir;
  test::TestJournal journal(dir);
  {
    auto l = Ledger::open(journal.url());
    ASSERT_TRUE(l);
    ASSERT_TRUE(l.value()->append_durable("a", "{}", 1));
    ASSERT_TRUE(l.value()->append_durable("b", "{}", 2));
  }
  auto l = Ledger::open(journal.url());
  ASSERT_TRUE(l);
  ASSERT_TRUE(l.value()->append_durable("c", "{}", 3));
  std::vector<uint64_t> seqs;
  ASSERT_TRUE(l.value()->scan(1, [&](const Event& e) {
    seqs.push_back(e.seq);
    return true;
  }));
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_TRUE(l.value()->verify().ok);
}

TEST(Ledger, TheHashCoversEveryField) {
  Event e{7, 42, "bid", "{\"price\":100}", {}, {}};
  const Digest h = chain_hash(genesis_hash, e);
  for (int field = 0; field < 4; ++field) {
    Event c = e;
    if (field == 0) c.seq = 8;
    if (field == 1) c.time_ns = 43;
    if (field == 2) c.type = "bie";
    if (field == 3) c.body = "{\"price\":101}";
    EXPECT_NE(chain_hash(genesis_hash, c), h) << "field " << field;
  }
  // Lengths are hashed, so moving bytes between type and body changes the hash.
  Event moved{7, 42, "bid{", "\"price\":100}", {}, {}};
  EXPECT_NE(chain_hash(genesis_hash, moved), h);
  Digest other{};
  other[0] = 1;
  EXPECT_NE(chain_hash(other, e), h);
}

TEST(Ledger, ConcurrentWritersShareCommits) {
  test::TempDir dir;
  test::TestJournal journal(dir);
  auto l = Ledger::open(journal.url());
  ASSERT_TRUE(l);
  constexpr int threads = 16, per_thread = 200;
  std::vector<std::thread> ts;
  std::mutex m;
  std::set<uint64_t> seqs;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        auto seq = l.value()->append_durable("bid", "{\"t\":" + std::to_string(t) + "}", i);
        ASSERT_TRUE(seq);
        std::lock_guard lock(m);
        seqs.insert(seq.value());
      }
    });
  }
  for (auto& t : ts)
    t.join();
  const LedgerStats s = l.value()->stats();
  EXPECT_EQ(seqs.size(), static_cast<size_t>(threads * per_thread));
  EXPECT_EQ(*seqs.rbegin(), static_cast<uint64_t>(threads * per_thread));
  EXPECT_EQ(s.events, static_cast<uint64_t>(threads * per_thread));
  // 16 writers waiting on fsync at once: commits carry several events each.
  EXPECT_LT(s.commits, s.events);
  EXPECT_GT(s.max_batch, 1u);
  EXPECT_TRUE(l.value()->verify().ok);
}

// A memory store whose next appends fail (a disk that fills up), as the test decides.
class FailingStorage final : public Storage {
 public:
  explicit FailingStorage(std::unique_ptr<Storage> inner) : inner_(std::move(inner)) {}
  Result<Head> head() override { return inner_->head(); }
  Status append(std::span<Event> events) override {
    if (fail_next > 0) {
      --fail_next;
      return Error{"injected: disk full", ErrorKind::internal};
    }
    return inner_->append(events);
  }
  Status scan(uint64_t from, const std::function<bool(const Event&)>& fn) override {
    return inner_->scan(from, fn);
  }
  Result<std::optional<std::string>> secret(const std::string& name) override {
    return inner_->secret(name);
  }
  Status probe() override { return {}; }
  std::string describe() const override { return "failing memory"; }
  std::atomic<int> fail_next{0};

 private:
  std::unique_ptr<Storage> inner_;
};

TEST(Ledger, WhenDurableCallsBackOnceWithTheOutcomeAndNoThreadWaits) {
  auto faulty = std::make_unique<FailingStorage>(open_storage("memory:").value());
  FailingStorage* storage = faulty.get();
  LedgerOptions lo;
  lo.timeout = std::chrono::milliseconds(0);
  auto l = Ledger::open(std::move(faulty), lo);
  ASSERT_TRUE(l);
  Ledger& ledger = *l.value();
  // 1,000 appends from one thread, each with a callback and nobody waiting: every callback
  // comes once, ok, and they share commits.
  constexpr int n = 1000;
  std::mutex m;
  std::condition_variable cv;
  std::map<uint64_t, int> calls;
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    auto t = ledger.append("bid", "{}", i);
    ASSERT_TRUE(t);
    ledger.when_durable(t.value(), [&, ticket = t.value()](Status s) {
      std::lock_guard lock(m);
      ++calls[ticket];
      ok += s.ok();
      cv.notify_all();
    });
  }
  {
    std::unique_lock lock(m);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return calls.size() == n; }));
  }
  EXPECT_EQ(ok, n);
  for (const auto& [ticket, k] : calls)
    EXPECT_EQ(k, 1) << "ticket " << ticket;
  EXPECT_LT(ledger.stats().commits, static_cast<uint64_t>(n));
  // A ticket already durable: called at once, on this thread.
  bool at_once = false;
  ledger.when_durable(1, [&](Status s) { at_once = s.ok(); });
  EXPECT_TRUE(at_once);
  // A commit that fails: its callback says so, with the cause.
  storage->fail_next = 1;
  auto t = ledger.append("bid", "{}", 0);
  ASSERT_TRUE(t);
  std::promise<Status> failed;
  ledger.when_durable(t.value(), [&](Status s) { failed.set_value(std::move(s)); });
  auto f = failed.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  const Status s = f.get();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error().find("injected: disk full"), std::string::npos) << s.error();
  // After close: called at once, unavailable.
  ledger.close();
  bool closed = false;
  ledger.when_durable(t.value() + 1, [&](Status s) { closed = !s.ok(); });
  EXPECT_TRUE(closed);
}

// Finds `needle` in the file and changes one byte of it.
void change_byte(const std::filesystem::path& file, const std::string& needle, char to) {
  std::string data = test::read_file(file);
  const size_t at = data.find(needle);
  ASSERT_NE(at, std::string::npos) << needle << " not in " << file;
  data[at + needle.size() - 1] = to;
  std::ofstream(file, std::ios::binary | std::ios::trunc) << data;
}

TEST(Ledger, AChangedEventFailsVerifyAtThatEvent) {
  test::TempDir dir;
  test::TestJournal journal(dir);
  {
    auto l = Ledger::open(journal.url());
    ASSERT_TRUE(l);
    for (int i = 1; i <= 10; ++i)
      ASSERT_TRUE(
          l.value()->append_durable("bid", "{\"price\":" + std::to_string(1000 + i) + "}", i));
    ASSERT_TRUE(l.value()->verify().ok);
  }  // closing checkpoints the WAL into the main file
  if (journal.postgres()) {
    journal.execute("UPDATE segx_events SET body = '{\"price\":1009}' WHERE seq = 7");
  } else {
    change_byte(journal.file(), "{\"price\":1007", '9');
  }
  auto storage = open_storage(journal.url(), true);
  ASSERT_TRUE(storage) << storage.error();
  const VerifyReport v = verify(*storage.value());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 7u);
  EXPECT_EQ(v.events, 6u);
  EXPECT_NE(v.reason.find("event 7 (bid)"), std::string::npos) << v.reason;
}

TEST(Ledger, ADeletedEventFailsVerify) {
  test::TempDir dir;
  test::TestJournal journal(dir);
  {
    auto l = Ledger::open(journal.url());
    ASSERT_TRUE(l);
    for (int i = 1; i <= 4; ++i)
      ASSERT_TRUE(l.value()->append_durable("bid", "{}", i));
  }
  journal.execute("DELETE FROM " + journal.table() + " WHERE seq = 3");
  auto storage = open_storage(journal.url(), true);
  ASSERT_TRUE(storage);
  const VerifyReport v = verify(*storage.value());
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.bad_seq, 3u);
  EXPECT_NE(v.reason.find("missing"), std::string::npos) << v.reason;
}

TEST(Ledger, ReadOnlyOpenOfAMissingFileFails) {
  test::TempDir dir;
  auto s = open_storage("sqlite:" + (dir / "none.db").string(), true);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().find("none.db"), std::string::npos) << s.error();
  EXPECT_FALSE(open_storage("mysql://x"));
}

// A child appends events and writes each acknowledged number to a pipe; it is killed with
// SIGKILL mid-stream. Every number it acknowledged must be in the reopened journal.
TEST(Ledger, EveryAcknowledgedEventSurvivesSigkill) {
  test::TempDir dir;
  test::TestJournal journal(dir);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    auto l = Ledger::open(journal.url());
    if (!l) _exit(3);
    std::vector<std::thread> writers;
    for (int t = 0; t < 8; ++t) {
      writers.emplace_back([&, t] {
        for (uint64_t i = 0;; ++i) {
          const uint64_t n = static_cast<uint64_t>(t) << 32 | i;
          if (!l.value()->append_durable("bid", std::to_string(n), 1)) _exit(4);
          if (write(fds[1], &n, sizeof n) != sizeof n) _exit(5);
        }
      });
    }
    for (auto& w : writers)
      w.join();
    _exit(0);
  }
  close(fds[1]);
  std::set<uint64_t> acknowledged;
  uint64_t n;
  while (acknowledged.size() < 3000 && read(fds[0], &n, sizeof n) == sizeof n)
    acknowledged.insert(n);
  kill(child, SIGKILL);
  // Acknowledgements already in the pipe count too.
  while (read(fds[0], &n, sizeof n) == sizeof n)
    acknowledged.insert(n);
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited by itself with " << WEXITSTATUS(status);
  ASSERT_GE(acknowledged.size(), 3000u);

  auto l = Ledger::open(journal.url());
  ASSERT_TRUE(l) << l.error();
  std::set<uint64_t> stored;
  uint64_t last = 0;
  ASSERT_TRUE(l.value()->scan(1, [&](const Event& e) {
    stored.insert(std::stoull(e.body));
    last = e.seq;
    return true;
  }));
  for (uint64_t a : acknowledged)
    ASSERT_TRUE(stored.count(a)) << "acknowledged event " << (a >> 32) << "/" << (a & 0xffffffff)
                                 << " lost";
  const VerifyReport v = l.value()->verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.events, stored.size());
  // The ledger goes on from where the killed process stopped.
  ASSERT_TRUE(l.value()->append_durable("bid", "0", 1));
  uint64_t next = 0;
  ASSERT_TRUE(l.value()->scan(last + 1, [&](const Event& e) {
    next = e.seq;
    return true;
  }));
  EXPECT_EQ(next, last + 1);
}

}  // namespace
}  // namespace segx::ledger
