// Group commit for the ledger's one writer connection.
//
// Every change to the ledger is a write function run on the writer
// connection. The first caller in the queue leads: it takes up to max_batch
// queued writes (its own first) and runs them, in queue order, inside one
// BEGIN IMMEDIATE ... COMMIT, each in its own SAVEPOINT. A write that fails
// (insufficient funds, already owned, a bad argument) rolls back to its
// savepoint and changes nothing; the others stand. One COMMIT is one WAL
// fsync (synchronous=FULL) for the whole batch. Callers that arrive while a
// batch is committing queue up and form the next batch, so a lone caller
// never waits for companions: it finds the queue empty and starts at once.
//
// Durability: Run returns success only after the COMMIT of the transaction
// that holds the write has returned SQLITE_OK, that is after its fsync. If
// BEGIN, a savepoint step or the COMMIT fails, or SQLite rolls the
// transaction back on its own (disk full, I/O error), every write of the batch
// fails with that error, those whose own part had succeeded included: none of
// the batch is in the database and each caller may retry (a charge with its
// idempotency key).
//
// Order: writes run, and so append to the audit chain, in queue order; a
// write sees the changes of the writes before it in its batch.
//
// Thread safety: Run may be called from any number of threads at once. A
// write function runs on whichever thread leads its batch, while its own
// caller waits in Run: it may use the caller's stack, must not call the
// ledger, and should be quick, since the whole batch waits for it.
// Lifetimes: the batcher owns the connection; no Run may be in progress when
// it is destroyed.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include "base/error.h"
#include "ledger/sqlite_db.h"

namespace sealdrop {

class WriteBatcher {
 public:
  using Write = std::function<Status(sqlite::Db&)>;
  // Called on the leading thread after each transaction, before any of its
  // callers is woken, with the number of writes it held and whether it
  // committed. Must not call the ledger.
  using BatchObserver = std::function<void(size_t writes, bool committed)>;

  // max_batch of 1 turns grouping off: every write commits alone.
  WriteBatcher(sqlite::Db db, size_t max_batch, BatchObserver observer);

  WriteBatcher(const WriteBatcher&) = delete;
  WriteBatcher& operator=(const WriteBatcher&) = delete;

  // Runs `write` in the next transaction and returns its status once that
  // transaction has committed (durably) or failed.
  Status Run(const Write& write);

 private:
  struct Pending;
  // Runs the batch and sets every member's status; never throws.
  void RunBatch(const std::vector<Pending*>& batch) noexcept;
  Status RunEach(const std::vector<Pending*>& batch, size_t& succeeded);

  std::mutex mu_;
  std::deque<Pending*> queue_;  // guarded by mu_; the front is the leader

  // Used only by the current leader: the leader protocol (only the queue's
  // front runs, and the front changes under mu_ after it finishes) hands them
  // from one leader to the next.
  sqlite::Db db_;
  std::vector<Pending*> batch_;  // reserved up front so leading never allocates

  const size_t max_batch_;
  const BatchObserver observer_;
};

}  // namespace sealdrop
