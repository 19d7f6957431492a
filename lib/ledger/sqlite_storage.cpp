#include "ledger/sqlite_storage.hpp"

#include "ledger/postgres_storage.hpp"

#include <sqlite3.h>

#include <cstring>
#include <mutex>
#include <vector>

namespace segx::ledger {

namespace {

// The journal and, for operators who query the file with sqlite3, views that read the
// event bodies as tables. Views cost nothing on append; the market keeps its own indexes
// in memory, rebuilt from the journal at start.
constexpr const char* schema = R"SQL(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');
CREATE TABLE IF NOT EXISTS events(
  seq INTEGER PRIMARY KEY,
  time_ns INTEGER NOT NULL,
  type TEXT NOT NULL,
  body TEXT NOT NULL,
  hash BLOB NOT NULL);
CREATE VIEW IF NOT EXISTS lots AS SELECT seq AS id, time_ns,
  json_extract(body, '$.provider') AS provider, json_extract(body, '$.profile') AS profile,
  json_extract(body, '$.format') AS format, json_extract(body, '$.quantity') AS quantity,
  json_extract(body, '$.closes_ns') AS closes_ns FROM events WHERE type = 'lot_created';
CREATE VIEW IF NOT EXISTS bids AS SELECT seq AS id, time_ns,
  json_extract(body, '$.lot') AS lot, json_extract(body, '$.bidder') AS bidder,
  json_extract(body, '$.price') AS price, json_extract(body, '$.quantity') AS quantity
  FROM events WHERE type = 'bid';
CREATE VIEW IF NOT EXISTS charges AS SELECT seq, time_ns,
  json_extract(body, '$.lease') AS lease, json_extract(body, '$.payer') AS payer,
  json_extract(body, '$.amount') AS amount, json_extract(body, '$.currency') AS currency,
  json_extract(body, '$.result') AS result FROM events WHERE type = 'charge';
CREATE VIEW IF NOT EXISTS ratings AS SELECT seq, time_ns,
  json_extract(body, '$.lease') AS lease, json_extract(body, '$.by') AS by,
  json_extract(body, '$.of') AS of, json_extract(body, '$.positive') AS positive
  FROM events WHERE type = 'rating';
)SQL";

std::string sqlite_error(sqlite3* db, const std::string& what) {
  return what + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
}

class SqliteStorage final : public Storage {
 public:
  SqliteStorage(std::string path) : path_(std::move(path)) {}
  ~SqliteStorage() override {
    sqlite3_finalize(insert_);
    sqlite3_finalize(scan_);
    // Closing the last connection checkpoints the WAL into the main file.
    sqlite3_close(reader_);
    sqlite3_close(writer_);
  }

