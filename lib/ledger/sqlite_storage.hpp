#pragma once
// The embedded journal store: one SQLite file in WAL mode with synchronous=FULL, so a commit
// is on disk when it returns. Two connections: one for appends, one for scans, so a reader
// (replay, verify, the API) never waits for a commit and sees only committed events.

#include <chrono>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "ledger/storage.hpp"

namespace segx::ledger {

/// Opens or creates the SQLite journal at `path`. With read_only the file must exist and only
/// the scan connection is opened.
/// `timeout`: how long a statement waits for another connection's lock (busy timeout).
Result<std::unique_ptr<Storage>> open_sqlite_storage(
    const std::string& path, bool read_only,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

}  // namespace segx::ledger
