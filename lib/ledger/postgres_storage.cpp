#include "ledger/postgres_storage.hpp"

#include <algorithm>
#include <functional>
#include <mutex>
#include <pqxx/pqxx>
#include <tuple>
#include <vector>

namespace segx::ledger {

namespace {

// Advisory lock keys: one for migrations, one for the chain head. Arbitrary, fixed ("segx").
constexpr long long migration_lock = 0x73656778'0001;
constexpr long long chain_lock = 0x73656778'0002;

// Versioned schema. A migration is never edited once released: a change is a new entry.
const std::vector<std::pair<int, const char*>> migrations = {
    {1, R"SQL(
CREATE TABLE segx_events(
  seq BIGINT PRIMARY KEY,
  time_ns BIGINT NOT NULL,
  type TEXT NOT NULL,
  body TEXT NOT NULL,
  hash TEXT NOT NULL CHECK (length(hash) = 64));
CREATE VIEW segx_bids AS SELECT (body::jsonb->>'id')::bigint AS id, time_ns,
  (body::jsonb->>'lot')::bigint AS lot, body::jsonb->>'bidder' AS bidder,
  (body::jsonb->>'price')::bigint AS price, (body::jsonb->>'quantity')::int AS quantity
  FROM segx_events WHERE type = 'bid';
CREATE VIEW segx_charges AS SELECT seq, time_ns, (body::jsonb->>'lease')::bigint AS lease,
  body::jsonb->>'payer' AS payer, (body::jsonb->>'amount')::bigint AS amount,
  body::jsonb->>'result' AS result FROM segx_events WHERE type = 'charge';
)SQL"},
    // Payment tokens, outside the chain so they can be erased once settled.
    {2, R"SQL(
CREATE TABLE segx_secrets(name TEXT PRIMARY KEY, value TEXT NOT NULL);
)SQL"},
};

// A lost or refused connection, a serialization failure or a deadlock: worth another try.
// A statement timeout (57014, query_canceled) is the server hanging: also transient.
ErrorKind kind_of(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) ||
      dynamic_cast<const pqxx::transaction_rollback*>(&e) ||
      dynamic_cast<const pqxx::in_doubt_error*>(&e))
    return ErrorKind::unavailable;
  if (auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string state = sql->sqlstate();
    // 08: connection exception; 40: transaction rollback; 53: insufficient resources;
    // 57: operator intervention (query canceled by statement_timeout, admin shutdown).
    if (state.starts_with("08") || state.starts_with("40") || state.starts_with("53") ||
        state.starts_with("57"))
      return ErrorKind::unavailable;
  }
  return ErrorKind::internal;
}

std::string redact(const std::string& url) {
  // postgresql://user:secret@host/db -> postgresql://user:***@host/db
  const size_t scheme = url.find("://");
  const size_t at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos) return url;
  const size_t colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

class PostgresStorage final : public Storage {
 public:
  PostgresStorage(std::string url, std::chrono::milliseconds timeout)
      : url_(with_connect_timeout(url, timeout)), shown_(redact(url)), timeout_(timeout) {}

  Status open(bool read_only) {
    try {
      reader_ = connect();
      if (!read_only) {
        writer_ = connect();
        if (Status s = migrate(); !s) return s;
      }
      pqxx::nontransaction check(*reader_);
      check.exec("SELECT 1 FROM segx_events LIMIT 1");
    } catch (const std::exception& e) {
      return Error{"ledger " + shown_ + ": " + e.what(), kind_of(e)};
    }
    return {};
  }

  Result<Head> head() override {
    std::lock_guard lock(read_mutex_);
    Head h;
    Status s = with_reader([&] {
      pqxx::read_transaction tx(*reader_);
      h = read_head(tx);
    });
    if (!s) return s.failure();
    return h;
  }

  Status append(std::span<Event> events) override {
    // Errors come back with their kind; the ledger retries transient ones (with backoff, up
    // to its timeout). A lost connection is replaced here first, so the retry has one.
    try {
      if (!writer_ || !writer_->is_open()) writer_ = connect();
      pqxx::work tx(*writer_);
      tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(chain_lock) + ")");
      chain_after(read_head(tx), events);
      {
        pqxx::stream_to out(tx, "segx_events",
                            std::vector<std::string>{"seq", "time_ns", "type", "body", "hash"});
        for (const Event& e : events)
          out << std::make_tuple(static_cast<long long>(e.seq), static_cast<long long>(e.time_ns),
                                 e.type, e.body, to_hex(e.hash));
        out.complete();
      }
      for (const Event& e : events) {
        for (const SecretOp& op : e.secrets) {
          if (op.value)
            tx.exec_params(
                "INSERT INTO segx_secrets(name, value) VALUES ($1, $2) "
                "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                op.name, *op.value);
          else
            tx.exec_params("DELETE FROM segx_secrets WHERE name = $1", op.name);
        }
      }
      tx.commit();
      return {};
    } catch (const std::exception& e) {
      const ErrorKind kind = kind_of(e);
      if (kind == ErrorKind::unavailable) drop_if_broken(writer_);
      return Error{"ledger " + shown_ + ": " + e.what(), kind};
    }
  }