  Status open(bool read_only) {
    if (!read_only) {
      if (sqlite3_open_v2(path_.c_str(), &writer_,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                          nullptr) != SQLITE_OK)
        return Error{sqlite_error(writer_, "cannot open ledger " + path_)};
      sqlite3_busy_timeout(writer_, 5000);
      for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", schema}) {
        if (Status s = exec(writer_, sql); !s) return s;
      }
      if (sqlite3_prepare_v2(writer_,
                             "INSERT INTO events(seq, time_ns, type, body, hash) "
                             "VALUES (?, ?, ?, ?, ?)",
                             -1, &insert_, nullptr) != SQLITE_OK)
        return Error{sqlite_error(writer_, "ledger " + path_)};
    }
    const int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path_.c_str(), &reader_, flags, nullptr) != SQLITE_OK)
      return Error{sqlite_error(reader_, "cannot open ledger " + path_)};
    sqlite3_busy_timeout(reader_, 5000);
    if (sqlite3_prepare_v2(reader_,
                           "SELECT seq, time_ns, type, body, hash FROM events WHERE seq >= ? "
                           "ORDER BY seq",
                           -1, &scan_, nullptr) != SQLITE_OK)
      return Error{sqlite_error(reader_, "ledger " + path_ + " is not a segx ledger")};
    return {};
  }

  Result<Head> head() override {
    std::lock_guard lock(read_mutex_);
    return read_head(reader_);
  }

  Result<Head> read_head(sqlite3* db) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", -1, &st,
                           nullptr) != SQLITE_OK)
      return Error{sqlite_error(db, "ledger " + path_)};
    Head h;
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      h.seq = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
      if (sqlite3_column_bytes(st, 1) == static_cast<int>(h.hash.size()))
        std::memcpy(h.hash.data(), sqlite3_column_blob(st, 1), h.hash.size());
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error{sqlite_error(db, "ledger " + path_)};
    return h;
  }

  Status append(std::span<Event> events) override {
    // BEGIN IMMEDIATE takes SQLite's write lock, so the head read next is still the head
    // at commit, even with another process appending to the same file.
    if (Status s = exec(writer_, "BEGIN IMMEDIATE"); !s) return s;
    auto h = read_head(writer_);
    if (!h) {
      exec(writer_, "ROLLBACK");
      return Error{h.error()};
    }
    chain_after(h.value(), events);
    for (const Event& e : events) {
      sqlite3_bind_int64(insert_, 1, static_cast<sqlite3_int64>(e.seq));
      sqlite3_bind_int64(insert_, 2, e.time_ns);
      sqlite3_bind_text(insert_, 3, e.type.data(), static_cast<int>(e.type.size()), SQLITE_STATIC);
      sqlite3_bind_text(insert_, 4, e.body.data(), static_cast<int>(e.body.size()), SQLITE_STATIC);
      sqlite3_bind_blob(insert_, 5, e.hash.data(), static_cast<int>(e.hash.size()), SQLITE_STATIC);
      const int rc = sqlite3_step(insert_);
      sqlite3_reset(insert_);
      if (rc != SQLITE_DONE) {
        std::string msg = sqlite_error(
            writer_, "ledger " + path_ + ": event " + std::to_string(e.seq) + " not stored");
        exec(writer_, "ROLLBACK");
        return Error{msg};
      }
    }
    if (Status s = exec(writer_, "COMMIT"); !s) {
      exec(writer_, "ROLLBACK");
      return s;
    }
    return {};
  }

  Status scan(uint64_t from, const std::function<bool(const Event&)>& fn) override {
    std::lock_guard lock(read_mutex_);
    sqlite3_reset(scan_);
    sqlite3_bind_int64(scan_, 1, static_cast<sqlite3_int64>(from));
    Event e;
    int rc;
    while ((rc = sqlite3_step(scan_)) == SQLITE_ROW) {
      e.seq = static_cast<uint64_t>(sqlite3_column_int64(scan_, 0));
      e.time_ns = sqlite3_column_int64(scan_, 1);
      e.type.assign(reinterpret_cast<const char*>(sqlite3_column_text(scan_, 2)),
                    static_cast<size_t>(sqlite3_column_bytes(scan_, 2)));
      e.body.assign(reinterpret_cast<const char*>(sqlite3_column_text(scan_, 3)),
                    static_cast<size_t>(sqlite3_column_bytes(scan_, 3)));
      e.hash = Digest{};
      // A hash of the wrong size is kept as zeros, so verify reports the event.
      if (sqlite3_column_bytes(scan_, 4) == static_cast<int>(e.hash.size()))
        std::memcpy(e.hash.data(), sqlite3_column_blob(scan_, 4), e.hash.size());
      if (!fn(e)) break;
    }
    const bool failed = rc != SQLITE_ROW && rc != SQLITE_DONE;
    std::string msg = failed ? sqlite_error(reader_, "ledger " + path_ + ": reading after event " +
                                                         std::to_string(e.seq))
                             : std::string();
    sqlite3_reset(scan_);
    if (failed) return Error{msg};
    return {};
  }

  std::string describe() const override { return "sqlite:" + path_; }

 private:
  static Status exec(sqlite3* db, const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db);
      sqlite3_free(err);
      return Error{"ledger: " + msg};
    }
    return {};
  }

  std::string path_;
  sqlite3* writer_ = nullptr;
  sqlite3* reader_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* scan_ = nullptr;
  std::mutex read_mutex_;
};

}  // namespace

Result<std::unique_ptr<Storage>> open_sqlite_storage(const std::string& path, bool read_only) {
  auto s = std::make_unique<SqliteStorage>(path);
  if (Status st = s->open(read_only); !st) return Error{st.error()};
  return std::unique_ptr<Storage>(std::move(s));
}

namespace {

// Events kept in memory only: nothing survives the process. For benchmarks (the market's
// own cost without the disk's) and tests; the configuration accepts no such ledger.
class MemoryStorage final : public Storage {
 public:
  Result<Head> head() override {
    std::lock_guard lock(mutex_);
    if (events_.empty()) return Head{};
    return Head{events_.back().seq, events_.back().hash};
  }
  Status append(std::span<Event> events) override {
    std::lock_guard lock(mutex_);
    chain_after(events_.empty() ? Head{} : Head{events_.back().seq, events_.back().hash}, events);
    events_.insert(events_.end(), events.begin(), events.end());
    return {};
  }
  Status scan(uint64_t from, const std::function<bool(const Event&)>& fn) override {
    std::lock_guard lock(mutex_);
    for (const Event& e : events_)
      if (e.seq >= from && !fn(e)) break;
    return {};
  }
  std::string describe() const override { return "memory:"; }

 private:
  std::mutex mutex_;
  std::vector<Event> events_;
};

}  // namespace

Result<std::unique_ptr<Storage>> open_storage(const std::string& url, bool read_only) {
  if (url == "memory:") return std::unique_ptr<Storage>(std::make_unique<MemoryStorage>());
  if (url.starts_with("sqlite:") && url.size() > 7)
    return open_sqlite_storage(url.substr(7), read_only);
  if (url.starts_with("postgresql://") || url.starts_with("postgres://"))
    return open_postgres_storage(url, read_only);
  return Error{"ledger '" + url + "': expected sqlite:PATH or postgresql://..."};
}

}  // namespace segx::ledger
