#pragma once
// The ledger: an append-only, hash-chained journal of market events, durable before it is
// acknowledged. Callers append from any thread; one writer thread stores whatever has
// queued up in one transaction (group commit), so a thousand concurrent bids cost one
// fsync, not a thousand. No DPDK here.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
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

/// Figures since open.
struct LedgerStats {
  uint64_t events = 0;     ///< appended and durable
  uint64_t commits = 0;    ///< transactions
  uint64_t max_batch = 0;  ///< most events in one commit
};

/// The journal in use by the market.
class Ledger {
 public:
  /// Opens the store a URL names ("sqlite:PATH"), reads its head, and starts the writer.
  static Result<std::unique_ptr<Ledger>> open(const std::string& url);
  /// Uses a store already open (tests, other backends).
  static Result<std::unique_ptr<Ledger>> open(std::unique_ptr<Storage> storage);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  /// Queues an event and returns a ticket at once. Events of one Ledger are stored in call
  /// order; the store numbers and chains them when it commits (after events other processes
  /// sharing the store committed first). The event is not yet durable: wait_durable(ticket)
  /// before acknowledging it. Fails only once the ledger has failed (a commit error): then
  /// nothing more is taken.
  Result<uint64_t> append(std::string type, std::string body, int64_t time_ns);
  /// Blocks until the event of `ticket` is durable (ok) or its commit failed (the error).
  Status wait_durable(uint64_t ticket);
  /// append() then wait_durable(); returns the ticket.
  Result<uint64_t> append_durable(std::string type, std::string body, int64_t time_ns);
  /// The highest ticket whose event is durable.
  uint64_t durable_ticket() const { return durable_.load(std::memory_order_acquire); }
  /// Committed events with seq >= from, in order, until fn returns false.
  Status scan(uint64_t from, const std::function<bool(const Event&)>& fn);
  /// Checks the chain of everything committed so far.
  VerifyReport verify();
  /// Stores what is queued, then stops the writer. Later appends fail. Idempotent.
  void close();
  LedgerStats stats() const;
  /// Where the journal is kept.
  std::string describe() const { return storage_->describe(); }

 private:
  explicit Ledger(std::unique_ptr<Storage> storage);
  void writer_loop();

  std::unique_ptr<Storage> storage_;
  mutable std::mutex mutex_;  // guards everything below but durable_
  std::condition_variable work_;
  std::condition_variable done_;
  std::vector<Event> queue_;
  uint64_t next_ticket_ = 1;
  std::string failure_;  // non-empty once a commit failed
  uint64_t failed_from_ = 0;
  bool closing_ = false;
  bool wanted_ = false;  // someone waits in wait_durable
  static constexpr size_t max_unwoken = 4096;
  LedgerStats stats_;
  std::atomic<uint64_t> durable_{0};  // tickets
  std::thread writer_;
};

}  // namespace segx::ledger
