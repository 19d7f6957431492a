#include "ledger/event.hpp"

#include "ledger/storage.hpp"

namespace segx::ledger {

namespace {
void put_be(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out += static_cast<char>(v >> (8 * (bytes - 1 - i)));
}
}  // namespace

Digest chain_hash(const Digest& previous, const Event& e) {
  // One contiguous input, one update: each EVP call costs about as much as hashing a
  // short field.
  thread_local Sha256 h;
  thread_local std::string input;
  input.clear();
  input.append(reinterpret_cast<const char*>(previous.data()), previous.size());
  put_be(input, e.seq, 8);
  put_be(input, static_cast<uint64_t>(e.time_ns), 8);
  put_be(input, e.type.size(), 4);
  input += e.type;
  put_be(input, e.body.size(), 4);
  input += e.body;
  h.update(input);
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
