#include "ledger/ledger.hpp"

#include <pthread.h>

#include <algorithm>
#include <chrono>

#include "common/cpus.hpp"

namespace segx::ledger {

namespace {

int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Error unavailable(std::string message) {
  return Error{std::move(message), ErrorKind::unavailable};
}

}  // namespace

VerifyReport verify(Storage& storage) {
  VerifyReport r;
  Digest prev = genesis_hash;
  uint64_t expected = 1;
  Status s = storage.scan(1, [&](const Event& e) {
    if (e.seq != expected) {
      r.ok = false;
      r.bad_seq = expected;
      r.reason = e.seq > expected ? "event " + std::to_string(expected) + " is missing (next is " +
                                        std::to_string(e.seq) + ")"
                                  : "event numbers out of order at " + std::to_string(e.seq);
      return false;
    }
    const Digest h = chain_hash(prev, e);
    if (h != e.hash) {
      r.ok = false;
      r.bad_seq = e.seq;
      r.reason = "event " + std::to_string(e.seq) + " (" + e.type +
                 ") does not match its hash: its content, its hash or an earlier event "
                 "was changed";
      return false;
    }
    prev = h;
    r.events = e.seq;
    r.head = h;
    ++expected;
    return true;
  });
  if (!s && r.ok) {
    r.ok = false;
    r.bad_seq = r.events + 1;
    r.reason = s.error();
  }
  return r;
}

Result<std::unique_ptr<Ledger>> Ledger::open(const std::string& url, LedgerOptions options) {
  auto storage = open_storage(url, false, StorageOptions{options.timeout});
  if (!storage) return storage.failure();
  return open(std::move(storage).value(), std::move(options));
}

Result<std::unique_ptr<Ledger>> Ledger::open(std::unique_ptr<Storage> storage,
                                             LedgerOptions options) {
  // Reading the head proves the store answers before anyone relies on it.
  auto head = storage->head();
  if (!head) return head.failure();
  return std::unique_ptr<Ledger>(new Ledger(std::move(storage), std::move(options)));
}

Ledger::Ledger(std::unique_ptr<Storage> storage, LedgerOptions options)
    : storage_(std::move(storage)), options_(std::move(options)) {
  writer_ = std::thread([this] { writer_loop(); });
}

Ledger::~Ledger() {
  close();
}

Result<uint64_t> Ledger::append(std::string type, std::string body, int64_t time_ns) {
  Event e;
  e.time_ns = time_ns;
  e.type = std::move(type);
  e.body = std::move(body);
  return append(std::move(e));
}

Result<uint64_t> Ledger::append(Event event) {
  std::unique_lock lock(mutex_);
  return append_locked(std::move(event), lock);
}

Result<uint64_t> Ledger::append_in(uint64_t generation, Event event) {
  std::unique_lock lock(mutex_);
  if (generation != generation_)
    return unavailable("ledger " + storage_->describe() + ": an earlier event failed to commit (" +
                       health_.error + "); nothing was recorded");
  return append_locked(std::move(event), lock);
}

Result<uint64_t> Ledger::append_locked(Event event, std::unique_lock<std::mutex>& lock) {
  if (closing_) return unavailable("ledger " + storage_->describe() + " is closed");
  const uint64_t ticket = next_ticket_++;
  queue_.push_back(std::move(event));
  // The writer is woken by whoever waits for durability (wait_durable), not by every
  // append: a client with many bids in flight costs one wake-up per wait, not one per bid.
  // A long queue wakes it too, so memory stays bounded; the writer also looks every 10 ms.
  const bool wake = queue_.size() == max_unwoken;
  lock.unlock();
  if (wake) work_.notify_one();
  return ticket;
}

bool Ledger::is_failed(uint64_t ticket) const {
  // Failed ranges are disjoint and ordered by generation, which orders them by ticket too.
  for (auto it = failures_.rbegin(); it != failures_.rend(); ++it) {
    if (ticket > it->second.second) return false;
    if (ticket >= it->second.first) return true;
  }
  return false;
}

Status Ledger::outcome(uint64_t ticket) const {
  if (is_failed(ticket))
    return unavailable("ledger " + storage_->describe() + " failed to store the event: " +
                       (health_.error.empty() ? std::string("commit failed") : health_.error));
  return {};
}

void Ledger::when_durable(uint64_t ticket, std::function<void(Status)> fn) {
  std::unique_lock lock(mutex_);
  if (ticket <= resolved_) {
    Status s = outcome(ticket);
    lock.unlock();
    fn(std::move(s));
    return;
  }
  if (finished_) {
    lock.unlock();
    fn(unavailable("ledger " + storage_->describe() + " is closed"));
    return;
  }
  watchers_.emplace(ticket, std::move(fn));
  wanted_ = true;
  lock.unlock();
  work_.notify_one();
}

Status Ledger::wait_durable(uint64_t ticket) {
  std::unique_lock lock(mutex_);
  if (ticket > resolved_) {
    wanted_ = true;
    work_.notify_one();
    const auto limit = options_.timeout + std::chrono::seconds(1);
    if (!done_.wait_for(lock, limit, [&] { return resolved_ >= ticket; }))
      return unavailable("ledger " + storage_->describe() + " did not confirm the event within " +
                         std::to_string(limit.count()) +
                         " ms; its outcome is unknown (market.ledger.timeout)");
  }
  return outcome(ticket);
}

Result<uint64_t> Ledger::append_durable(std::string type, std::string body, int64_t time_ns) {
  auto seq = append(std::move(type), std::move(body), time_ns);
  if (!seq) return seq;
  if (Status s = wait_durable(seq.value()); !s) return s.failure();
  return seq;
}

Progress Ledger::progress() const {
  std::lock_guard lock(mutex_);
  return {resolved_, generation_};
}

std::optional<std::pair<uint64_t, uint64_t>> Ledger::failed_in(uint64_t generation) const {
  std::lock_guard lock(mutex_);
  auto it = failures_.find(generation);
  if (it == failures_.end()) return std::nullopt;
  return it->second;
}

void Ledger::note(const std::string& line) {
  if (options_.log) options_.log(line);
}

void Ledger::writer_loop() {
  pthread_setname_np(pthread_self(), "segx-ledger");
  std::vector<Event> batch;
  std::unique_lock lock(mutex_);
  auto last_probe = std::chrono::steady_clock::now();
  for (;;) {
    // Someone waiting for durability, or a long queue, wakes the writer; events nobody waits
    // for are stored within 10 ms.
    const auto ready = [&] { return closing_ || wanted_ || queue_.size() >= max_unwoken; };
    if (queue_.empty()) {
      // While failing, look at the store once a second so health recovers without a write.
      if (health_.ok) {
        work_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      } else {
        work_.wait_for(lock, std::chrono::seconds(1), [&] { return closing_ || !queue_.empty(); });
      }
    }
    work_.wait_for(lock, std::chrono::milliseconds(10), ready);
    if (queue_.empty()) {
      wanted_ = false;  // what they wait for is already durable or failed
      if (closing_) break;
      if (!health_.ok && std::chrono::steady_clock::now() - last_probe >= std::chrono::seconds(1)) {
        lock.unlock();
        const Status p = storage_->probe();
        lock.lock();
        last_probe = std::chrono::steady_clock::now();
        if (p && !health_.ok) {
          health_.ok = true;
          health_.error.clear();
          note("ledger " + storage_->describe() + ": the store answers again; commits resume");
        }
      }
      continue;
    }
    wanted_ = false;
    batch.swap(queue_);
    const uint64_t first = resolved_ + 1;
    in_flight_since_ = std::chrono::steady_clock::now();
    lock.unlock();
    // Everything queued while the previous commit was running goes in this one. A transient
    // error (a lock another process holds, a lost connection) is tried again with backoff
    // until the timeout; nothing of a failed attempt is stored, so a retry is safe.
    const auto started = std::chrono::steady_clock::now();
    const auto deadline = started + options_.timeout;
    auto backoff = std::chrono::milliseconds(10);
    uint64_t retries = 0;
    Status s;
    for (;;) {
      s = storage_->append(batch);
      if (s || s.error_kind() != ErrorKind::unavailable) break;
      if (std::chrono::steady_clock::now() + backoff > deadline) break;
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
      ++retries;
    }
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    lock.lock();
    in_flight_since_.reset();
    stats_.retries += retries;
    if (s) {
      size_t b = 0;
      while (b < std::size(commit_latency_bounds) && took > commit_latency_bounds[b])
        ++b;
      ++stats_.commit_latency[b];
      stats_.commit_seconds += took;
      resolved_ += batch.size();
      stats_.events += batch.size();
      ++stats_.commits;
      stats_.max_batch = std::max<uint64_t>(stats_.max_batch, batch.size());
      if (!health_.ok) {
        health_.ok = true;
        health_.error.clear();
        note("ledger " + storage_->describe() + ": commits succeed again");
      }
    } else {
      // The batch failed, and so does everything queued behind it: those events were decided
      // on a state that assumed this batch would commit. Their callers learn it from
      // wait_durable; the generation moves on so that no later append builds on them.
      const uint64_t last = resolved_ + batch.size() + queue_.size();
      stats_.failed_events += batch.size() + queue_.size();
      queue_.clear();
      resolved_ = last;
      failures_[generation_] = {first, last};
      while (failures_.size() > max_failures_kept)
        failures_.erase(failures_.begin());
      ++generation_;
      ++stats_.commit_failures;
      if (health_.ok) health_.since_ns = wall_ns();
      health_.ok = false;
      health_.error = s.error();
      last_probe = std::chrono::steady_clock::now();
      note("ledger " + storage_->describe() + ": commit of " + std::to_string(last - first + 1) +
           " event(s) failed after " + std::to_string(retries) + " retries: " + s.error());
    }
    batch.clear();
    // Those who asked to be called: outside the lock, after the waiters are woken.
    std::vector<std::pair<std::function<void(Status)>, Status>> called;
    for (auto it = watchers_.begin(); it != watchers_.end() && it->first <= resolved_;) {
      called.emplace_back(std::move(it->second), outcome(it->first));
      it = watchers_.erase(it);
    }
    done_.notify_all();
    if (!called.empty()) {
      lock.unlock();
      for (auto& [fn, s] : called)
        fn(std::move(s));
      called.clear();
      lock.lock();
    }
  }
  finished_ = true;
  done_.notify_all();
}

Status Ledger::scan(uint64_t from, const std::function<bool(const Event&)>& fn) {
  return storage_->scan(from, fn);
}

Result<std::optional<std::string>> Ledger::secret(const std::string& name) {
  return storage_->secret(name);
}

VerifyReport Ledger::verify() {
  return ledger::verify(*storage_);
}

Status Ledger::share_callers_cpus() {
  return segx::share_callers_cpus(writer_, "ledger writer");
}

void Ledger::close() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
  }
  work_.notify_one();
  if (writer_.joinable()) writer_.join();
  // The writer resolved every ticket before it ended; anything left was never appended.
  std::multimap<uint64_t, std::function<void(Status)>> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(watchers_);
  }
  for (auto& [ticket, fn] : left)
    fn(unavailable("ledger " + storage_->describe() + " is closed"));
}

