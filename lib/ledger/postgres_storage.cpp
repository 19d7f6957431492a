#include "ledger/postgres_storage.hpp"

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
};

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
  explicit PostgresStorage(std::string url) : url_(std::move(url)), shown_(redact(url_)) {}

  Status open(bool read_only) {
    try {
      reader_ = std::make_unique<pqxx::connection>(url_);
      if (!read_only) {
        writer_ = std::make_unique<pqxx::connection>(url_);
        if (Status s = migrate(); !s) return s;
      }
      pqxx::nontransaction check(*reader_);
      check.exec("SELECT 1 FROM segx_events LIMIT 1");
    } catch (const std::exception& e) {
      return Error{"ledger " + shown_ + ": " + e.what()};
    }
    return {};
  }

  Result<Head> head() override {
    std::lock_guard lock(read_mutex_);
    try {
      pqxx::read_transaction tx(*reader_);
      return read_head(tx);
    } catch (const std::exception& e) {
      return Error{"ledger " + shown_ + ": " + e.what()};
    }
  }

  Status append(std::span<Event> events) override {
    // A serialization failure or deadlock is the database asking for a retry; the advisory
    // lock makes both unlikely, the retries make them harmless.
    for (int attempt = 1;; ++attempt) {
      try {
        pqxx::work tx(*writer_);
        tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(chain_lock) + ")");
        chain_after(read_head(tx), events);
        pqxx::stream_to out(tx, "segx_events",
                            std::vector<std::string>{"seq", "time_ns", "type", "body", "hash"});
        for (const Event& e : events)
          out << std::make_tuple(static_cast<long long>(e.seq), static_cast<long long>(e.time_ns),
                                 e.type, e.body, to_hex(e.hash));
        out.complete();
        tx.commit();
        return {};
      } catch (const pqxx::serialization_failure& e) {
        if (attempt >= 5) return Error{"ledger " + shown_ + ": " + e.what()};
      } catch (const pqxx::deadlock_detected& e) {
        if (attempt >= 5) return Error{"ledger " + shown_ + ": " + e.what()};
      } catch (const pqxx::broken_connection& e) {
        // One reconnect: a database restart between commits is not the market's failure.
        if (attempt >= 2) return Error{"ledger " + shown_ + ": " + e.what()};
        try {
          writer_ = std::make_unique<pqxx::connection>(url_);
        } catch (const std::exception& again) {
          return Error{"ledger " + shown_ + ": " + again.what()};
        }
      } catch (const std::exception& e) {
        return Error{"ledger " + shown_ + ": " + e.what()};
      }
    }
  }

  Status scan(uint64_t from, const std::function<bool(const Event&)>& fn) override {
    std::lock_guard lock(read_mutex_);
    try {
      // In pages, so a long journal never sits in memory at once.
      constexpr int page = 10000;
      Event e;
      for (;;) {
        pqxx::read_transaction tx(*reader_);
        const pqxx::result r = tx.exec(
            "SELECT seq, time_ns, type, body, hash FROM segx_events WHERE seq >= " +
            std::to_string(from) + " ORDER BY seq LIMIT " + std::to_string(page));
        for (const auto& row : r) {
          e.seq = row[0].as<uint64_t>();
          e.time_ns = row[1].as<int64_t>();
          e.type = row[2].as<std::string>();
          e.body = row[3].as<std::string>();
          e.hash = digest_from_hex(row[4].as<std::string>()).value_or(Digest{});
          if (!fn(e)) return {};
          from = e.seq + 1;
        }
        if (r.size() < static_cast<size_t>(page)) return {};
      }
    } catch (const std::exception& ex) {
      return Error{"ledger " + shown_ + ": " + ex.what()};
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
        const pqxx::result done = tx.exec(
            "SELECT 1 FROM segx_schema_migrations WHERE version = " + std::to_string(version));
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

  std::string url_;
  std::string shown_;
  std::unique_ptr<pqxx::connection> writer_;
  std::unique_ptr<pqxx::connection> reader_;
  std::mutex read_mutex_;
};

}  // namespace

Result<std::unique_ptr<Storage>> open_postgres_storage(const std::string& url, bool read_only) {
  auto s = std::make_unique<PostgresStorage>(url);
  if (Status st = s->open(read_only); !st) return Error{st.error()};
  return std::unique_ptr<Storage>(std::move(s));
}

}  // namespace segx::ledger
