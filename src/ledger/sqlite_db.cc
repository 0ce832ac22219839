#include "ledger/sqlite_db.h"

#include <sqlite3.h>

#include <climits>
#include <unordered_map>
#include <utility>

namespace sealdrop::sqlite {

struct Db::Cache {
  struct Entry {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };
  // Node-based: an entry's address (its in_use flag) is stable while
  // Statements point at it.
  std::unordered_map<std::string, Entry> entries;

  ~Cache() {
    for (auto& [sql, e] : entries) sqlite3_finalize(e.stmt);
  }
};

Db::Db(sqlite3* db) : db_(db), cache_(std::make_unique<Cache>()) {}

bool Db::in_transaction() const { return db_ != nullptr && sqlite3_get_autocommit(db_) == 0; }

size_t Db::cached_statements() const { return cache_ ? cache_->entries.size() : 0; }

Result<Db> Db::Open(const std::filesystem::path& path, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    // SQLite hands back a handle even on failure, and only it knows the message.
    std::string message = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    sqlite3_close_v2(raw);
    return Fail(ErrorCode::kIo,
                "cannot open ledger database " + path.string() + ": " + message);
  }
  sqlite3_extended_result_codes(raw, 1);
  return Db(raw);
}

Db::Db(Db&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), cache_(std::move(other.cache_)) {}

Db& Db::operator=(Db&& other) noexcept {
  if (this != &other) {
    cache_.reset();  // finalizes this connection's statements before it closes
    if (db_ != nullptr) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
    cache_ = std::move(other.cache_);
  }
  return *this;
}

Db::~Db() {
  cache_.reset();
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

Error Db::ErrorFor(int rc, std::string_view context) const {
  std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    return Error{ErrorCode::kUnavailable, "the ledger database is busy (" + message + ") while " +
                                              std::string(context) + "; try again"};
  }
  return Error{ErrorCode::kIo, "ledger database error while " + std::string(context) + ": " +
                                   message};
}

Status Db::Exec(std::string_view sql) {
  std::string text(sql);
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return std::unexpected(ErrorFor(rc, "running " + text.substr(0, 40)));
  return Ok();
}

Result<Statement> Db::Prepare(std::string_view sql) {
  if (sql.size() > INT_MAX) return Fail(ErrorCode::kInternal, "SQL text too long");
  Cache::Entry* entry = nullptr;
  if (cache_) {
    auto it = cache_->entries.find(std::string(sql));
    if (it != cache_->entries.end() && !it->second.in_use) {
      it->second.in_use = true;
      return Statement(this, it->second.stmt, &it->second.in_use);
    }
    if (it == cache_->entries.end() && cache_->entries.size() < kMaxCachedStatements)
      entry = &cache_->entries[std::string(sql)];
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              entry != nullptr ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
  if (rc != SQLITE_OK || stmt == nullptr) {
    sqlite3_finalize(stmt);
    if (entry != nullptr) cache_->entries.erase(std::string(sql));
    if (rc != SQLITE_OK) return std::unexpected(ErrorFor(rc, "preparing a statement"));
    return Fail(ErrorCode::kInternal, "empty SQL statement");
  }
  if (entry == nullptr) return Statement(this, stmt, nullptr);
  entry->stmt = stmt;
  entry->in_use = true;
  return Statement(this, stmt, &entry->in_use);
}

Result<int64_t> Db::QueryInt(std::string_view sql) {
  SEALDROP_ASSIGN(Statement stmt, Prepare(sql));
  SEALDROP_ASSIGN(bool row, stmt.Step());
  if (!row) return Fail(ErrorCode::kInternal, "query returned no row: " + std::string(sql));
  return stmt.ColumnInt(0);
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      in_use_(std::exchange(other.in_use_, nullptr)),
      bind_rc_(other.bind_rc_) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    Release();
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
    in_use_ = std::exchange(other.in_use_, nullptr);
    bind_rc_ = other.bind_rc_;
  }
  return *this;
}

Statement::~Statement() { Release(); }

// A cached statement goes back reset (ending any read it held open) and
// unbound (so no value from this use can leak into the next); any other is
// finalized.
void Statement::Release() {
  if (stmt_ == nullptr) return;
  if (in_use_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    *in_use_ = false;
  } else {
    sqlite3_finalize(stmt_);
  }
  stmt_ = nullptr;
  in_use_ = nullptr;
}

Statement& Statement::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Statement& Statement::Bind(int index, std::string_view value) {
  int rc = value.size() > INT_MAX
               ? SQLITE_TOOBIG
               : sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                                   SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Result<bool> Statement::Step() {
  if (bind_rc_ != SQLITE_OK) return std::unexpected(db_->ErrorFor(bind_rc_, "binding a value"));
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return std::unexpected(db_->ErrorFor(rc, "running a statement"));
}

Status Statement::Run() {
  while (true) {
    SEALDROP_ASSIGN(bool row, Step());
    if (!row) return Ok();
  }
}

int64_t Statement::ColumnInt(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  int size = sqlite3_column_bytes(stmt_, column);
  if (text == nullptr || size <= 0) return {};
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
}

Result<Transaction> Transaction::Begin(Db& db, Mode mode) {
  SEALDROP_TRY(db.Exec(mode == Mode::kWrite ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED"));
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
  // SQLite may already have rolled back on its own (after SQLITE_FULL,
  // SQLITE_IOERR, ...); a second ROLLBACK would only add a spurious error.
  if (db_ != nullptr && sqlite3_get_autocommit(db_->raw()) == 0) {
    sqlite3_exec(db_->raw(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

Status Transaction::Commit() {
  if (db_ == nullptr) return Fail(ErrorCode::kInternal, "transaction committed twice");
  SEALDROP_TRY(db_->Exec("COMMIT"));
  db_ = nullptr;
  return Ok();
}

}  // namespace sealdrop::sqlite