LedgerStats Ledger::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

LedgerHealth Ledger::health() const {
  std::lock_guard lock(mutex_);
  LedgerHealth h = health_;
  h.generation = generation_;
  if (h.ok && in_flight_since_) {
    const auto waited = std::chrono::steady_clock::now() - *in_flight_since_;
    if (waited > options_.timeout + std::chrono::seconds(1)) {
      h.ok = false;
      h.error = "the store has not answered a commit for " +
                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(waited).count()) +
                " s";
      h.since_ns = wall_ns() - std::chrono::duration_cast<std::chrono::nanoseconds>(waited).count();
    }
  }
  return h;
}

Status Ledger::register_event_types(const std::string& owner,
                                    const std::vector<std::string>& types) {
  std::lock_guard lock(mutex_);
  for (const auto& t : types) {
    auto [it, fresh] = owners_.try_emplace(t, owner);
    if (!fresh && it->second != owner)
      return Error{"ledger event type '" + t + "' is owned by " + it->second + ", not " + owner,
                   ErrorKind::internal};
  }
  return {};
}

std::optional<std::string> Ledger::event_owner(const std::string& type) const {
  std::lock_guard lock(mutex_);
  auto it = owners_.find(type);
  if (it == owners_.end()) return std::nullopt;
  return it->second;
}

}  // namespace segx::ledger
