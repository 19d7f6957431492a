#pragma once
// Where the ledger keeps its journal. The market never sees this: it talks to Ledger, which
// owns one Storage. SQLite is the embedded default; another backend (PostgreSQL) implements
// the same calls.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "common/result.hpp"
#include "ledger/event.hpp"

namespace segx::ledger {

/// The last stored event: its number and hash (0 and genesis_hash when empty).
struct Head {
  uint64_t seq = 0;
  Digest hash = genesis_hash;
};

/// How a store behaves under faults.
struct StorageOptions {
  /// SQLite: how long one statement waits for another process's lock. PostgreSQL: connect
  /// and statement timeouts. The ledger retries transient failures within the same bound.
  std::chrono::milliseconds timeout{5000};
};

/// A journal store. append() is called by one thread of a process at a time, but several
/// processes may append to one shared store (PostgreSQL): the store numbers and chains each
/// batch after whatever head it finds inside its own transaction, under a lock. scan() may
/// run at the same time from another thread and sees only committed events.
///
/// Errors carry a kind: ErrorKind::unavailable for a transient failure worth retrying
/// (SQLite busy or locked, a PostgreSQL serialization failure, deadlock or lost
/// connection), ErrorKind::internal for the rest (disk full, read-only file, bad schema).
class Storage {
 public:
  virtual ~Storage() = default;
  /// The last committed event.
  virtual Result<Head> head() = 0;
  /// Stores events in one transaction, durable on return: numbers them after the current
  /// head and chains their hashes (filling in seq and hash), and applies their secret
  /// operations. On error nothing of the batch is stored.
  virtual Status append(std::span<Event> events) = 0;
  /// Calls `fn` for every committed event with seq >= from, in order, until it returns false.
  virtual Status scan(uint64_t from, const std::function<bool(const Event&)>& fn) = 0;
  /// A secret stored by an event's SecretOp; nullopt if none (never stored, or erased).
  virtual Result<std::optional<std::string>> secret(const std::string& name) = 0;
  /// Checks that a write would go through now (takes and releases the write lock), without
  /// writing. The ledger probes a failing store with it to see it recover.
  virtual Status probe() = 0;
  /// Where the journal is, for messages ("sqlite:/var/lib/segx/ledger.db").
  virtual std::string describe() const = 0;
};

/// Numbers and chains `events` after `head` (the store's part of append()).
void chain_after(const Head& head, std::span<Event> events);

/// Opens (creating if needed) the store a ledger URL names: "sqlite:PATH", or "memory:" (not
/// durable; benchmarks and tests). With read_only the store must exist and is not changed
/// (for verify). A new SQLite file (and its WAL and SHM files) is readable by its owner only
/// (0600); an existing one with wider permissions is narrowed to 0600.
Result<std::unique_ptr<Storage>> open_storage(const std::string& url, bool read_only = false,
                                              const StorageOptions& options = {});

}  // namespace segx::ledger
