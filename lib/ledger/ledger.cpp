#include "ledger/ledger.hpp"

#include <algorithm>

namespace segx::ledger {

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

Result<std::unique_ptr<Ledger>> Ledger::open(const std::string& url) {
  auto storage = open_storage(url);
  if (!storage) return Error{storage.error()};
  return open(std::move(storage).value());
}

Result<std::unique_ptr<Ledger>> Ledger::open(std::unique_ptr<Storage> storage) {
  // Reading the head proves the store answers before anyone relies on it.
  auto head = storage->head();
  if (!head) return Error{head.error()};
  return std::unique_ptr<Ledger>(new Ledger(std::move(storage)));
}

Ledger::Ledger(std::unique_ptr<Storage> storage) : storage_(std::move(storage)) {
  writer_ = std::thread([this] { writer_loop(); });
}

Ledger::~Ledger() {
  close();
}

Result<uint64_t> Ledger::append(std::string type, std::string body, int64_t time_ns) {
  std::unique_lock lock(mutex_);
  if (!failure_.empty()) return Error{failure_};
  if (closing_) return Error{"ledger is closed"};
  Event e;
  e.time_ns = time_ns;
  e.type = std::move(type);
  e.body = std::move(body);
  const uint64_t ticket = next_ticket_++;
  queue_.push_back(std::move(e));
  // The writer is woken by whoever waits for durability (wait_durable), not by every
  // append: a client with many bids in flight costs one wake-up per wait, not one per bid.
  // A long queue wakes it too, so memory stays bounded; the writer also looks every 10 ms.
  const bool wake = queue_.size() == max_unwoken;
  lock.unlock();
  if (wake) work_.notify_one();
  return ticket;
}

Status Ledger::wait_durable(uint64_t ticket) {
  if (durable_.load(std::memory_order_acquire) >= ticket) return {};
  std::unique_lock lock(mutex_);
  wanted_ = true;
  work_.notify_one();
  done_.wait(lock, [&] {
    return durable_.load(std::memory_order_acquire) >= ticket ||
           (!failure_.empty() && ticket >= failed_from_);
  });
  if (durable_.load(std::memory_order_acquire) >= ticket) return {};
  return Error{failure_};
}

Result<uint64_t> Ledger::append_durable(std::string type, std::string body, int64_t time_ns) {
  auto seq = append(std::move(type), std::move(body), time_ns);
  if (!seq) return seq;
  if (Status s = wait_durable(seq.value()); !s) return Error{s.error()};
  return seq;
}

void Ledger::writer_loop() {
  std::vector<Event> batch;
  uint64_t stored = 0;  // tickets durable so far
  std::unique_lock lock(mutex_);
  for (;;) {
    // Someone waiting for durability, or a long queue, wakes the writer; events nobody waits
    // for are stored within 10 ms.
    const auto ready = [&] { return closing_ || wanted_ || queue_.size() >= max_unwoken; };
    if (queue_.empty()) {
      work_.wait(lock, [&] { return closing_ || !queue_.empty(); });
    }
    work_.wait_for(lock, std::chrono::milliseconds(10), ready);
    if (queue_.empty()) {
      wanted_ = false;  // what they wait for is already durable or failed
      if (closing_) break;
      continue;
    }
    wanted_ = false;
    batch.swap(queue_);
    lock.unlock();
    // Everything queued while the previous commit was running goes in this one.
    Status s = storage_->append(batch);
    lock.lock();
    if (s) {
      stored += batch.size();
      durable_.store(stored, std::memory_order_release);
      stats_.events += batch.size();
      ++stats_.commits;
      stats_.max_batch = std::max<uint64_t>(stats_.max_batch, batch.size());
    } else {
      // The market has already applied these events in memory: refuse everything from here
      // on, so nothing is acknowledged that a restart would not find.
      failure_ = s.error();
      failed_from_ = stored + 1;
      queue_.clear();
      closing_ = true;
    }
    batch.clear();
    done_.notify_all();
  }
  done_.notify_all();
}

Status Ledger::scan(uint64_t from, const std::function<bool(const Event&)>& fn) {
  return storage_->scan(from, fn);
}

VerifyReport Ledger::verify() {
  return ledger::verify(*storage_);
}

void Ledger::close() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
  }
  work_.notify_one();
  if (writer_.joinable()) writer_.join();
}

LedgerStats Ledger::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace segx::ledger
