#include "ledger/sqlite_storage.hpp"

#include "ledger/postgres_storage.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
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
CREATE TABLE IF NOT EXISTS secrets(name TEXT PRIMARY KEY, value BLOB NOT NULL);
)SQL";

std::string sqlite_error(sqlite3* db, const std::string& what) {
  return what + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
}

// Another connection's lock is worth waiting for; a full disk or a read-only file is not.
ErrorKind kind_of(sqlite3* db) {
  if (db == nullptr) return ErrorKind::internal;
  switch (sqlite3_errcode(db) & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return ErrorKind::unavailable;
    default:
      return ErrorKind::internal;
  }
}

Error failure(sqlite3* db, const std::string& what) {
  return Error{sqlite_error(db, what), kind_of(db)};
}

// The journal holds who bid what and (until settled) payment tokens: owner only. SQLite
// gives its WAL and SHM files the database file's mode, so creating (or narrowing) the
// database file to 0600 covers all three; WAL and SHM files left by an older run are
// narrowed too.
Status restrict_mode(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return Error{"cannot open ledger " + path + ": " + std::strerror(errno), ErrorKind::internal};
  struct stat st {};
  const bool wide = fstat(fd, &st) == 0 && (st.st_mode & 077) != 0;
  const int rc = wide ? fchmod(fd, st.st_mode & 0700) : 0;
  const int err = errno;
  ::close(fd);
  if (rc != 0)
    return Error{"cannot make ledger " + path + " private (0600): " + std::strerror(err),
                 ErrorKind::internal};
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::string side = path + suffix;
    if (stat(side.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
      chmod(side.c_str(), st.st_mode & 0700);
  }
  return {};
}

class SqliteStorage final : public Storage {
 public:
  SqliteStorage(std::string path, std::chrono::milliseconds timeout)
      : path_(std::move(path)), timeout_ms_(static_cast<int>(timeout.count())) {}
  ~SqliteStorage() override {
    sqlite3_finalize(insert_);
    sqlite3_finalize(scan_);
    sqlite3_finalize(put_secret_);
    sqlite3_finalize(erase_secret_);
    sqlite3_finalize(get_secret_);
    sqlite3_finalize(begin_);
    sqlite3_finalize(commit_);
    sqlite3_finalize(head_writer_);
    sqlite3_finalize(head_reader_);
    // Closing the last connection checkpoints the WAL into the main file.
    sqlite3_close(reader_);
    sqlite3_close(writer_);
  }

  Status open(bool read_only) {
    if (!read_only) {
      if (Status m = restrict_mode(path_); !m) return m;
      if (sqlite3_open_v2(path_.c_str(), &writer_,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                          nullptr) != SQLITE_OK)
        return failure(writer_, "cannot open ledger " + path_);
      sqlite3_busy_timeout(writer_, timeout_ms_);
      // secure_delete: an erased payment token is overwritten in the file, not left in a
      // free page.
      for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                              "PRAGMA secure_delete=ON", schema}) {
        if (Status s = exec(writer_, sql); !s) return s;
      }
      const auto prepare = [&](const char* sql, sqlite3_stmt** st) -> Status {
        if (sqlite3_prepare_v2(writer_, sql, -1, st, nullptr) != SQLITE_OK)
          return failure(writer_, "ledger " + path_);
        return {};
      };
      if (Status p = prepare("INSERT INTO events(seq, time_ns, type, body, hash) "
                             "VALUES (?, ?, ?, ?, ?)",
                             &insert_);
          !p)
        return p;
      if (Status p =
              prepare("INSERT OR REPLACE INTO secrets(name, value) VALUES (?, ?)", &put_secret_);
          !p)
        return p;
      if (Status p = prepare("DELETE FROM secrets WHERE name = ?", &erase_secret_); !p) return p;
      // Every commit runs these: parsed once, not once per commit.
      if (Status p = prepare("BEGIN IMMEDIATE", &begin_); !p) return p;
      if (Status p = prepare("COMMIT", &commit_); !p) return p;
    }
    const int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path_.c_str(), &reader_, flags, nullptr) != SQLITE_OK)
      return failure(reader_, "cannot open ledger " + path_);
    sqlite3_busy_timeout(reader_, timeout_ms_);
    // A ledger made before payment tokens moved out of the chain has no secrets table; a
    // read-only open does not add it.
    if (sqlite3_prepare_v2(reader_, "SELECT value FROM secrets WHERE name = ?", -1, &get_secret_,
                           nullptr) != SQLITE_OK)
      get_secret_ = nullptr;
    if (sqlite3_prepare_v2(reader_,
                           "SELECT seq, time_ns, type, body, hash FROM events WHERE seq >= ? "
                           "ORDER BY seq",
                           -1, &scan_, nullptr) != SQLITE_OK)
      return Error{sqlite_error(reader_, "ledger " + path_ + " is not a segx ledger"),
                   ErrorKind::internal};
    return {};
  }

  Result<Head> head() override {
    std::lock_guard lock(read_mutex_);
    return read_head(reader_);
  }

  Result<Head> read_head(sqlite3* db) {
    sqlite3_stmt*& st = db == writer_ ? head_writer_ : head_reader_;
    if (st == nullptr &&
        sqlite3_prepare_v2(db, "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", -1, &st,
                           nullptr) != SQLITE_OK)
      return failure(db, "ledger " + path_);
    Head h;
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      h.seq = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
      if (sqlite3_column_bytes(st, 1) == static_cast<int>(h.hash.size()))
        std::memcpy(h.hash.data(), sqlite3_column_blob(st, 1), h.hash.size());
    }
    // Reset, so that the read ends here and holds no snapshot of the file.
    const bool failed = rc != SQLITE_ROW && rc != SQLITE_DONE;
    Error err = failed ? failure(db, "ledger " + path_) : Error{};
    sqlite3_reset(st);
    if (failed) return err;
    return h;
  }

  Status append(std::span<Event> events) override {
    // BEGIN IMMEDIATE takes SQLite's write lock, so the head read next is still the head
    // at commit, even with another process appending to the same file.
    if (Status s = run(begin_); !s) return s;
    auto h = read_head(writer_);
    if (!h) {
      exec(writer_, "ROLLBACK");
      return h.failure();
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
        Error err = failure(writer_,
                            "ledger " + path_ + ": event " + std::to_string(e.seq) + " not stored");
        exec(writer_, "ROLLBACK");
        return err;
      }
      for (const SecretOp& op : e.secrets) {
        sqlite3_stmt* st = op.value ? put_secret_ : erase_secret_;
        sqlite3_bind_text(st, 1, op.name.data(), static_cast<int>(op.name.size()), SQLITE_STATIC);
        if (op.value)
          sqlite3_bind_blob(st, 2, op.value->data(), static_cast<int>(op.value->size()),
                            SQLITE_STATIC);
        const int src = sqlite3_step(st);
        sqlite3_reset(st);
        if (src != SQLITE_DONE) {
          Error err = failure(writer_, "ledger " + path_ + ": secret of event " +
                                           std::to_string(e.seq) + " not stored");
          exec(writer_, "ROLLBACK");
          return err;
        }
      }
    }
    if (Status s = run(commit_); !s) {
      exec(writer_, "ROLLBACK");
      return s;
    }
    // An erased secret is overwritten in the database file (secure_delete), but the WAL
    // still holds the frames that wrote it until they are reused: copy the WAL back and
    // truncate it now. Erasures are rare (a charge settled, a lot closed), bids are not.
    const bool erased = std::any_of(events.begin(), events.end(), [](const Event& e) {
      return std::any_of(e.secrets.begin(), e.secrets.end(),
                         [](const SecretOp& op) { return !op.value; });
    });
    if (erased)
      sqlite3_wal_checkpoint_v2(writer_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
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
    if (failed) return Error{msg, kind_of(reader_)};
    return {};
  }

  Result<std::optional<std::string>> secret(const std::string& name) override {
    std::lock_guard lock(read_mutex_);
    if (get_secret_ == nullptr) return std::optional<std::string>();
    sqlite3_reset(get_secret_);
    sqlite3_bind_text(get_secret_, 1, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
    const int rc = sqlite3_step(get_secret_);
    std::optional<std::string> out;
    if (rc == SQLITE_ROW)
      out.emplace(static_cast<const char*>(sqlite3_column_blob(get_secret_, 0)),
                  static_cast<size_t>(sqlite3_column_bytes(get_secret_, 0)));
    const bool failed = rc != SQLITE_ROW && rc != SQLITE_DONE;
    Error err = failed ? failure(reader_, "ledger " + path_ + ": reading a secret") : Error{};
    sqlite3_reset(get_secret_);
    if (failed) return err;
    return out;
  }

  Status probe() override {
    if (writer_ == nullptr)
      return Error{"ledger " + path_ + " is open read-only", ErrorKind::internal};
    if (Status s = exec(writer_, "BEGIN IMMEDIATE"); !s) return s;
    return exec(writer_, "ROLLBACK");
  }

  std::string describe() const override { return "sqlite:" + path_; }

 private:
  /// Runs a prepared statement of the writer that returns no rows.
  Status run(sqlite3_stmt* st) {
    if (sqlite3_step(st) == SQLITE_DONE) {
      sqlite3_reset(st);
      return {};
    }
    // Read the error before the reset.
    Error err{"ledger sqlite:" + path_ + ": " + sqlite3_errmsg(writer_), kind_of(writer_)};
    sqlite3_reset(st);
    return err;
  }

  Status exec(sqlite3* db, const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db);
      sqlite3_free(err);
      return Error{"ledger sqlite:" + path_ + ": " + msg, kind_of(db)};
    }
    return {};
  }

  std::string path_;
  int timeout_ms_;
  sqlite3* writer_ = nullptr;
  sqlite3* reader_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* scan_ = nullptr;
  sqlite3_stmt* put_secret_ = nullptr;
  sqlite3_stmt* erase_secret_ = nullptr;
  sqlite3_stmt* get_secret_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* head_writer_ = nullptr;
  sqlite3_stmt* head_reader_ = nullptr;
  std::mutex read_mutex_;
};

}  // namespace

