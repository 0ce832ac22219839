#include "ledger/sqlite_db.h"

#include <sqlite3.h>

#include <climits>
#include <utility>

namespace sealdrop::sqlite {

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

Db::Db(Db&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Db& Db::operator=(Db&& other) noexcept {
  if (this != &other) {
    if (db_ != nullptr) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

Db::~Db() {
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
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return std::unexpected(ErrorFor(rc, "preparing a statement"));
  }
  if (stmt == nullptr) return Fail(ErrorCode::kInternal, "empty SQL statement");
  return Statement(this, stmt);
}

Result<int64_t> Db::QueryInt(std::string_view sql) {
  SEALDROP_ASSIGN(Statement stmt, Prepare(sql));
  SEALDROP_ASSIGN(bool row, stmt.Step());
  if (!row) return Fail(ErrorCode::kInternal, "query returned no row: " + std::string(sql));
  return stmt.ColumnInt(0);
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)), bind_rc_(other.bind_rc_) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
    bind_rc_ = other.bind_rc_;
  }
  return *this;
}

Statement::~Statement() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
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
