#include "ledger/sqlite_schema.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "base/files.h"

namespace sealdrop {
namespace {

namespace fs = std::filesystem;
using sqlite::Db;
using sqlite::Statement;
using sqlite::Transaction;

constexpr int64_t kApplicationId = kLedgerApplicationId;
constexpr int kBusyTimeoutMs = 5000;

// Schema migrations, applied in order; PRAGMA user_version holds how many have
// run. Append new ones; never edit one that has shipped.
//
// STRICT tables so a wrong type is an error instead of a silent conversion.
// Receipts, deliveries and the audit log refuse UPDATE and DELETE through
// triggers: that stops bugs, not an attacker with the file, which is what the
// audit hash chain is for.
constexpr std::array<std::string_view, 3> kMigrations = {
    R"sql(
CREATE TABLE users(
  name       TEXT PRIMARY KEY NOT NULL,
  pw_hash    TEXT NOT NULL,
  balance    INTEGER NOT NULL CHECK(balance >= 0),
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE programs(
  id       INTEGER PRIMARY KEY AUTOINCREMENT,
  name     TEXT NOT NULL,
  version  TEXT NOT NULL,
  price    INTEGER NOT NULL CHECK(price >= 0),
  kind     TEXT NOT NULL CHECK(kind IN ('elf', 'data')),
  path     TEXT NOT NULL,
  size     INTEGER NOT NULL CHECK(size >= 0),
  sha256   TEXT NOT NULL,
  added_at INTEGER NOT NULL,
  UNIQUE(name, version)
) STRICT;

CREATE TABLE revoked_devices(
  serial TEXT PRIMARY KEY NOT NULL,
  reason TEXT NOT NULL,
  at     INTEGER NOT NULL
) STRICT;

CREATE TABLE receipts(
  receipt_id      TEXT PRIMARY KEY NOT NULL,
  user            TEXT NOT NULL REFERENCES users(name),
  program_id      INTEGER NOT NULL REFERENCES programs(id),
  amount          INTEGER NOT NULL CHECK(amount >= 0),
  device_serial   TEXT NOT NULL,
  jws             TEXT NOT NULL,
  issued_at       INTEGER NOT NULL,
  idempotency_key TEXT NOT NULL,
  UNIQUE(user, idempotency_key)
) STRICT;
CREATE INDEX receipts_by_user ON receipts(user, issued_at);

CREATE TABLE deliveries(
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  receipt_id     TEXT NOT NULL REFERENCES receipts(receipt_id),
  device_serial  TEXT NOT NULL,
  package_digest TEXT NOT NULL,
  at             INTEGER NOT NULL,
  charged        INTEGER NOT NULL CHECK(charged IN (0, 1))
) STRICT;
CREATE INDEX deliveries_by_receipt ON deliveries(receipt_id, device_serial);

CREATE TABLE audit(
  seq       INTEGER PRIMARY KEY NOT NULL,
  time      INTEGER NOT NULL,
  kind      TEXT NOT NULL,
  detail    TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL
) STRICT;

CREATE TRIGGER receipts_no_update BEFORE UPDATE ON receipts
  BEGIN SELECT RAISE(ABORT, 'receipts are append-only'); END;
CREATE TRIGGER receipts_no_delete BEFORE DELETE ON receipts
  BEGIN SELECT RAISE(ABORT, 'receipts are append-only'); END;
CREATE TRIGGER deliveries_no_update BEFORE UPDATE ON deliveries
  BEGIN SELECT RAISE(ABORT, 'deliveries are append-only'); END;
CREATE TRIGGER deliveries_no_delete BEFORE DELETE ON deliveries
  BEGIN SELECT RAISE(ABORT, 'deliveries are append-only'); END;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql",
    // 2: login tokens. Only the SHA-256 of a token is stored, so a copy of
    // the database does not log anyone in.
    R"sql(
CREATE TABLE tokens(
  token_hash TEXT PRIMARY KEY NOT NULL,
  user       TEXT NOT NULL REFERENCES users(name),
  expires_at INTEGER NOT NULL
) STRICT;
)sql",
    // 3: the rights a data package's licence grants (manifest "rights").
    R"sql(
ALTER TABLE programs ADD COLUMN may_export INTEGER NOT NULL DEFAULT 0 CHECK(may_export IN (0, 1));
)sql",
};

constexpr int64_t kSchemaVersion = static_cast<int64_t>(kMigrations.size());

// Makes the file with mode 0600 before SQLite sees it: it holds password
// hashes, and SQLite gives its -wal and -shm files the main file's mode.
Status CreateEmptyDatabaseFile(const fs::path& path) {
  fs::path parent = path.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    if (!fs::exists(parent, ec)) SEALDROP_TRY(EnsureDirectory(parent, 0700));
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return Ok();  // created meanwhile by another process
    return Fail(ErrorCode::kIo, "cannot create ledger database " + path.string() + ": " +
                                    std::strerror(errno));
  }
  ::close(fd);
  return SyncDirectory(parent);
}

