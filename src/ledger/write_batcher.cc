#include "ledger/write_batcher.h"

#include <algorithm>
#include <exception>
#include <string>
#include <utility>

namespace sealdrop {

using sqlite::Db;
using sqlite::Statement;
using sqlite::Transaction;

struct WriteBatcher::Pending {
  const Write* write = nullptr;
  Status status = Ok();
  bool done = false;  // guarded by mu_; set by the leader of its batch
  std::condition_variable cv;
};

namespace {

// One write's exception must not take the leader, and with it every other
// caller of the batch, down with it.
Status Invoke(const WriteBatcher::Write& write, Db& db) {
  try {
    return write(db);
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kInternal, std::string("unexpected ledger failure: ") + e.what());
  } catch (...) {
    return Fail(ErrorCode::kInternal, "unexpected ledger failure");
  }
}

Status RunStatement(Db& db, std::string_view sql) {
  SEALDROP_ASSIGN(Statement s, db.Prepare(sql));
  return s.Run();
}

}  // namespace

WriteBatcher::WriteBatcher(Db db, size_t max_batch, BatchObserver observer)
    : db_(std::move(db)), max_batch_(std::max<size_t>(max_batch, 1)), observer_(std::move(observer)) {
  batch_.reserve(max_batch_);
}

Status WriteBatcher::Run(const Write& write) {
  Pending self;
  self.write = &write;
  std::unique_lock lock(mu_);
  queue_.push_back(&self);
  self.cv.wait(lock, [&] { return self.done || queue_.front() == &self; });
  if (self.done) return std::move(self.status);

  // Leading: everything queued now, up to the bound, goes into this
  // transaction. Whoever arrives meanwhile waits for the next one.
  const size_t n = std::min(queue_.size(), max_batch_);
  batch_.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
  lock.unlock();
  RunBatch(batch_);
  lock.lock();
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
  // Woken under the lock: a caller cannot see `done`, return and destroy its
  // condition variable before notify_one is through with it.
  for (Pending* p : batch_) {
    if (p == &self) continue;
    p->done = true;
    p->cv.notify_one();
  }
  if (!queue_.empty()) queue_.front()->cv.notify_one();
  return std::move(self.status);
}

Status WriteBatcher::RunEach(const std::vector<Pending*>& batch, size_t& succeeded) {
  // A lone write needs no savepoint: if it fails, the whole transaction is
  // rolled back, exactly as before grouping existed.
  const bool savepoints = batch.size() > 1;
  for (Pending* p : batch) {
    if (savepoints) SEALDROP_TRY(RunStatement(db_, "SAVEPOINT batched_write"));
    p->status = Invoke(*p->write, db_);
    if (p->status) {
      if (savepoints) SEALDROP_TRY(RunStatement(db_, "RELEASE batched_write"));
      ++succeeded;
      continue;
    }
    if (!db_.in_transaction()) {
      // SQLite rolled the whole transaction back on its own (disk full, I/O
      // error): the writes before this one are gone too.
      return std::unexpected(p->status.error());
    }
    if (savepoints) {
      SEALDROP_TRY(RunStatement(db_, "ROLLBACK TO batched_write"));
      SEALDROP_TRY(RunStatement(db_, "RELEASE batched_write"));
    }
  }
  return Ok();
}

void WriteBatcher::RunBatch(const std::vector<Pending*>& batch) noexcept {
  bool committed = false;
  Status failure = Ok();
  try {
    failure = [&]() -> Status {
      SEALDROP_ASSIGN(Transaction txn, Transaction::Begin(db_, Transaction::Mode::kWrite));
      size_t succeeded = 0;
      SEALDROP_TRY(RunEach(batch, succeeded));
      // Nothing to keep: the transaction's destructor rolls back.
      if (succeeded == 0) return Ok();
      SEALDROP_TRY(txn.Commit());
      committed = true;
      return Ok();
    }();
  } catch (...) {
    failure = Fail(ErrorCode::kInternal, "unexpected failure while committing ledger writes");
  }
  if (!failure) {
    // None of the batch reached the disk, so none of it may report success.
    for (Pending* p : batch) p->status = std::unexpected(failure.error());
  }
  if (observer_) {
    try {
      observer_(batch.size(), committed);
    } catch (...) {
    }
  }
}

}  // namespace sealdrop
