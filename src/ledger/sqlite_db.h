// Owning wrappers around SQLite's C API, so that no raw sqlite3 handle
// escapes without an owner and every return code is turned into an Error.
//
// Db owns a connection. Statement owns a prepared statement; parameters are
// bound by 1-based index and a failed bind is reported by the next Step().
// Transaction rolls back on destruction unless Commit() succeeded.
//
// Statement cache: Prepare compiles each distinct SQL text once per
// connection (up to kMaxCachedStatements texts) and hands the compiled
// statement out again on later calls; a Statement from the cache is reset
// and unbound when it is destroyed instead of finalized. Compiling was half
// or more of a small ledger call's cost (make bench-ledger). A text whose cached
// statement is still held (the same query nested in itself) gets a fresh,
// uncached statement, so no two Statements ever share one sqlite3_stmt.
//
// Error mapping: a database that stayed locked past the busy timeout is
// kUnavailable (the caller may retry); every other SQLite failure is kIo with
// SQLite's own message.
//
// Thread safety: none. A Db and its statements belong to one thread at a
// time; SqliteLedger hands each connection to one thread at a time (the
// leader of a write batch, write_batcher.h, or the holder of a read lease,
// read_pool.h).
// Lifetimes: statements and transactions must not outlive their Db.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sealdrop::sqlite {

class Statement;

class Db {
 public:
  // `flags` are SQLITE_OPEN_* flags; the connection always gets extended
  // result codes.
  static Result<Db> Open(const std::filesystem::path& path, int flags);

  Db(Db&& other) noexcept;
  Db& operator=(Db&& other) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  // Runs one or more statements that take no parameters and return no rows
  // the caller needs.
  Status Exec(std::string_view sql);
  // One statement, from the cache when it is free (see the top of the file).
  Result<Statement> Prepare(std::string_view sql);
  // Runs a query expected to return one integer in one row (PRAGMAs, counts).
  Result<int64_t> QueryInt(std::string_view sql);

  // Builds the Error for a failed call that returned `rc`.
  Error ErrorFor(int rc, std::string_view context) const;

  sqlite3* raw() const { return db_; }
  // Whether a transaction is open. SQLite ends one on its own after some
  // failures (disk full, I/O error), which a caller inside it must notice.
  bool in_transaction() const;

  // Distinct SQL texts kept compiled; further texts are compiled per call.
  static constexpr size_t kMaxCachedStatements = 64;
  // How many texts are cached now (for tests).
  size_t cached_statements() const;

 private:
  struct Cache;
  explicit Db(sqlite3* db);
  sqlite3* db_ = nullptr;
  std::unique_ptr<Cache> cache_;
};

class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view value);
  Statement& Bind(int index, const char* value) { return Bind(index, std::string_view(value)); }
  Statement& Bind(int index, const std::string& value) {
    return Bind(index, std::string_view(value));
  }

  // true: a row is ready to read; false: the statement has finished.
  Result<bool> Step();
  // Steps until the statement finishes, ignoring any rows.
  Status Run();

  int64_t ColumnInt(int column) const;
  std::string ColumnText(int column) const;

 private:
  friend class Db;
  Statement(const Db* db, sqlite3_stmt* stmt, bool* in_use) : db_(db), stmt_(stmt), in_use_(in_use) {}
  void Release();
  const Db* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  bool* in_use_ = nullptr;  // the cache entry's flag; null for an uncached statement
  int bind_rc_ = 0;         // first failed bind, reported by Step()
};

class Transaction {
 public:
  // kRead takes a consistent snapshot; kWrite takes the write lock at once
  // (BEGIN IMMEDIATE), so two writers never both read stale state and then
  // race to upgrade.
  enum class Mode { kRead, kWrite };

  static Result<Transaction> Begin(Db& db, Mode mode);

  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  Status Commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_ = nullptr;  // null once committed, rolled back or moved from
};

}  // namespace sealdrop::sqlite