Status Configure(Db& db, const fs::path& path) {
  // Hardening against a database file written by someone else: no schema
  // writes through PRAGMA writable_schema, no SQL functions run from the
  // schema itself.
  sqlite3_db_config(db.raw(), SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(db.raw(), SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_busy_timeout(db.raw(), kBusyTimeoutMs);
  // The first read of the file: garbage fails here, with SQLite's reason.
  auto app_id = db.QueryInt("PRAGMA application_id");
  if (!app_id) {
    return Fail(app_id.error().code,
                "cannot read ledger database " + path.string() + " (" + app_id.error().message +
                    "); if the file is damaged, restore it from a backup");
  }
  SEALDROP_ASSIGN(Statement wal, db.Prepare("PRAGMA journal_mode=WAL"));
  SEALDROP_ASSIGN(bool row, wal.Step());
  if (!row || wal.ColumnText(0) != "wal") {
    return Fail(ErrorCode::kIo, "ledger database " + path.string() +
                                    " cannot use write-ahead logging; put it on a local "
                                    "file system");
  }
  SEALDROP_TRY(db.Exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"));
  // Both PRAGMAs are silently ignored by builds that lack the feature.
  SEALDROP_ASSIGN(int64_t sync, db.QueryInt("PRAGMA synchronous"));
  SEALDROP_ASSIGN(int64_t fk, db.QueryInt("PRAGMA foreign_keys"));
  if (sync != 2 || fk != 1) {
    return Fail(ErrorCode::kIo, "this SQLite library cannot enforce synchronous=FULL and "
                                "foreign keys; install a standard build of SQLite");
  }
  return Ok();
}

Status Migrate(Db& db, const fs::path& path, bool create) {
  SEALDROP_ASSIGN(Transaction txn, Transaction::Begin(db, Transaction::Mode::kWrite));
  SEALDROP_ASSIGN(int64_t app_id, db.QueryInt("PRAGMA application_id"));
  SEALDROP_ASSIGN(int64_t version, db.QueryInt("PRAGMA user_version"));
  SEALDROP_ASSIGN(int64_t objects, db.QueryInt("SELECT COUNT(*) FROM sqlite_schema"));
  if (version > kSchemaVersion) {
    return Fail(ErrorCode::kIo, "ledger database " + path.string() + " has schema version " +
                                    std::to_string(version) + " but this build knows only up to " +
                                    std::to_string(kSchemaVersion) + "; run a newer sealdropd");
  }
  bool fresh = app_id == 0 && version == 0 && objects == 0;
  if (!fresh && app_id != kApplicationId) {
    return Fail(ErrorCode::kIo, path.string() +
                                    " is an SQLite database but not a sealdrop ledger; check "
                                    "the path");
  }
  if (fresh && !create) {
    return Fail(ErrorCode::kNotFound, "ledger database " + path.string() +
                                          " is empty; initialise the server's data first");
  }
  if (version == kSchemaVersion) return txn.Commit();
  for (int64_t v = version; v < kSchemaVersion; ++v) {
    SEALDROP_TRY(db.Exec(kMigrations[static_cast<size_t>(v)]));
  }
  SEALDROP_TRY(db.Exec("PRAGMA application_id=" + std::to_string(kApplicationId) +
                       "; PRAGMA user_version=" + std::to_string(kSchemaVersion) + ";"));
  return txn.Commit();
}

}  // namespace

Result<Db> OpenLedgerDatabase(const fs::path& db_path, bool create) {
  std::error_code ec;
  bool exists = fs::exists(db_path, ec);
  if (ec) {
    return Fail(ErrorCode::kIo,
                "cannot look up ledger database " + db_path.string() + ": " + ec.message());
  }
  if (!exists) {
    if (!create) {
      return Fail(ErrorCode::kNotFound, "ledger database " + db_path.string() +
                                            " does not exist; check the data directory or "
                                            "initialise it first");
    }
    SEALDROP_TRY(CreateEmptyDatabaseFile(db_path));
  }
  // Never SQLITE_OPEN_CREATE: the file exists by now, and if it vanished
  // meanwhile, an error is better than a fresh empty ledger.
  SEALDROP_ASSIGN(Db db, Db::Open(db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX));
  SEALDROP_TRY(Configure(db, db_path));
  SEALDROP_TRY(Migrate(db, db_path, create));
  return db;
}

Result<Db> OpenLedgerReader(const fs::path& db_path) {
  // Read-write at the file level all the same: a WAL reader records its
  // snapshot in the -shm file. query_only is what keeps it from writing.
  SEALDROP_ASSIGN(Db db, Db::Open(db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX));
  SEALDROP_TRY(Configure(db, db_path));
  SEALDROP_ASSIGN(int64_t app_id, db.QueryInt("PRAGMA application_id"));
  SEALDROP_ASSIGN(int64_t version, db.QueryInt("PRAGMA user_version"));
  if (app_id != kApplicationId || version != kSchemaVersion) {
    return Fail(ErrorCode::kIo, "ledger database " + db_path.string() +
                                    " changed under the running server (schema version " +
                                    std::to_string(version) + ", expected " +
                                    std::to_string(kSchemaVersion) + "); restart the server");
  }
  SEALDROP_TRY(db.Exec("PRAGMA query_only=1"));
  return db;
}

}  // namespace sealdrop
