// SQLite implementation of Ledger (the embedded default).
//
// Opens DATA/ledger.db with WAL and synchronous=FULL, foreign keys on, and a
// busy timeout, so a committed charge survives a crash or power loss. Schema
// migrations are versioned with PRAGMA user_version.
//
// Concurrency: one writer connection and a small pool of read connections.
//  - Every call that changes the ledger (Charge, RecordRedelivery, IssueToken,
//    AddUser, AddCredit, AddProgram, RevokeDevice, AppendAudit) goes through
//    group commit (write_batcher.h): writes that arrive while a transaction is
//    committing share the next one, each in its own savepoint, so N
//    concurrent charges cost one fsync instead of N. A call returns only after
//    the COMMIT holding its write is durable; if that COMMIT fails, every
//    write of the batch fails and none is recorded. A call alone is not
//    delayed.
//  - Every read-only call runs on a read connection (read_pool.h) in its own
//    snapshot of the last commit, and waits neither for the writer nor for
//    another reader. Password hashes are checked with no connection held.
//
// Thread safety: every method may be called from any number of threads.
// Lifetimes: no call may be in progress when the Ledger is destroyed.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>

#include "ledger/ledger.h"

namespace sealdrop {

struct SqliteLedgerOptions {
  // Where the ledger reads the time: token issue and expiry, receipt,
  // delivery, user, program and revocation times, audit entries. Empty means
  // the system clock. Called from several threads at once.
  std::function<std::chrono::system_clock::time_point()> clock;
  // At most this many writes share one transaction and one fsync. 1 turns
  // group commit off: every write commits alone.
  size_t max_batch = 64;
  // Read connections at most; more reads at once wait for a free one.
  size_t read_connections = 4;
  // Called on the committing thread after every write transaction with the
  // number of writes it held and whether it committed, before any of their
  // callers returns; for metrics and tests. Must not call the ledger.
  std::function<void(size_t writes, bool committed)> on_batch;
};

// Creates the database if `create` is true, otherwise requires it to exist.
Result<std::unique_ptr<Ledger>> OpenSqliteLedger(const std::filesystem::path& db_path,
                                                 bool create);
Result<std::unique_ptr<Ledger>> OpenSqliteLedger(const std::filesystem::path& db_path,
                                                 bool create, const SqliteLedgerOptions& options);

}  // namespace sealdrop
