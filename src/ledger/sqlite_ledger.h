// SQLite implementation of Ledger (the embedded default).
//
// Opens DATA/ledger.db with WAL and synchronous=FULL, foreign keys on, and a
// busy timeout, so a committed charge survives a crash or power loss. Schema
// migrations are versioned with PRAGMA user_version.
//
// Thread safety: one connection guarded by a mutex.
#pragma once

#include <filesystem>
#include <memory>

#include "ledger/ledger.h"

namespace sealdrop {

// Creates the database if `create` is true, otherwise requires it to exist.
Result<std::unique_ptr<Ledger>> OpenSqliteLedger(const std::filesystem::path& db_path,
                                                 bool create);

}  // namespace sealdrop
