#include "ledger/event.hpp"

#include "ledger/storage.hpp"

namespace segx::ledger {

namespace {
void put_be(Sha256& h, uint64_t v, int bytes) {
  uint8_t b[8];
  for (int i = 0; i < bytes; ++i)
    b[i] = static_cast<uint8_t>(v >> (8 * (bytes - 1 - i)));
  h.update(b, static_cast<size_t>(bytes));
}
}  // namespace

Digest chain_hash(const Digest& previous, const Event& e) {
  thread_local Sha256 h;
  h.update(previous.data(), previous.size());
  put_be(h, e.seq, 8);
  put_be(h, static_cast<uint64_t>(e.time_ns), 8);
  put_be(h, e.type.size(), 4);
  h.update(e.type);
  put_be(h, e.body.size(), 4);
  h.update(e.body);
  return h.finish();
}

void chain_after(const Head& head, std::span<Event> events) {
  uint64_t seq = head.seq;
  Digest prev = head.hash;
  for (Event& e : events) {
    e.seq = ++seq;
    e.hash = chain_hash(prev, e);
    prev = e.hash;
  }
}

}  // namespace segx::ledger
