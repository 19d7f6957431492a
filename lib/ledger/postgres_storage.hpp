#pragma once
// The shared journal store: PostgreSQL, for several appliances and one market
// (docs/scale-out.md). Each append takes a transaction-scoped advisory lock, reads the head
// and numbers and chains its batch after it, so appliances appending at once keep one
// unbroken chain. Schema migrations are versioned and applied at open.

#include <chrono>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "ledger/storage.hpp"

namespace segx::ledger {

/// Connects to the database a libpq URI names ("postgresql://user@host:port/db"), applies
/// the migrations it lacks, and returns the store. With read_only no migration is applied
/// and the schema must exist.
/// `timeout` is the connect timeout and every statement's timeout (statement_timeout); both
/// connections set synchronous_commit=on, whatever the server's default.
Result<std::unique_ptr<Storage>> open_postgres_storage(
    const std::string& url, bool read_only,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

}  // namespace segx::ledger
