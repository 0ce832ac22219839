// The ledger's read connections: a few connections to the same file, so that
// read-only calls run beside the writer and beside each other. With WAL a
// reader sees the last committed state as of its first read, and neither
// waits for nor blocks a write transaction, not even one holding the write
// lock while it commits.
//
// Connections are opened on first need, up to `max`; a read that finds all of
// them in use waits until one is handed back.
//
// Thread safety: Acquire may be called from any number of threads at once. A
// Lease's connection belongs to the Lease's holder until the Lease ends.
// Lifetimes: every Lease must end before the pool is destroyed.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "base/error.h"
#include "ledger/sqlite_db.h"

namespace sealdrop {

class ReadPool {
 public:
  using Opener = std::function<Result<sqlite::Db>()>;

  ReadPool(Opener open, size_t max);
  ReadPool(const ReadPool&) = delete;
  ReadPool& operator=(const ReadPool&) = delete;

  // One connection, its own until the Lease ends.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();
    sqlite::Db& db() { return *db_; }

   private:
    friend class ReadPool;
    Lease(ReadPool* pool, std::unique_ptr<sqlite::Db> db) : pool_(pool), db_(std::move(db)) {}
    ReadPool* pool_ = nullptr;
    std::unique_ptr<sqlite::Db> db_;
  };

  // An idle connection, a new one while fewer than `max` are open, or the
  // next one handed back. Fails only if opening a new connection fails.
  Result<Lease> Acquire();

 private:
  void Return(std::unique_ptr<sqlite::Db> db);

  const Opener open_;
  const size_t max_;
  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<sqlite::Db>> idle_;  // guarded by mu_
  size_t open_count_ = 0;                          // guarded by mu_; idle or leased
};

}  // namespace sealdrop
