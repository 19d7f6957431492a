#pragma once
// One entry of the ledger's append-only journal, and the rule that chains entries.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ledger/hash.hpp"

namespace segx::ledger {

/// A value kept beside the journal, outside the hash chain, so it can be erased later
/// without breaking the chain: a payment token until its charge is final. Stored in the
/// same transaction as the event that carries the operation.
struct SecretOp {
  std::string name;
  std::optional<std::string> value;  ///< nullopt: erase `name`
};

/// A journal entry. `body` is canonical JSON (keys sorted, no spaces) written by the market;
/// the ledger never interprets it, it only chains and stores it.
struct Event {
  uint64_t seq = 0;     ///< 1, 2, 3, ... without gaps
  int64_t time_ns = 0;  ///< when the market made it (ns since the Unix epoch)
  std::string type;     ///< lot_created, bid, pledge, lot_closed, charge, rating, ...
  std::string body;
  Digest hash{};  ///< chain_hash(previous event's hash, this event)
  /// Side-table changes committed with the event; neither hashed nor read back by scan().
  std::vector<SecretOp> secrets;
};

/// The hash that links `e` to its predecessor: SHA-256 over the previous hash (32 zero bytes
/// before the first event), then seq and time_ns as 8 big-endian bytes each, then type and
/// body, each preceded by its length as 4 big-endian bytes. Lengths make the encoding
/// unambiguous, so no two different events hash the same input.
Digest chain_hash(const Digest& previous, const Event& e);

/// The hash that precedes event 1.
inline constexpr Digest genesis_hash{};

}  // namespace segx::ledger
