#pragma once
// The ledger: an append-only, hash-chained journal of market events, durable before it is
// acknowledged. Callers append from any thread; one writer thread stores whatever has
// queued up in one transaction (group commit), so a thousand concurrent bids cost one
// fsync, not a thousand. No DPDK here.
//
// Faults: a transient store error (a lock held by another process, a lost database
// connection) is retried with backoff for up to `LedgerOptions::timeout`. If the batch still
// fails, it and every event queued behind it fail (their callers get ErrorKind::unavailable),
// the ledger's *generation* moves on and its health reads "failing" with the cause; it keeps
// taking appends, and the first commit that succeeds (or a probe of the store while idle)
// makes it healthy again. Nothing of a failed batch is ever stored.

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/result.hpp"
#include "ledger/event.hpp"
#include "ledger/storage.hpp"

namespace segx::ledger {

/// What verify() found.
struct VerifyReport {
  bool ok = true;
  uint64_t events = 0;   ///< events checked and found good
  Digest head{};         ///< hash of the last good event; publish it to anchor the chain
  uint64_t bad_seq = 0;  ///< the first event that fails, when !ok (0: the store itself failed)
  std::string reason;    ///< why, for the operator
};

/// Checks a whole journal: numbers run 1, 2, 3 without gaps, and each stored hash equals
/// chain_hash(previous hash, event). Names the first event that fails.
VerifyReport verify(Storage& storage);

/// Upper bounds of the commit latency buckets, in seconds (the last bucket is unbounded).
inline constexpr double commit_latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                   0.01,   0.025,   0.05,   0.1,   0.25,   1};

/// Figures since open.
struct LedgerStats {
  uint64_t events = 0;     ///< appended and durable
  uint64_t commits = 0;    ///< transactions
  uint64_t max_batch = 0;  ///< most events in one commit
  /// Commits by how long the store took (numbering, chaining, writing, fsync), one count per
  /// bucket of commit_latency_bounds plus one above the last.
  std::array<uint64_t, std::size(commit_latency_bounds) + 1> commit_latency{};
  double commit_seconds = 0;     ///< total time in commits
  uint64_t commit_failures = 0;  ///< batches that failed after their retries
  uint64_t failed_events = 0;    ///< events refused because their batch failed
  uint64_t retries = 0;          ///< store attempts repeated after a transient error
};

/// Whether the store is taking commits.
struct LedgerHealth {
  bool ok = true;
  std::string error;        ///< the last failure's cause, while failing
  int64_t since_ns = 0;     ///< wall clock when it started failing (ns since the epoch)
  uint64_t generation = 0;  ///< moves on with every failed batch
};

/// How the ledger waits and retries.
struct LedgerOptions {
  /// Transient store errors are retried for this long before the batch fails; a caller
  /// waits at most this long plus one second for its event's outcome.
  std::chrono::milliseconds timeout{5000};
  /// Told of every change of health (failing with its cause, recovered), from the writer
  /// thread. May be empty.
  std::function<void(const std::string&)> log;
};

/// Where an event's outcome stands.
struct Progress {
  uint64_t resolved = 0;    ///< every ticket up to this one is durable or failed
  uint64_t generation = 0;  ///< the generation those outcomes belong to
};