Result<std::unique_ptr<Storage>> open_sqlite_storage(const std::string& path, bool read_only,
                                                     std::chrono::milliseconds timeout) {
  auto s = std::make_unique<SqliteStorage>(path, timeout);
  if (Status st = s->open(read_only); !st) return st.failure();
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
    for (Event& e : events) {
      for (const SecretOp& op : e.secrets) {
        if (op.value)
          secrets_[op.name] = *op.value;
        else
          secrets_.erase(op.name);
      }
      events_.push_back(e);
      events_.back().secrets.clear();
    }
    return {};
  }
  Result<std::optional<std::string>> secret(const std::string& name) override {
    std::lock_guard lock(mutex_);
    auto it = secrets_.find(name);
    if (it == secrets_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Status probe() override { return {}; }
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
  std::map<std::string, std::string> secrets_;
};

}  // namespace

Result<std::unique_ptr<Storage>> open_storage(const std::string& url, bool read_only,
                                              const StorageOptions& options) {
  if (url == "memory:") return std::unique_ptr<Storage>(std::make_unique<MemoryStorage>());
  if (url.starts_with("sqlite:") && url.size() > 7)
    return open_sqlite_storage(url.substr(7), read_only, options.timeout);
  if (url.starts_with("postgresql://") || url.starts_with("postgres://"))
    return open_postgres_storage(url, read_only, options.timeout);
  return Error{"ledger '" + url + "': expected sqlite:PATH or postgresql://..."};
}

}  // namespace segx::ledger