  Status scan(uint64_t from, const std::function<bool(const Event&)>& fn) override {
    std::lock_guard lock(read_mutex_);
    // In pages, so a long journal never sits in memory at once; a page lost to a broken
    // connection is read again on a new one.
    constexpr int page = 10000;
    Event e;
    bool more = true;
    bool stopped = false;
    while (more && !stopped) {
      pqxx::result r;
      Status s = with_reader([&] {
        pqxx::read_transaction tx(*reader_);
        r = tx.exec("SELECT seq, time_ns, type, body, hash FROM segx_events WHERE seq >= " +
                    std::to_string(from) + " ORDER BY seq LIMIT " + std::to_string(page));
      });
      if (!s) return s;
      for (const auto& row : r) {
        e.seq = row[0].as<uint64_t>();
        e.time_ns = row[1].as<int64_t>();
        e.type = row[2].as<std::string>();
        e.body = row[3].as<std::string>();
        e.hash = digest_from_hex(row[4].as<std::string>()).value_or(Digest{});
        if (!fn(e)) {
          stopped = true;
          break;
        }
        from = e.seq + 1;
      }
      more = r.size() == static_cast<size_t>(page);
    }
    return {};
  }

  Result<std::optional<std::string>> secret(const std::string& name) override {
    std::lock_guard lock(read_mutex_);
    std::optional<std::string> out;
    Status s = with_reader([&] {
      pqxx::read_transaction tx(*reader_);
      const pqxx::result r = tx.exec_params("SELECT value FROM segx_secrets WHERE name = $1", name);
      if (!r.empty()) out = r[0][0].as<std::string>();
    });
    if (!s) return s.failure();
    return out;
  }

  Status probe() override {
    try {
      if (!writer_ || !writer_->is_open()) writer_ = connect();
      pqxx::work tx(*writer_);
      tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(chain_lock) + ")");
      tx.abort();
      return {};
    } catch (const std::exception& e) {
      drop_if_broken(writer_);
      return Error{"ledger " + shown_ + ": " + e.what(), kind_of(e)};
    }
  }

  std::string describe() const override { return shown_; }

 private:
  Head read_head(pqxx::transaction_base& tx) {
    const pqxx::result r = tx.exec("SELECT seq, hash FROM segx_events ORDER BY seq DESC LIMIT 1");
    Head h;
    if (!r.empty()) {
      h.seq = r[0][0].as<uint64_t>();
      h.hash = digest_from_hex(r[0][1].as<std::string>()).value_or(Digest{});
    }
    return h;
  }

  // Applies missing migrations in order, each in its own transaction with its version
  // recorded, under a session advisory lock so appliances starting together take turns.
  Status migrate() {
    {
      // A session lock: it outlives this statement's transaction object.
      pqxx::nontransaction lock(*writer_);
      lock.exec("SELECT pg_advisory_lock(" + std::to_string(migration_lock) + ")");
    }
    Status result;
    try {
      {
        pqxx::work tx(*writer_);
        tx.exec(
            "CREATE TABLE IF NOT EXISTS segx_schema_migrations("
            "version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
        tx.commit();
      }
      for (const auto& [version, sql] : migrations) {
        pqxx::work tx(*writer_);
        const pqxx::result done = tx.exec("SELECT 1 FROM segx_schema_migrations WHERE version = " +
                                          std::to_string(version));
        if (!done.empty()) continue;
        tx.exec(sql);
        tx.exec("INSERT INTO segx_schema_migrations(version) VALUES (" + std::to_string(version) +
                ")");
        tx.commit();
      }
    } catch (const std::exception& e) {
      result = Error{"ledger " + shown_ + ": migration failed: " + e.what()};
    }
    try {
      pqxx::nontransaction unlock(*writer_);
      unlock.exec("SELECT pg_advisory_unlock(" + std::to_string(migration_lock) + ")");
    } catch (const std::exception&) {
      // Closing the connection releases a session lock too.
    }
    return result;
  }

  // libpq's connect_timeout is in whole seconds (at least 2 are honoured).
  static std::string with_connect_timeout(const std::string& url, std::chrono::milliseconds t) {
    if (url.find("connect_timeout=") != std::string::npos) return url;
    const long long secs = std::max<long long>(2, (t.count() + 999) / 1000);
    return url + (url.find('?') == std::string::npos ? "?" : "&") +
           "connect_timeout=" + std::to_string(secs);
  }

  // Every session: a statement that hangs is cancelled (a transient error the ledger
  // retries), and a commit returns only once it is durable on the server whatever
  // the server's default.
  std::unique_ptr<pqxx::connection> connect() {
    auto c = std::make_unique<pqxx::connection>(url_);
    pqxx::nontransaction tx(*c);
    tx.exec("SET statement_timeout = " + std::to_string(timeout_.count()));
    tx.exec("SET synchronous_commit = on");
    return c;
  }

  static void drop_if_broken(std::unique_ptr<pqxx::connection>& c) {
    if (c && !c->is_open()) c.reset();
  }

  // Runs `fn` on the reader, reconnecting once if the connection was lost.
  Status with_reader(const std::function<void()>& fn) {
    for (int attempt = 1;; ++attempt) {
      try {
        if (!reader_ || !reader_->is_open()) reader_ = connect();
        fn();
        return {};
      } catch (const std::exception& e) {
        const ErrorKind kind = kind_of(e);
        drop_if_broken(reader_);
        if (kind != ErrorKind::unavailable || attempt >= 2)
          return Error{"ledger " + shown_ + ": " + e.what(), kind};
      }
    }
  }

  std::string url_;
  std::string shown_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<pqxx::connection> writer_;
  std::unique_ptr<pqxx::connection> reader_;
  std::mutex read_mutex_;
};

}  // namespace

Result<std::unique_ptr<Storage>> open_postgres_storage(const std::string& url, bool read_only,
                                                       std::chrono::milliseconds timeout) {
  auto s = std::make_unique<PostgresStorage>(url, timeout);
  if (Status st = s->open(read_only); !st) return st.failure();
  return std::unique_ptr<Storage>(std::move(s));
}

}  // namespace segx::ledger
