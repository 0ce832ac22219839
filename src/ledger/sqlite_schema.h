// The SQLite ledger's on-disk format: how the file is made, configured and
// migrated. The schema itself is the migration list in sqlite_schema.cc.
//
// A ledger file is an SQLite database with PRAGMA application_id set to
// kLedgerApplicationId and PRAGMA user_version set to the number of schema
// migrations applied. Opening refuses files that are not SQLite, SQLite files
// of another application, and schemas newer than this build.
//
// Every connection runs with journal_mode=WAL and synchronous=FULL (a
// committed transaction survives power loss), foreign_keys=ON, a busy
// timeout, and SQLite's defensive mode with an untrusted schema.
//
// A new file is created with mode 0600 (it holds password hashes); SQLite
// gives its -wal and -shm files the same mode.
//
// Thread safety: the returned connection belongs to one thread at a time.
#pragma once

#include <cstdint>
#include <filesystem>

#include "base/error.h"
#include "ledger/sqlite_db.h"

namespace sealdrop {

// "SDLG".
inline constexpr int64_t kLedgerApplicationId = 0x53444C47;

// Opens the ledger database, creating the file and any missing parent
// directory only if `create` is true, and brings its schema up to date.
Result<sqlite::Db> OpenLedgerDatabase(const std::filesystem::path& db_path, bool create);

// One more connection to a ledger that OpenLedgerDatabase has already opened
// and brought up to date, for reads only: it never creates or migrates, it
// refuses a schema other than this build's, and PRAGMA query_only makes any
// write through it an error.
Result<sqlite::Db> OpenLedgerReader(const std::filesystem::path& db_path);

}  // namespace sealdrop