/// The journal in use by the market.
class Ledger {
 public:
  /// Opens the store a URL names ("sqlite:PATH"), reads its head, and starts the writer.
  static Result<std::unique_ptr<Ledger>> open(const std::string& url, LedgerOptions options = {});
  /// Uses a store already open (tests, other backends).
  static Result<std::unique_ptr<Ledger>> open(std::unique_ptr<Storage> storage,
                                              LedgerOptions options = {});
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  /// Queues an event and returns a ticket at once. Events of one Ledger are stored in call
  /// order; the store numbers and chains them when it commits (after events other processes
  /// sharing the store committed first). The event is not yet durable: wait_durable(ticket)
  /// before acknowledging it. Fails (unavailable) once the ledger is closed.
  Result<uint64_t> append(Event event);
  Result<uint64_t> append(std::string type, std::string body, int64_t time_ns);
  /// append() only while the ledger is still in `generation`: a caller that decided on the
  /// event from state that assumed every earlier event would commit is refused
  /// (unavailable) once one of them has failed.
  Result<uint64_t> append_in(uint64_t generation, Event event);
  /// Blocks until the event of `ticket` is durable (ok) or its batch failed (unavailable,
  /// with the cause). Gives up (unavailable, outcome unknown) after the options' timeout
  /// plus one second if the store hangs.
  Status wait_durable(uint64_t ticket);
  /// Calls `fn` once the outcome of `ticket` is known, as wait_durable() would return it
  /// (ok when durable; unavailable with the cause when its batch failed or the ledger
  /// closed). It runs on the ledger's writer thread, or at once on the caller's when the
  /// outcome is known already, so it must not block or call into the ledger: it hands the
  /// work to a thread of the caller's (an API connection's, say). No thread waits meanwhile.
  void when_durable(uint64_t ticket, std::function<void(Status)> fn);
  /// append() then wait_durable(); returns the ticket.
  Result<uint64_t> append_durable(std::string type, std::string body, int64_t time_ns);
  /// Outcomes so far, read together.
  Progress progress() const;
  /// The first and last ticket that failed when generation `g` ended; nullopt if `g` has not
  /// ended (or is too old to be remembered).
  std::optional<std::pair<uint64_t, uint64_t>> failed_in(uint64_t generation) const;
  /// The highest ticket whose outcome is known (durable or failed).
  uint64_t durable_ticket() const { return progress().resolved; }
  /// Committed events with seq >= from, in order, until fn returns false.
  Status scan(uint64_t from, const std::function<bool(const Event&)>& fn);
  /// A secret stored by an event (see SecretOp); nullopt if none.
  Result<std::optional<std::string>> secret(const std::string& name);
  /// Checks the chain of everything committed so far.
  VerifyReport verify();
  /// Stores what is queued, then stops the writer. Later appends fail. Idempotent.
  void close();
  /// Confines the writer thread to the CPUs the calling thread may run on. The writer starts
  /// before the data plane's lcores are placed; once they are, the caller (the main thread,
  /// on the main lcore's CPUs) keeps the writer off their CPUs with this.
  Status share_callers_cpus();
  LedgerStats stats() const;
  LedgerHealth health() const;
  /// Where the journal is kept.
  std::string describe() const { return storage_->describe(); }

  /// Event types are owned by the module that writes them; a module replaying the journal
  /// skips types another module registered and refuses types nobody did. Registering a type
  /// twice for different owners fails.
  Status register_event_types(const std::string& owner, const std::vector<std::string>& types);
  /// The module that owns `type`, if any registered it.
  std::optional<std::string> event_owner(const std::string& type) const;

 private:
  Ledger(std::unique_ptr<Storage> storage, LedgerOptions options);
  void writer_loop();
  Result<uint64_t> append_locked(Event event, std::unique_lock<std::mutex>& lock);
  bool is_failed(uint64_t ticket) const;  // under mutex_
  Status outcome(uint64_t ticket) const;  // under mutex_, once resolved
  void note(const std::string& line);

  std::unique_ptr<Storage> storage_;
  LedgerOptions options_;
  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable work_;
  std::condition_variable done_;
  std::vector<Event> queue_;
  uint64_t next_ticket_ = 1;
  uint64_t resolved_ = 0;    // tickets with a known outcome
  uint64_t generation_ = 0;  // failed batches so far
  // generation -> the tickets that failed when it ended (bounded: the oldest are dropped).
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> failures_;
  static constexpr size_t max_failures_kept = 4096;
  LedgerHealth health_;
  // When the commit now in the store began: one that takes longer than the timeout (a
  // server that stopped answering) makes the ledger unhealthy while it lasts.
  std::optional<std::chrono::steady_clock::time_point> in_flight_since_;
  bool closing_ = false;
  bool wanted_ = false;    // someone waits in wait_durable or when_durable
  bool finished_ = false;  // the writer has ended
  std::multimap<uint64_t, std::function<void(Status)>> watchers_;  // when_durable, by ticket
  static constexpr size_t max_unwoken = 4096;
  LedgerStats stats_;
  std::map<std::string, std::string> owners_;  // event type -> module
  std::thread writer_;
};

}  // namespace segx::ledger
